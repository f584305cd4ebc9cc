package invites

import (
	"context"
	"errors"
	"fmt"
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

// reservation is a place held under the quotas for one invite being
// minted.
type reservation struct {
	s      *Service
	actor  string
	holds  bool // false for admins, who are not counted
	closed bool
}

// settle runs record (the store write, or nothing when minting failed) and
// gives the place back in one step under quotaMu. Doing both at once is
// what keeps the count exact: released before the write, a concurrent
// check would undercount; released after it, it would count the invite
// twice.
func (r *reservation) settle(record func() error) error {
	if !r.holds || r.closed {
		return record()
	}
	r.closed = true
	r.s.quotaMu.Lock()
	defer r.s.quotaMu.Unlock()
	err := record()
	r.s.inflight[r.actor]--
	if r.s.inflight[r.actor] == 0 {
		delete(r.s.inflight, r.actor)
	}
	r.s.inflightGlobal--
	return err
}

// admitCreate applies the pause switch and the quotas to one invite
// request. On success it holds a place for the invite being minted, so
// that concurrent requests see it; the caller must settle it.
func (s *Service) admitCreate(ctx context.Context, a Actor) (*reservation, error) {
	pause, err := s.store.Pause(ctx)
	if err != nil {
		return nil, fmt.Errorf("read pause: %w", err)
	}
	if pause.Paused {
		s.refuse(ctx, a.jid, "paused: "+pause.Reason)
		return nil, &PausedError{Reason: pause.Reason}
	}
	if a.role == policy.Admin {
		return &reservation{s: s, actor: a.jid}, nil
	}

	s.quotaMu.Lock()
	defer s.quotaMu.Unlock()
	now := s.now()
	usage, lim, err := s.usage(ctx, a.jid, now)
	if err != nil {
		return nil, err
	}
	if refusal, ok := policy.CheckQuota(a.role, lim, usage, now); !ok {
		s.refuse(ctx, a.jid, "quota "+string(refusal.Limit))
		return nil, &QuotaError{refusal}
	}
	s.inflight[a.jid]++
	s.inflightGlobal++
	return &reservation{s: s, actor: a.jid, holds: true}, nil
}

// stillAdmitted repeats the grant and pause checks right before a minted
// invite is stored: either may have changed while the server minted. The
// caller holds quotaMu.
func (s *Service) stillAdmitted(ctx context.Context, a Actor) error {
	if a.role != policy.Admin {
		_, err := s.store.Grant(ctx, a.jid)
		if errors.Is(err, store.ErrNotFound) {
			return ErrForbidden
		} else if err != nil {
			return fmt.Errorf("read grant: %w", err)
		}
	}
	pause, err := s.store.Pause(ctx)
	if err != nil {
		return fmt.Errorf("read pause: %w", err)
	}
	if pause.Paused {
		return &PausedError{Reason: pause.Reason}
	}
	return nil
}

// usage gathers what counts against actor's limits. The caller holds
// quotaMu, so in-flight reservations are consistent with the store.
func (s *Service) usage(ctx context.Context, actor string, now time.Time) (policy.Usage, policy.Limits, error) {
	lim := s.DefaultLimits()
	if g, err := s.store.Grant(ctx, actor); err == nil {
		lim = lim.WithOverrides(g.PerDay, g.MaxPending)
	} else if !errors.Is(err, store.ErrNotFound) {
		return policy.Usage{}, lim, fmt.Errorf("read grant: %w", err)
	}
	mine, err := s.store.InvitesByInviter(ctx, actor)
	if err != nil {
		return policy.Usage{}, lim, fmt.Errorf("count invites: %w", err)
	}
	recent, err := s.store.InvitesCreatedSince(ctx, now.Add(-policy.QuotaWindow))
	if err != nil {
		return policy.Usage{}, lim, fmt.Errorf("count invites: %w", err)
	}
	var u policy.Usage
	for _, inv := range mine {
		if inv.Event != "" {
			// An event link's invites count against its own cap, which
			// the creator's grant bounded, not the creator's quotas.
			continue
		}
		if now.Sub(inv.Created) < policy.QuotaWindow {
			u.Created = append(u.Created, inv.Created)
		}
		if inv.State == store.StatePending {
			u.PendingExpiries = append(u.PendingExpiries, inv.Expires)
		}
	}
	for _, inv := range recent {
		// Event links hand invites to strangers whoever made the link,
		// so theirs count even when an admin made it.
		if !s.IsAdmin(inv.Inviter) || inv.Event != "" {
			u.GlobalCreated = append(u.GlobalCreated, inv.Created)
		}
	}
	for range s.inflight[actor] {
		u.Created = append(u.Created, now)
		u.PendingExpiries = append(u.PendingExpiries, time.Time{})
	}
	for range s.inflightGlobal {
		u.GlobalCreated = append(u.GlobalCreated, now)
	}
	return u, lim, nil
}
