package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"durare.org/invitebot/invites/ibr"
	"durare.org/invitebot/store"
)

// sweepPage is how many pending invites a sweep holds at a time. A server
// with many pending invites is swept page by page, so the bot's memory
// does not grow with them.
const sweepPage = 256

// CheckPending is one sweep of usage tracking: pending invites past their
// expiry become expired; those whose token the server no longer accepts
// were used, and their inviter is told; cancelled invites whose token
// could not be revoked yet are tried again.
func (s *Service) CheckPending(ctx context.Context) error {
	now := s.now()
	checks := &tokenChecks{s: s}
	defer checks.close()
	// The pending index comes soonest expiry first; each page is settled
	// before the next is read.
	for after := (store.PendingRef{}); ; {
		page, err := s.store.PendingPage(ctx, after, sweepPage)
		if err != nil {
			return fmt.Errorf("usage check: %w", err)
		}
		var live []store.Invite
		for _, ref := range page {
			inv := pendingInvite(ref)
			if !inv.Expires.IsZero() && !now.Before(inv.Expires) {
				s.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "")
				continue
			}
			live = append(live, inv)
		}
		if err := checks.check(ctx, live); err != nil {
			return err
		}
		if len(page) < sweepPage {
			break
		}
		after = page[len(page)-1]
	}
	if r, ok := s.issuer.(Revoker); !ok || r.Revocation() == RevokeUnsupported {
		return nil // nothing to retry with
	}
	// Only those not expired yet: the server drops the others by itself.
	unrevoked, err := s.store.UnrevokedCancelled(ctx, now)
	if err != nil {
		return fmt.Errorf("usage check: %w", err)
	}
	for _, inv := range unrevoked {
		if err := s.revokeToken(ctx, systemActor, inv); err != nil {
			s.log.WarnContext(ctx, "revoking a cancelled invite's token failed; will retry",
				slog.String("id", inv.ID), slog.Any("err", err))
		}
	}
	return nil
}

// pendingInvite is the invite a sweep works with, made from the pending
// index's entry: the fields the token check and settling read (the rest of
// the record is read when the state changes).
func pendingInvite(r store.PendingRef) store.Invite {
	return store.Invite{ID: r.ID, Token: r.Token, Inviter: r.Inviter, Expires: r.Expires, State: store.StatePending}
}

// expiryMargin absorbs clock differences between the bot and the server:
// a token refused this close to its expiry expired, it was not used.
const expiryMargin = 5 * time.Minute

// tokenChecks asks the server about tokens over one c2s stream per sweep,
// dialled when the first token needs asking.
type tokenChecks struct {
	s       *Service
	checker *ibr.Checker
}

// check asks about each token and settles those the server refuses.
func (t *tokenChecks) check(ctx context.Context, invs []store.Invite) error {
	for _, inv := range invs {
		if t.s.registering(inv.ID) {
			continue // the browser registration records it, with the account
		}
		if t.checker == nil {
			c, err := ibr.DialChecker(ctx, t.s.c2s)
			if err != nil {
				return fmt.Errorf("usage check: %w", err)
			}
			t.checker = c
		}
		err := t.checker.Check(ctx, inv.Token)
		switch {
		case err == nil:
		case errors.Is(err, ibr.ErrTokenRejected):
			t.s.settleRejected(ctx, inv)
		default:
			return fmt.Errorf("usage check of %s: %w", inv.ID, err)
		}
	}
	return nil
}

func (t *tokenChecks) close() {
	if t.checker != nil {
		t.checker.Close()
	}
}

// settleRejected records a pending invite whose token the server refuses:
// used when that happened well before its expiry, expired otherwise. With
// no known expiry it cannot tell, and says so instead of notifying.
func (s *Service) settleRejected(ctx context.Context, inv store.Invite) {
	switch {
	case inv.Expires.IsZero():
		s.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "token no longer accepted; expiry unknown, so maybe used")
	case s.now().Add(expiryMargin).Before(inv.Expires):
		s.settle(ctx, inv, store.StateUsed, ActionInviteUse, "detected by token check")
	default:
		s.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "token refused at its expiry")
	}
}

// settleUsed checks invs at the server before a cancel and settles those
// already spent; it returns the ones still valid. When the server cannot
// be asked, all are returned: cancelling is then the safe choice.
func (s *Service) settleUsed(ctx context.Context, invs []store.Invite) []store.Invite {
	if len(invs) == 0 {
		return invs
	}
	checker, err := ibr.DialChecker(ctx, s.c2s)
	if err != nil {
		s.log.WarnContext(ctx, "cannot check tokens before cancelling", slog.Any("err", err))
		return invs
	}
	defer checker.Close()
	var live []store.Invite
	for i, inv := range invs {
		err := checker.Check(ctx, inv.Token)
		switch {
		case errors.Is(err, ibr.ErrTokenRejected):
			s.settleRejected(ctx, inv)
		case err != nil:
			s.log.WarnContext(ctx, "token check failed before cancelling", slog.Any("err", err))
			return append(live, invs[i:]...)
		default:
			live = append(live, inv)
		}
	}
	return live
}

// settle moves a pending invite to its final state and tells the inviter.
func (s *Service) settle(ctx context.Context, inv store.Invite, to store.State, action, detail string) {
	settled, err := s.store.SetInviteState(ctx, inv.ID, to, "", store.AuditEntry{
		Time: s.now().UTC(), Actor: systemActor, Action: action, Subject: inv.ID, Detail: detail,
	})
	if errors.Is(err, store.ErrNotPending) {
		return // settled meanwhile by someone else
	}
	if err != nil {
		s.log.ErrorContext(ctx, "usage check: state change failed", slog.String("id", inv.ID), slog.Any("err", err))
		return
	}
	s.log.InfoContext(ctx, "invite "+string(to), slog.String("id", inv.ID), slog.String("inviter", inv.Inviter))
	if to == store.StateUsed {
		s.observer.InviteUsed()
		s.notify(ctx, inv.Inviter, InviteUsed{Invite: viewOf(settled)})
	}
}

// Track runs usage tracking every interval until ctx ends.
func (s *Service) Track(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := s.CheckPending(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "usage check failed; next try in one interval", slog.Any("err", err))
			}
		}
	}
}
