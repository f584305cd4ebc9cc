package invites

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// QuotaError says which limit refused an invite; its Refusal carries the
// limit, the count and when the next invite is possible, for the front end
// to put into words.
type QuotaError struct{ policy.Refusal }

func (e *QuotaError) Error() string {
	return fmt.Sprintf("quota %s reached: %d of %d", e.Limit, e.Count, e.Max)
}

// quotaGate admits invites under the pause switch and the limits, and
// counts those being minted so that concurrent requests cannot overshoot a
// limit. Whatever must not interleave with an invite being admitted and
// stored (revoke, closing an event link) runs under its lock (exclusive).
type quotaGate struct {
	*core
	roles *roles
	// mu makes quota checks and reservations atomic; inflight counts
	// invites being minted per inviter (and in all).
	mu             sync.Mutex
	inflight       map[string]int
	inflightGlobal int
	// refusals bounds the audit entries refused requests write.
	refusals *refusalBudget
}

func newQuotaGate(c *core, r *roles) *quotaGate {
	return &quotaGate{core: c, roles: r, inflight: make(map[string]int), refusals: newRefusalBudget(c.now)}
}

// exclusive runs fn while no invite is admitted or stored, so that an
// invite being minted meanwhile is either stored before fn (and fn sees
// it) or checked after it (stillAdmitted, stillOpen).
func (g *quotaGate) exclusive(fn func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fn()
}

// reservation is a place held under the quotas for one invite being
// minted.
type reservation struct {
	g      *quotaGate
	actor  string
	holds  bool // false for admins, who are not counted
	closed bool
}

// settle runs record (the store write, or nothing when minting failed) and
// gives the place back in one step under the gate's lock. Doing both at
// once is what keeps the count exact: released before the write, a
// concurrent check would undercount; released after it, it would count
// the invite twice.
func (r *reservation) settle(record func() error) error {
	if !r.holds || r.closed {
		return record()
	}
	r.closed = true
	r.g.mu.Lock()
	defer r.g.mu.Unlock()
	err := record()
	r.g.inflight[r.actor]--
	if r.g.inflight[r.actor] == 0 {
		delete(r.g.inflight, r.actor)
	}
	r.g.inflightGlobal--
	return err
}

