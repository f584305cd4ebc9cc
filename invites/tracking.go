package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"durare.org/invitebot/store"
)

// sweepPage is how many entries a sweep reads at a time, of the pending
// index or of the check schedule. A server with many pending invites is
// swept page by page, so the bot's memory does not grow with them.
const sweepPage = 256

// Tunables of usage tracking. One preauth check costs Prosody more the
// more tokens it holds (its internal storage reads the whole token file:
// 0.24 ms with one token, about 0.4 s with 10,000 on Prosody 13), Debian's
// mod_limits throttles an unauthenticated stream to about 60 checks a
// second, and Prosody closes an unauthenticated stream after c2s_timeout
// (300 s). Prosody runs on one thread: every check is time that people
// registering wait for.
const (
	// serverShare is the most of the server's time that checks take: after
	// a check that took d, the next waits d*(1/serverShare-1), so that at
	// most serverShare of the time a check is in flight.
	serverShare = 0.05
	// maxChecksPerSecond bounds the pace of a fast server below its
	// throttle, so that tracking never competes with people registering.
	maxChecksPerSecond = 40
	// checkerLifetime is how long one checking stream is used before a
	// fresh one is dialled: well inside Prosody's c2s_timeout.
	checkerLifetime = 4 * time.Minute
	// sweepShare is the part of the interval a sweep may spend checking,
	// so that a sweep always ends before the next begins.
	sweepShare = 0.8
	// ageDivisor sets how often a pending invite is checked: again after
	// an eighth of its age, but at most once an interval. A new invite,
	// the one most likely to be used now, is checked every interval for
	// its first eight; a week-old one every maxCheckGap.
	ageDivisor = 8
	// maxCheckGap bounds the time between two checks of one invite.
	maxCheckGap = 6 * time.Hour
	// defaultTrackInterval is the interval CheckPending assumes outside
	// Track (tests, tools): the configuration's default.
	defaultTrackInterval = time.Minute
)

// pacer spaces token checks by the server's answer time (serverShare) and
// bounds how long one sweep checks. It outlives sweeps, so a sweep that
// begins right after a slow check still waits its turn.
type pacer struct {
	mu sync.Mutex
	// interval is Track's; budget is how long one sweep may check, zero
	// for no bound.
	interval, budget time.Duration
	// now and sleep are the pace's clock, real time unless a test sets one.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	// notBefore is when the next check may start.
	notBefore time.Time
}

