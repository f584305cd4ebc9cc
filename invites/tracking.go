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

// CheckPending is one sweep of usage tracking: pending invites past their
// expiry become expired; those whose token the server no longer accepts
// were used, and their inviter is told; cancelled invites whose token
// could not be revoked yet are tried again. Account requests past their
// time are marked expired. Browser registrations the
// store failed to record are recorded first. An invite someone holds
// right now (a registration, a cancel) is left to the next sweep.
func (s *Service) CheckPending(ctx context.Context) error {
	s.ExpireRequests(ctx)
	s.payDebts(ctx)
	pending, err := s.store.PendingInvites(ctx)
	if err != nil {
		return fmt.Errorf("usage check: %w", err)
	}
	now := s.now()
	var live []store.Invite
	for _, inv := range pending {
		if !inv.Expires.IsZero() && !now.Before(inv.Expires) {
			if unlock, ok := s.tryLockInvite(ctx, inv.ID); ok {
				s.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "")
				unlock()
			}
			continue
		}
		live = append(live, inv)
	}
	if len(live) > 0 {
		if err := s.checkTokens(ctx, live); err != nil {
			return err
		}
	}
	if r, ok := s.issuer.(Revoker); !ok || r.Revocation() == RevokeUnsupported {
		return nil // nothing to retry with
	}
	unrevoked, err := s.store.UnrevokedCancelled(ctx)
	if err != nil {
		return fmt.Errorf("usage check: %w", err)
	}
	for _, inv := range unrevoked {
		if !inv.Expires.IsZero() && !now.Before(inv.Expires) {
			continue // the server dropped it by itself
		}
		if err := s.revokeToken(ctx, systemActor, inv); err != nil {
			s.log.WarnContext(ctx, "revoking a cancelled invite's token failed; will retry",
				slog.String("id", inv.ID), slog.Any("err", err))
		}
	}
	return nil
}

// expiryMargin absorbs clock differences between the bot and the server:
// a token refused this close to its expiry expired, it was not used.
const expiryMargin = 5 * time.Minute

// checkTokens asks the server about each token on one c2s stream and
// settles those it refuses.
func (s *Service) checkTokens(ctx context.Context, invs []store.Invite) error {
	checker, err := ibr.DialChecker(ctx, s.c2s)
	if err != nil {
		return fmt.Errorf("usage check: %w", err)
	}
	defer checker.Close()
	for _, inv := range invs {
		// A registration holding the invite records it, with the account;
		// the check and what follows from it must not interleave with one.
		unlock, ok := s.tryLockInvite(ctx, inv.ID)
		if !ok {
			continue
		}
		err := checker.Check(ctx, inv.Token)
		if errors.Is(err, ibr.ErrTokenRejected) {
			s.settleRejected(ctx, inv)
		}
		unlock()
		if err != nil && !errors.Is(err, ibr.ErrTokenRejected) {
			return fmt.Errorf("usage check of %s: %w", inv.ID, err)
		}
	}
	return nil
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

// tokenChecks asks the server about tokens before they are cancelled, over
// one stream dialled on first use. Once the server cannot be asked, every
// token counts as live: cancelling is then the safe choice.
type tokenChecks struct {
	s       *Service
	checker *ibr.Checker
	down    bool
}

// settleIfSpent checks inv's token and, when the server refuses it, records
// inv as used or expired (settleRejected); it reports whether it did. The
// caller holds inv's lock.
func (tc *tokenChecks) settleIfSpent(ctx context.Context, inv store.Invite) bool {
	if tc.down {
		return false
	}
	if tc.checker == nil {
		c, err := ibr.DialChecker(ctx, tc.s.c2s)
		if err != nil {
			tc.s.log.WarnContext(ctx, "cannot check tokens before cancelling", slog.Any("err", err))
			tc.down = true
			return false
		}
		tc.checker = c
	}
	err := tc.checker.Check(ctx, inv.Token)
	switch {
	case errors.Is(err, ibr.ErrTokenRejected):
		tc.s.settleRejected(ctx, inv)
		return true
	case err != nil:
		tc.s.log.WarnContext(ctx, "token check failed before cancelling", slog.Any("err", err))
		tc.down = true
	}
	return false
}

// close ends the checker's stream, if one was dialled.
func (tc *tokenChecks) close() {
	if tc.checker != nil {
		_ = tc.checker.Close()
	}
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
