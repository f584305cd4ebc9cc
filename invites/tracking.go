package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"durare.org/invitebot/store"
)

// sweepPage is how many pending invites a sweep holds at a time. A server
// with many pending invites is swept page by page, so the bot's memory
// does not grow with them.
const sweepPage = 256

// Tunables of usage tracking. Measured on Prosody 0.12.3 with its internal
// storage, one preauth check costs the server about 1.5 ms plus 13 µs per
// token it holds (it re-reads its whole token file), Debian's mod_limits
// throttles an unauthenticated stream to about 60 checks a second, and
// Prosody closes an unauthenticated stream after c2s_timeout (300 s).
const (
	// maxChecksPerSecond paces token checks below the server's throttle,
	// so that tracking never competes with people registering.
	maxChecksPerSecond = 40
	// checkerLifetime is how long one checking stream is used before a
	// fresh one is dialled: well inside Prosody's c2s_timeout.
	checkerLifetime = 4 * time.Minute
	// sweepShare is the part of the interval a sweep may spend checking,
	// so that a sweep always ends before the next begins.
	sweepShare = 0.8
)

// checkSchedule remembers when each pending invite was last checked, so
// that every sweep starts with the ones checked longest ago: when a sweep
// cannot check them all within its share of the interval, the next one
// goes on where it stopped instead of starting again from the oldest.
type checkSchedule struct {
	mu          sync.Mutex
	lastChecked map[string]time.Time
	// budget is how long one sweep may check; zero means no bound.
	budget time.Duration
}

// order sorts invs least recently checked first (never checked first of
// all, then in the order given, which is the pending index's: soonest
// expiry first, and for tokens of one lifetime the oldest invite first) and forgets invites that are no
// longer pending.
func (c *checkSchedule) order(invs []store.Invite) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastChecked == nil {
		c.lastChecked = make(map[string]time.Time)
	}
	live := make(map[string]time.Time, len(invs))
	for _, inv := range invs {
		live[inv.ID] = c.lastChecked[inv.ID]
	}
	c.lastChecked = live
	slices.SortStableFunc(invs, func(a, b store.Invite) int {
		return live[a.ID].Compare(live[b.ID])
	})
}

func (c *checkSchedule) checked(id string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastChecked == nil {
		c.lastChecked = make(map[string]time.Time)
	}
	c.lastChecked[id] = at
}

// tracker is usage tracking: it learns what became of pending invites
// (by the server's refusal of their token, or their expiry) and retries
// revocations that failed. Each sweep also expires account requests, which
// have no clock of their own.
type tracker struct {
	*core
	registrar Registrar
	// schedule orders the token checks.
	schedule checkSchedule
	uses     *useLedger
	module   *serverModule
	revoker  *revoker
	desk     *requestDesk
}

// CheckPending is one sweep of usage tracking: pending invites past their
// expiry become expired; those whose token the server no longer accepts
// were used, and their inviter is told; cancelled invites whose token
// could not be revoked yet are tried again. Account requests past their
// time are marked expired. Browser registrations the
// store failed to record are recorded first. An invite someone holds
// right now (a registration, a cancel) is left to the next sweep.
func (t *tracker) CheckPending(ctx context.Context) error {
	t.desk.ExpireRequests(ctx)
	t.uses.payDebts(ctx)
	t.module.refreshModule(ctx)
	now := t.now()
	// The pending index comes soonest expiry first, a page at a time:
	// expired invites are settled as their page is read, the others go
	// into the schedule of token checks as small references rather than
	// whole records.
	var live []store.Invite
	for after := (store.PendingRef{}); ; {
		page, err := t.store.PendingPage(ctx, after, sweepPage)
		if err != nil {
			return fmt.Errorf("usage check: %w", err)
		}
		for _, ref := range page {
			inv := pendingInvite(ref)
			if !inv.Expires.IsZero() && !now.Before(inv.Expires) {
				if unlock, ok := t.uses.tryLockInvite(ctx, inv.ID); ok {
					t.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "")
					unlock()
				}
				continue
			}
			live = append(live, inv)
		}
		if len(page) < sweepPage {
			break
		}
		after = page[len(page)-1]
	}
	// A server that lists its tokens answers for all of them at once.
	if !t.listUsage(ctx) && len(live) > 0 && t.module.pollDue() {
		if err := t.checkTokens(ctx, live); err != nil {
			return err
		}
	}
	if t.module.revocation() == RevokeUnsupported {
		return nil // nothing to retry with
	}
	// Only those not expired yet: the server drops the others by itself.
	unrevoked, err := t.store.UnrevokedCancelled(ctx, now)
	if err != nil {
		return fmt.Errorf("usage check: %w", err)
	}
	for _, inv := range unrevoked {
		if err := t.revoker.revokeToken(ctx, systemActor, inv); err != nil {
			t.log.WarnContext(ctx, "revoking a cancelled invite's token failed; will retry",
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

// checkTokens asks the server about tokens at a bounded rate, least
// recently checked first, on a c2s stream renewed before the server's
// timeout, until all are checked or the sweep's time is up; it settles the
// tokens the server refuses.
func (t *tracker) checkTokens(ctx context.Context, invs []store.Invite) error {
	t.schedule.order(invs)
	// The sweep's clock and pace start with the first check: dialling is
	// not checking, and the first check need not wait.
	var start time.Time
	pace := time.NewTicker(time.Second / maxChecksPerSecond)
	defer pace.Stop()
	var checker TokenChecker
	var dialled time.Time
	defer func() {
		if checker != nil {
			checker.Close()
		}
	}()
	checked := 0
	t.schedule.mu.Lock()
	budget := t.schedule.budget
	t.schedule.mu.Unlock()
	// The pace makes the budget a number of checks; the clock still
	// stops a sweep that a slow server stretches.
	limit := len(invs)
	if budget > 0 {
		limit = min(limit, max(1, int(budget*maxChecksPerSecond/time.Second)))
	}
	for _, inv := range invs {
		if budget > 0 && (checked >= limit || (!start.IsZero() && time.Since(start) >= budget)) {
			t.log.WarnContext(ctx, "usage tracking: not every pending invite fits in one interval; the rest go first next time",
				slog.Int("checked", checked), slog.Int("pending", len(invs)), slog.Duration("budget", budget))
			return nil
		}
		if checker == nil || time.Since(dialled) >= checkerLifetime {
			if checker != nil {
				checker.Close()
			}
			c, err := t.registrar.DialChecker(ctx)
			if err != nil {
				return fmt.Errorf("usage check: %w", err)
			}
			checker, dialled = c, time.Now()
		}
		if start.IsZero() {
			start = time.Now()
		} else {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-pace.C:
			}
		}
		// A registration holding the invite records it, with the account;
		// the check and what follows from it must not interleave with one.
		unlock, ok := t.uses.tryLockInvite(ctx, inv.ID)
		if !ok {
			continue
		}
		err := checker.Check(ctx, inv.Token)
		if errors.Is(err, ErrTokenRejected) {
			t.settleRejected(ctx, inv)
		}
		unlock()
		if err != nil && !errors.Is(err, ErrTokenRejected) {
			return fmt.Errorf("usage check of %s: %w", inv.ID, err)
		}
		t.schedule.checked(inv.ID, t.now())
		checked++
	}
	return nil
}

// settleRejected records a pending invite whose token the server refuses:
// used when that happened well before its expiry, expired otherwise. With
// no known expiry it cannot tell, and says so instead of notifying.
func (t *tracker) settleRejected(ctx context.Context, inv store.Invite) {
	switch {
	case inv.Expires.IsZero():
		t.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "token no longer accepted; expiry unknown, so maybe used")
	case t.now().Add(expiryMargin).Before(inv.Expires):
		t.settle(ctx, inv, store.StateUsed, ActionInviteUse, "detected by token check")
	default:
		t.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "token refused at its expiry")
	}
}