func newPacer() *pacer {
	return &pacer{interval: defaultTrackInterval, now: time.Now, sleep: sleepCtx}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// settings returns the interval and the budget of a sweep.
func (p *pacer) settings() (interval, budget time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.interval, p.budget
}

// clock returns the pace's clock.
func (p *pacer) clock() time.Time {
	p.mu.Lock()
	now := p.now
	p.mu.Unlock()
	return now()
}

// errSweepTime ends a sweep whose share of the interval is over.
var errSweepTime = errors.New("the sweep's time is up")

// waitUntil blocks until the next check may start, or returns
// errSweepTime at once if that is not before end (zero: no end).
func (p *pacer) waitUntil(ctx context.Context, end time.Time) error {
	p.mu.Lock()
	now, start, sleep := p.now(), p.notBefore, p.sleep
	p.mu.Unlock()
	if !end.IsZero() && (!now.Before(end) || !start.Before(end)) {
		return errSweepTime
	}
	if d := start.Sub(now); d > 0 {
		return sleep(ctx, d)
	}
	return ctx.Err()
}

// observe sets when the next check may start, given that the one just
// answered started at began: after idle time in proportion to its answer
// time, and at least 1/maxChecksPerSecond after it started.
func (p *pacer) observe(began time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	took := max(now.Sub(began), 0)
	idle := max(time.Duration(float64(took)*(1/serverShare-1)), time.Second/maxChecksPerSecond-took)
	p.notBefore = now.Add(idle)
}

// tracker is usage tracking: it learns what became of pending invites
// (by the server's refusal of their token, or their expiry) and retries
// revocations that failed. Each sweep also expires account requests, which
// have no clock of their own. Which token to check when is the store's
// check schedule; how fast, the pacer's.
type tracker struct {
	*core
	registrar Registrar
	pace      *pacer
	uses      *useLedger
	module    *serverModule
	revoker   *revoker
	desk      *requestDesk
	// scheduled is set once this process made sure every pending invite
	// is in the check schedule.
	scheduled atomic.Bool
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
	t.module.purgeOnce(ctx)
	t.module.reconcileMints(ctx)
	t.fillSchedule(ctx)
	if err := t.expireDue(ctx); err != nil {
		return err
	}
	// A server that lists its tokens answers for all of them at once.
	if !t.listUsage(ctx) && t.module.pollDue() {
		if err := t.checkTokens(ctx); err != nil {
			return err
		}
	}
	if t.module.revocation() == RevokeUnsupported {
		return nil // nothing to retry with
	}
	// Only those not expired yet: the server drops the others by itself.
	unrevoked, err := t.store.UnrevokedCancelled(ctx, t.now())
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

// fillSchedule enters the pending invites that have no entry in the check
// schedule into it, once per start: a database from before the schedule
// has none, and one an older version wrote to since may miss a few.
func (t *tracker) fillSchedule(ctx context.Context) {
	if t.scheduled.Load() {
		return
	}
	n, err := t.store.FillSchedule(ctx)
	if err != nil {
		t.log.WarnContext(ctx, "usage tracking: could not fill the check schedule; trying again next time", slog.Any("err", err))
		return
	}
	t.scheduled.Store(true)
	if n > 0 {
		t.log.InfoContext(ctx, "usage tracking: pending invites entered into the check schedule, to be checked after the young ones",
			slog.Int("count", n))
	}
}

// expireDue settles the pending invites past their expiry. The pending
// index comes soonest expiry first, so it reads only those, a page at a
// time, and stops at the first that has not expired.
func (t *tracker) expireDue(ctx context.Context) error {
	now := t.now()
	for after := (store.PendingRef{}); ; {
		page, err := t.store.PendingPage(ctx, after, sweepPage)
		if err != nil {
			return fmt.Errorf("usage check: %w", err)
		}
		for _, ref := range page {
			if ref.Expires.IsZero() || now.Before(ref.Expires) {
				return nil
			}
			inv := pendingInvite(ref)
			if unlock, ok := t.uses.tryLockInvite(ctx, inv.ID); ok {
				t.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "")
				unlock()
			}
		}
		if len(page) < sweepPage {
			return nil
		}
		after = page[len(page)-1]
	}
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

// checkTokens asks the server about the tokens the check schedule says are
// due, young invites first, at the pacer's pace, on a c2s stream renewed
// before the server's timeout, until none is due or the sweep's time is
// up. It settles the tokens the server refuses and schedules the next
// check of the others. What it does not reach stays due, first in line
// next time.
func (t *tracker) checkTokens(ctx context.Context) error {
	interval, budget := t.pace.settings()
	sw := &sweep{t: t, interval: interval}
	if budget > 0 {
		sw.end = t.pace.clock().Add(budget)
	}
	defer sw.close()
	for after := (store.Check{}); ; {
		page, err := t.store.DueChecks(ctx, t.now(), after, sweepPage)
		if err != nil {
			return fmt.Errorf("usage check: %w", err)
		}
		for _, c := range page {
			err := sw.check(ctx, c)
			if errors.Is(err, errSweepTime) {
				t.log.InfoContext(ctx, "usage tracking: the checks due did not all fit in this interval; the youngest invites went first, the rest are next",
					slog.Int("checked", sw.checked), slog.Duration("budget", budget))
				return sw.flush(ctx)
			}
			if err != nil {
				_ = sw.flush(ctx)
				return err
			}
		}
		if err := sw.flush(ctx); err != nil {
			return err
		}
		if len(page) < sweepPage {
			return nil
		}
		after = page[len(page)-1]
	}
}

// sweep is one run of checkTokens: its stream, and the next checks of the
// invites it checked, written a page at a time.
type sweep struct {
	t        *tracker
	interval time.Duration
	// end is when the sweep's share of the interval is over; zero for no
	// bound.
	end     time.Time
	checker TokenChecker
	dialled time.Time
	next    []store.Check
	checked int
}

// check asks the server about c's token, unless c expired or someone holds
// its invite, and settles or reschedules it.
func (sw *sweep) check(ctx context.Context, c store.Check) error {
	t := sw.t
	inv := pendingInvite(c.PendingRef)
	if !inv.Expires.IsZero() && !t.now().Before(inv.Expires) {
		sw.expire(ctx, inv, c)
		return nil
	}
	if err := t.pace.waitUntil(ctx, sw.end); err != nil {
		return err
	}
	if err := sw.dial(ctx); err != nil {
		return err
	}
	// A registration holding the invite records it, with the account;
	// the check and what follows from it must not interleave with one.
	unlock, ok := t.uses.tryLockInvite(ctx, inv.ID)
	if !ok {
		sw.later(c, t.now())
		return nil
	}
	defer unlock()
	began := t.pace.clock()
	err := sw.checker.Check(ctx, inv.Token)
	t.pace.observe(began)
	switch {
	case errors.Is(err, ErrTokenRejected):
		t.settleRejected(ctx, inv)
	case err != nil:
		return fmt.Errorf("usage check of %s: %w", inv.ID, err)
	default:
		sw.next = append(sw.next, nextCheck(c, t.now(), sw.interval))
	}
	sw.checked++
	return nil
}

// expire settles an invite that expired since the sweep began, or leaves
// it for the next sweep when someone holds it.
func (sw *sweep) expire(ctx context.Context, inv store.Invite, c store.Check) {
	unlock, ok := sw.t.uses.tryLockInvite(ctx, inv.ID)
	if !ok {
		sw.later(c, sw.t.now())
		return
	}
	sw.t.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "")
	unlock()
}

// later puts c off by one interval, in its tier.
func (sw *sweep) later(c store.Check, now time.Time) {
	c.Due = now.Add(sw.interval)
	sw.next = append(sw.next, c)
}

// dial opens a checking stream, or a fresh one when the current one is
// near the server's timeout.
func (sw *sweep) dial(ctx context.Context) error {
	if sw.checker != nil && time.Since(sw.dialled) < checkerLifetime {
		return nil
	}
	sw.close()
	c, err := sw.t.registrar.DialChecker(ctx)
	if err != nil {
		return fmt.Errorf("usage check: %w", err)
	}
	sw.checker, sw.dialled = c, time.Now()
	return nil
}

// flush writes the next checks gathered so far.
func (sw *sweep) flush(ctx context.Context) error {
	if len(sw.next) == 0 {
		return nil
	}
	err := sw.t.store.Reschedule(context.WithoutCancel(ctx), sw.next)
	sw.next = sw.next[:0]
	if err != nil {
		return fmt.Errorf("usage check: %w", err)
	}
	return nil
}

// close ends the checking stream.
func (sw *sweep) close() {
	if sw.checker != nil {
		_ = sw.checker.Close()
		sw.checker = nil
	}
}

// nextCheck schedules the next check of an invite whose token the server
// accepted at now: after an eighth of its age, within [interval,
// maxCheckGap], in the tier of its age (the number of bits of its age in
// intervals), so that young invites are checked often and before old ones.
func nextCheck(c store.Check, now time.Time, interval time.Duration) store.Check {
	if interval <= 0 {
		interval = defaultTrackInterval
	}
	age := max(now.Sub(c.Created), 0)
	gap := min(max(age/ageDivisor, interval), maxCheckGap)
	c.Tier = uint8(min(bits.Len64(uint64(age/interval)), store.TierFill-1))
	c.Due = now.Add(gap)
	return c
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
	t.pace.mu.Lock()
	t.pace.interval = interval
	t.pace.budget = time.Duration(float64(interval) * sweepShare)
	t.pace.mu.Unlock()
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
