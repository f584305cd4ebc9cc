package policy

import (
	"slices"
	"time"
)

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

// Usage is what counts against the limits, gathered by the caller. Invites
// still being minted count too, so that concurrent requests cannot
// overshoot.
type Usage struct {
	// Created holds when the inviter's invites of the last QuotaWindow
	// were created (in-flight requests count as now).
	Created []time.Time
	// PendingExpiries holds the expiry of each of the inviter's pending
	// invites (zero when unknown).
	PendingExpiries []time.Time
	// GlobalCreated holds when everyone's (admins excepted) invites of the
	// last QuotaWindow were created.
	GlobalCreated []time.Time
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
	if r, over := windowFull(LimitPerDay, lim.PerDay, u.Created, now); over {
		return r, false
	}
	if len(u.PendingExpiries) >= lim.MaxPending {
		r := Refusal{Limit: LimitPending, Max: lim.MaxPending, Count: len(u.PendingExpiries)}
		// The earliest expiry frees a slot at the latest then.
		for _, e := range u.PendingExpiries {
			if !e.IsZero() && e.After(now) && (r.Next.IsZero() || e.Before(r.Next)) {
				r.Next = e
			}
		}
		return r, false
	}
	if r, over := windowFull(LimitGlobal, lim.GlobalPerDay, u.GlobalCreated, now); over {
		return r, false
	}
	return Refusal{}, true
}

// CheckEventUse decides whether one more visitor of an event link may get
// an invite. Only the global limit applies: the link's own cap, which its
// creator's grant bounded (EventCap), stands in for the creator's per-day
// and pending limits, and it applies whoever made the link, admins too,
// because the visitors are strangers whoever vouched for the link.
func CheckEventUse(lim Limits, u Usage, now time.Time) (Refusal, bool) {
	if r, over := windowFull(LimitGlobal, lim.GlobalPerDay, u.GlobalCreated, now); over {
		return r, false
	}
	return Refusal{}, true
}

// windowFull reports whether max creations fall in the window ending now,
// and if so when the oldest that must age out for one more to fit does.
func windowFull(name Limit, max int, created []time.Time, now time.Time) (Refusal, bool) {
	var inWindow []time.Time
	for _, c := range created {
		if now.Sub(c) < QuotaWindow {
			inWindow = append(inWindow, c)
		}
	}
	if len(inWindow) < max {
		return Refusal{}, false
	}
	slices.SortFunc(inWindow, func(a, b time.Time) int { return a.Compare(b) })
	// Once the oldest len-max+1 creations have left the window, max-1
	// remain and one more fits: that happens when the (len-max)th oldest
	// (0-based) ages out.
	return Refusal{Limit: name, Max: max, Count: len(inWindow), Next: inWindow[len(inWindow)-max].Add(QuotaWindow)}, true
}