// tokenChecks asks the server about tokens before they are cancelled, over
// one stream dialled on first use. Once the server cannot be asked, every
// token counts as live: cancelling is then the safe choice.
type tokenChecks struct {
	t       *tracker
	checker TokenChecker
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
		c, err := tc.t.registrar.DialChecker(ctx)
		if err != nil {
			tc.t.log.WarnContext(ctx, "cannot check tokens before cancelling", slog.Any("err", err))
			tc.down = true
			return false
		}
		tc.checker = c
	}
	err := tc.checker.Check(ctx, inv.Token)
	switch {
	case errors.Is(err, ErrTokenRejected):
		tc.t.settleRejected(ctx, inv)
		return true
	case err != nil:
		tc.t.log.WarnContext(ctx, "token check failed before cancelling", slog.Any("err", err))
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
func (t *tracker) settle(ctx context.Context, inv store.Invite, to store.State, action, detail string) {
	settled, err := t.store.SetInviteState(ctx, inv.ID, to, "", store.AuditEntry{
		Time: t.now().UTC(), Actor: systemActor, Action: action, Subject: inv.ID, Detail: detail,
	})
	if errors.Is(err, store.ErrNotPending) {
		return // settled meanwhile by someone else
	}
	if err != nil {
		t.log.ErrorContext(ctx, "usage check: state change failed", slog.String("id", inv.ID), slog.Any("err", err))
		return
	}
	t.log.InfoContext(ctx, "invite "+string(to), slog.String("id", inv.ID), slog.String("inviter", inv.Inviter))
	if to == store.StateExpired {
		t.forgetExpired(ctx, inv)
	}
	if to == store.StateUsed {
		t.observer.InviteUsed()
		t.notify(ctx, inv.Inviter, InviteUsed{Invite: viewOf(settled)})
		t.watch.used(ctx, viewOf(settled), "")
	}
}

// forgetExpired deletes an expired invite's token at the server where the
// server can delete tokens: Prosody keeps expired tokens in its storage,
// and its cost of minting grows with every token it holds. Where it
// cannot, the token stays until the server purges it; a failure is only
// logged, since the token no longer works anyway.
func (t *tracker) forgetExpired(ctx context.Context, inv store.Invite) {
	if t.module.revocation() != RevokeByDeletion {
		return
	}
	if err := t.module.deleteToken(ctx, inv.Token); err != nil {
		t.log.DebugContext(ctx, "expired token not deleted at the server", slog.String("id", inv.ID), slog.Any("err", err))
	}
}

// Track runs usage tracking every interval until ctx ends.
func (t *tracker) Track(ctx context.Context, interval time.Duration) {
	t.schedule.mu.Lock()
	t.schedule.budget = time.Duration(float64(interval) * sweepShare)
	t.schedule.mu.Unlock()
	every(ctx, interval, func() {
		if err := t.CheckPending(ctx); err != nil && ctx.Err() == nil {
			t.log.WarnContext(ctx, "usage check failed; next try in one interval", slog.Any("err", err))
		}
	})
}

// every runs fn each interval until ctx ends: the shape of the service's
// background work.
func every(ctx context.Context, interval time.Duration, fn func()) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			fn()
		}
	}
}
