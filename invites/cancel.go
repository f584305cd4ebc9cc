package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// canceller cancels pending invites, one (Cancel) or many (revoke,
// closing an event link): each under its lifecycle lock, after asking the
// server whether its token is spent already (tracker), then revoking the
// token (revoker).
type canceller struct {
	*core
	uses    *useLedger
	tracker *tracker
	revoker *revoker
}

// Cancel marks a pending invite cancelled and revokes its token at the
// server. Inviters may cancel their own, admins any (policy.CanCancel).
// A browser registration with the invite under way finishes first: Cancel
// waits for it (within ctx), then reports ErrNotPending with the invite
// used, and by whom.
func (c *canceller) Cancel(ctx context.Context, a Actor, id string) (Invite, error) {
	if err := a.may(policy.CancelInvite); err != nil {
		return Invite{}, err
	}
	inv, err := c.record(ctx, id)
	if err != nil {
		return Invite{}, err
	}
	if !policy.CanCancel(a.role, a.jid, inv.Inviter) {
		return Invite{}, ErrNoSuchInvite
	}
	if inv.State != store.StatePending {
		return viewOf(inv), ErrNotPending
	}
	unlock, err := c.uses.lockInvite(ctx, id)
	if err != nil {
		return Invite{}, fmt.Errorf("cancel invite: %w", err)
	}
	checks := &tokenChecks{t: c.tracker}
	cancelled, err := c.cancelLocked(ctx, checks, a.jid, id, "")
	unlock()
	checks.close()
	if errors.Is(err, ErrNotPending) {
		return viewOf(cancelled), err
	} else if err != nil {
		return Invite{}, err
	}
	c.log.InfoContext(ctx, "invite cancelled", slog.String("id", id), slog.String("by", a.jid))
	done := viewOf(c.revoker.revokeCancelled(ctx, a.jid, cancelled))
	if cancelled.Inviter != a.jid {
		// Someone else's invite: its inviter would otherwise find it
		// cancelled with no word why.
		c.notify(ctx, cancelled.Inviter, InviteCancelled{Invite: done, By: a.jid})
	}
	return done, nil
}

// cancelLocked cancels invite id, whose lock the caller holds. An invite no
// longer pending, or whose token the server already refuses (then recorded
// as used or expired: a used token is a used invite, not a cancelled one,
// so the account it created is not hidden), gives ErrNotPending with the
// invite as it now stands.
func (c *canceller) cancelLocked(ctx context.Context, checks *tokenChecks, actor, id, detail string) (store.Invite, error) {
	inv, err := c.record(ctx, id)
	if err != nil {
		return store.Invite{}, err
	}
	if inv.State != store.StatePending {
		return inv, ErrNotPending
	}
	if checks.settleIfSpent(ctx, inv) {
		if inv, err = c.record(ctx, id); err != nil {
			return store.Invite{}, err
		}
		return inv, ErrNotPending
	}
	// The token check is done and decided the matter: write it even if the
	// request ran out of time meanwhile.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	cancelled, err := c.store.SetInviteState(wctx, id, store.StateCancelled, "", store.AuditEntry{
		Time: c.now().UTC(), Actor: actor, Action: ActionInviteCancel, Subject: id, Detail: detail,
	})
	if err != nil {
		return store.Invite{}, fmt.Errorf("cancel invite: %w", err)
	}
	return cancelled, nil
}

// cancelMany cancels the pending invites among invs, each under its lock
// (waited for within lockWait) and with detail in its audit entry, then
// makes as many of their tokens
// unusable at the server as revokeBudget allows; usage tracking retries the
// rest. It goes on past a failing invite, since every one left working is
// a working token, and returns the first failure, named after what.
func (c *canceller) cancelMany(ctx context.Context, actor string, invs []store.Invite, detail, what string) (cancelTally, error) {
	checks := &tokenChecks{t: c.tracker}
	defer checks.close()
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), lockWait)
	defer lcancel()
	var cancelled []store.Invite
	var failed error
	for _, inv := range invs {
		if inv.State != store.StatePending {
			continue
		}
		done, err := c.cancelOne(lctx, checks, actor, inv.ID, detail)
		switch {
		case err == nil:
			cancelled = append(cancelled, done)
		case errors.Is(err, ErrNotPending):
		case failed == nil:
			failed = fmt.Errorf("%s: cancel %s: %w", what, inv.ID, err)
		}
	}
	// Consuming tokens takes a few c2s round trips each. Within a bounded
	// time, do as many as possible.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), revokeBudget)
	defer rcancel()
	tally := cancelTally{Cancelled: len(cancelled)}
	for _, inv := range cancelled {
		if rctx.Err() != nil {
			tally.StillValid++
			continue
		}
		switch done := c.revoker.revokeCancelled(rctx, actor, inv); {
		case done.Unrevocable:
			tally.Unrevocable++
		case !done.Revoked:
			tally.StillValid++
		}
	}
	return tally, failed
}

// cancelTally says what cancelling many invites did.
type cancelTally struct {
	// Cancelled counts the invites cancelled.
	Cancelled int
	// StillValid counts those whose token the server still accepts for
	// now: usage tracking retries their revocation.
	StillValid int
	// Unrevocable counts those whose token the server refused to revoke
	// (bound to its account, and no deletion): they work until they
	// expire, and nothing retries.
	Unrevocable int
}

// revokeBudget bounds how long revoke spends consuming tokens before it
// answers; the rest are retried by usage tracking.
const revokeBudget = 20 * time.Second

// cancelOne cancels one invite of many under its lock.
func (c *canceller) cancelOne(ctx context.Context, checks *tokenChecks, actor, id, detail string) (store.Invite, error) {
	unlock, err := c.uses.lockInvite(ctx, id)
	if err != nil {
		return store.Invite{}, err
	}
	defer unlock()
	return c.cancelLocked(ctx, checks, actor, id, detail)
}
