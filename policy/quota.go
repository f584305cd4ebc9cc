package policy

import "time"

// QuotaWindow is the rolling window of the per-day limits.
const QuotaWindow = 24 * time.Hour

// Limits are the invite limits in force for one inviter.
type Limits struct {
	// PerDay is how many invites the inviter may create per QuotaWindow.
	PerDay int
	// MaxPending is how many of the inviter's invites may be pending.
	MaxPending int
	// GlobalPerDay caps all inviters together per QuotaWindow.
	GlobalPerDay int
	// EventMaxUses caps the uses of any one event link (see EventCap).
	EventMaxUses int
}

// DefaultLimits are the limits when the configuration says nothing.
var DefaultLimits = Limits{PerDay: 5, MaxPending: 10, GlobalPerDay: 100, EventMaxUses: 50}

// WithOverrides applies a grant's own numbers; zero keeps the default.
func (l Limits) WithOverrides(perDay, maxPending int) Limits {
	if perDay > 0 {
		l.PerDay = perDay
	}
	if maxPending > 0 {
		l.MaxPending = maxPending
	}
	return l
}

// Usage is what counts against the limits, gathered by the caller: counts,
// so that gathering them costs the same however long the history, plus the
// few times a refusal needs to say when the next invite is possible.
// Invites still being minted count too (as created now, pending with no
// known expiry), so that concurrent requests cannot overshoot.
type Usage struct {
	// Created counts the inviter's invites of the QuotaWindow ending now.
	Created int
	// CreatedOldest holds the creation times of the oldest of those,
	// oldest first. When Created reaches PerDay it must hold at least
	// Created-PerDay+1 of them, for the refusal to say when enough will
	// have aged out; otherwise it may be empty.
	CreatedOldest []time.Time
	// Pending counts the inviter's pending invites.
	Pending int
	// NextExpiry is the earliest expiry after now among them; zero when
	// none is known. Only a refusal needs it.
	NextExpiry time.Time
	// GlobalCreated counts everyone's invites of the QuotaWindow ending
	// now, admins' excepted unless an event link handed them out.
	GlobalCreated int
	// GlobalOldest is to GlobalCreated what CreatedOldest is to Created.
	GlobalOldest []time.Time
}

// Limit names one of the invite limits.
type Limit string

// The limits CheckQuota applies, in the order it applies them.
const (
	// LimitPerDay caps one inviter's invites per QuotaWindow.
	LimitPerDay Limit = "per-day"
	// LimitPending caps one inviter's pending invites.
	LimitPending Limit = "pending"
	// LimitGlobal caps all inviters together per QuotaWindow.
	LimitGlobal Limit = "global"
)

// Refusal says which limit stopped an invite and when the next one will be
// possible. It is data: front ends put it into words.
type Refusal struct {
	// Limit names the limit that refused.
	Limit Limit
	// Max is the limit's value.
	Max int
	// Count is how many count against it now.
	Count int
	// Next is when an invite will be possible again; zero when that
	// depends on something else (a pending invite being used or cancelled).
	Next time.Time
}

// CheckQuota decides whether an inviter with role may create one more
// invite. Admins are not limited: they are the ones who set the limits and
// can pause everything.
func CheckQuota(role Role, lim Limits, u Usage, now time.Time) (Refusal, bool) {
	if role == Admin {
		return Refusal{}, true
	}
	if u.Created >= lim.PerDay {
		return windowRefusal(LimitPerDay, lim.PerDay, u.Created, u.CreatedOldest), false
	}
	if u.Pending >= lim.MaxPending {
		r := Refusal{Limit: LimitPending, Max: lim.MaxPending, Count: u.Pending}
		// The earliest expiry frees a slot at the latest then.
		if u.NextExpiry.After(now) {
			r.Next = u.NextExpiry
		}
		return r, false
	}
	if u.GlobalCreated >= lim.GlobalPerDay {
		return windowRefusal(LimitGlobal, lim.GlobalPerDay, u.GlobalCreated, u.GlobalOldest), false
	}
	return Refusal{}, true
}

// CheckEventUse decides whether one more visitor of an event link may get
// an invite. Only the global limit applies: the link's own cap, which its
// creator's event allowance bounded when the link was made (EventCapNow),
// stands in for the creator's per-day and pending limits, and it applies
// whoever made the link, admins too, because the visitors are strangers
// whoever vouched for the link.
func CheckEventUse(lim Limits, u Usage, now time.Time) (Refusal, bool) {
	if u.GlobalCreated >= lim.GlobalPerDay {
		return windowRefusal(LimitGlobal, lim.GlobalPerDay, u.GlobalCreated, u.GlobalOldest), false
	}
	return Refusal{}, true
}

// windowRefusal is the refusal of a full rolling window of count creations
// under limit max. One more fits once the oldest count-max+1 have left the
// window, that is when oldest[count-max] ages out; without that time the
// refusal leaves Next zero rather than guess.
func windowRefusal(name Limit, max, count int, oldest []time.Time) Refusal {
	r := Refusal{Limit: name, Max: max, Count: count}
	if k := count - max; k < len(oldest) {
		r.Next = oldest[k].Add(QuotaWindow)
	}
	return r
}