// admitCreate applies the pause switch and the quotas to one invite
// request. On success it holds a place for the invite being minted, so
// that concurrent requests see it; the caller must settle it.
func (q *quotaGate) admitCreate(ctx context.Context, a Actor) (*reservation, error) {
	pause, err := q.store.Pause(ctx)
	if err != nil {
		return nil, fmt.Errorf("read pause: %w", err)
	}
	if pause.Paused {
		q.refuse(ctx, a.jid, ActionInviteCreate, "paused: "+pause.Reason)
		return nil, &PausedError{Reason: pause.Reason}
	}
	if a.role == policy.Admin {
		return &reservation{g: q, actor: a.jid}, nil
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	usage, lim, err := q.usage(ctx, a.jid, now)
	if err != nil {
		return nil, err
	}
	if refusal, ok := policy.CheckQuota(a.role, lim, usage, now); !ok {
		q.refuse(ctx, a.jid, ActionInviteCreate, "quota "+string(refusal.Limit))
		return nil, &QuotaError{refusal}
	}
	q.inflight[a.jid]++
	q.inflightGlobal++
	return &reservation{g: q, actor: a.jid, holds: true}, nil
}

// stillAdmitted repeats the grant and pause checks right before a minted
// invite is stored: either may have changed while the server minted. The
// caller holds the gate's lock.
func (q *quotaGate) stillAdmitted(ctx context.Context, a Actor) error {
	// SignupActor holds no grant: its cap is its own (admitSignup).
	if a.role != policy.Admin && a.jid != SignupActor {
		_, err := q.store.Grant(ctx, a.jid)
		if errors.Is(err, store.ErrNotFound) {
			return ErrForbidden
		} else if err != nil {
			return fmt.Errorf("read grant: %w", err)
		}
	}
	pause, err := q.store.Pause(ctx)
	if err != nil {
		return fmt.Errorf("read pause: %w", err)
	}
	if pause.Paused {
		return &PausedError{Reason: pause.Reason}
	}
	return nil
}

// usage gathers what counts against actor's limits. The caller holds the
// gate's lock, so in-flight reservations are consistent with the store. It
// is on the path of every inviter's request and runs under that lock, so
// it asks the store for counts, which cost the same however long the
// history; the few times a refusal reports are read only when a limit is
// reached.
func (q *quotaGate) usage(ctx context.Context, actor string, now time.Time) (policy.Usage, policy.Limits, error) {
	lim := q.roles.DefaultLimits()
	if g, err := q.store.Grant(ctx, actor); err == nil {
		lim = lim.WithOverrides(g.PerDay, g.MaxPending)
	} else if !errors.Is(err, store.ErrNotFound) {
		return policy.Usage{}, lim, fmt.Errorf("read grant: %w", err)
	}
	// The window is (now-QuotaWindow, now]; the store counts from since on.
	// An event link's invites count against its own cap, which the
	// creator's event allowance bounded (eventUsage), not toward the
	// creator's per-day and pending limits; they count toward the global
	// limit even when an admin made the link, since they go to strangers.
	// The store's counters keep them apart that way (store.QuotaCounts).
	since := now.Add(-policy.QuotaWindow + time.Nanosecond)
	admins := q.roles.adminList()
	c, err := q.store.QuotaCounts(ctx, actor, since, admins)
	if err != nil {
		return policy.Usage{}, lim, fmt.Errorf("count invites: %w", err)
	}
	// In-flight invites count as created now and pending without a known
	// expiry.
	u := policy.Usage{
		Created:       c.Created + q.inflight[actor],
		Pending:       c.Pending + q.inflight[actor],
		GlobalCreated: c.GlobalCreated + q.inflightGlobal,
	}
	if u.Created >= lim.PerDay {
		if u.CreatedOldest, err = q.oldest(ctx, actor, since, nil, u.Created-lim.PerDay+1, now); err != nil {
			return policy.Usage{}, lim, err
		}
	}
	if u.Pending >= lim.MaxPending {
		if u.NextExpiry, err = q.store.NextPendingExpiry(ctx, actor, now); err != nil {
			return policy.Usage{}, lim, fmt.Errorf("next pending expiry: %w", err)
		}
	}
	if u.GlobalCreated >= lim.GlobalPerDay {
		if u.GlobalOldest, err = q.oldest(ctx, "", since, admins, u.GlobalCreated-lim.GlobalPerDay+1, now); err != nil {
			return policy.Usage{}, lim, err
		}
	}
	return u, lim, nil
}

// oldest returns the n oldest creation times of the window from since on,
// of inviter or (inviter empty) of everyone but exclude: stored invites
// first, then in-flight ones, which count as created now.
func (q *quotaGate) oldest(ctx context.Context, inviter string, since time.Time, exclude []string, n int, now time.Time) ([]time.Time, error) {
	times, err := q.store.OldestCreatedSince(ctx, inviter, since, exclude, n)
	if err != nil {
		return nil, fmt.Errorf("oldest invites: %w", err)
	}
	for len(times) < n {
		times = append(times, now)
	}
	return times, nil
}

// eventQuotaKey is the key under which invites being minted for event link
// id are held in quotaGate.inflight. It cannot be a JID (no JID holds a
// NUL), so they count toward the global limit and never toward the
// creator's own.
func eventQuotaKey(id string) string { return "\x00event " + id }

// admitEventUse applies the global limit to one visitor of event link id
// made by creator. On success it holds a place for the invite being
// minted, so that concurrent requests see it; the caller must settle it.
func (q *quotaGate) admitEventUse(ctx context.Context, creator Actor, id string) (*reservation, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	usage, lim, err := q.usage(ctx, creator.jid, now)
	if err != nil {
		return nil, err
	}
	if refusal, ok := policy.CheckEventUse(lim, usage, now); !ok {
		q.refuse(ctx, creator.jid, "event.use", "event link "+id+": quota "+string(refusal.Limit))
		return nil, &QuotaError{refusal}
	}
	key := eventQuotaKey(id)
	q.inflight[key]++
	q.inflightGlobal++
	return &reservation{g: q, actor: key, holds: true}, nil
}

// eventTail bounds how long after its link stopped an event invite can
// still be recorded: a visitor who claimed a use in time is minted for
// and recorded after the expiry (stillOpen). The Issuer bounds minting far
// below it.
const eventTail = time.Hour

// eventUsage gathers what counts against creator's event allowance
// (policy.EventUsage). The caller holds the gate's lock, so that checking
// the allowance and storing a new link are one step. It reads creator's
// links, a few a month, and only for a link made before the window whose
// invites may still be in it (made a day or two ago), its invites.
func (q *quotaGate) eventUsage(ctx context.Context, creator string, now time.Time) (policy.EventUsage, error) {
	var u policy.EventUsage
	recs, err := q.store.Events(ctx, creator)
	if err != nil {
		return u, fmt.Errorf("count event invites: %w", err)
	}
	// The window is (now-QuotaWindow, now], as for the quotas.
	since := now.Add(-policy.QuotaWindow + time.Nanosecond)
	for _, rec := range recs {
		minting := q.inflight[eventQuotaKey(rec.ID)]
		open := rec.Closed.IsZero() && now.Before(rec.Expires)
		switch {
		case !rec.Created.Before(since):
			// Made in the window: everything it handed out was handed
			// out in it. Uses counts a use from its claim on; an open
			// link's cap (Held, below) covers the claims about to be
			// made, but a claim made just before the link stopped may
			// land after this read, so those being minted for a link
			// that stopped count too (twice at worst, while they
			// last).
			u.HandedOut += rec.Uses
			if !open {
				u.HandedOut += minting
			}
		case (rec.Uses > 0 && !rec.Expires.Add(eventTail).Before(since)) || minting > 0:
			// Made before the window, but it may have handed out
			// invites in it: count them one by one, and those being
			// minted as handed out now.
			invs, err := q.store.InvitesOfEvent(ctx, rec.ID)
			if err != nil {
				return u, fmt.Errorf("count event invites: %w", err)
			}
			for _, inv := range invs {
				if !inv.Created.Before(since) {
					u.HandedOut++
				}
			}
			u.HandedOut += minting
		}
		if open {
			u.Held += max(0, rec.MaxUses-rec.Uses)
		}
	}
	return u, nil
}
