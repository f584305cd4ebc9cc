package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/store"
)

// useLedger decides each invite's fate one step at a time and records its
// use: it holds the invites' lifecycle locks (inviteLocks) and the uses a
// failing store could not take yet (owedUse), which whoever takes an
// invite's lock next writes first. Browser registrations and the server's
// usage reports record uses through it.
type useLedger struct {
	*core
	// module introduces a new account to its inviter.
	module *serverModule
	// locks serialises each invite's lifecycle: registration, cancel,
	// revoke and usage tracking take the invite's lock.
	locks inviteLocks
	// owedMu guards owed: browser registrations not recorded yet because
	// the store failed, by invite id (see owedUse).
	owedMu sync.Mutex
	owed   map[string]owedUse
	// unknownTokens bounds the log lines about accounts the server made
	// with tokens the bot did not hand out: whoever holds such tokens
	// decides how many there are.
	unknownTokens *refusalBudget
}

func newUseLedger(c *core, m *serverModule) *useLedger {
	return &useLedger{core: c, module: m, owed: make(map[string]owedUse), unknownTokens: newRefusalBudget(c.now)}
}

// owedUse is a browser registration whose use of an invite is not in the
// store yet because the store failed. The account exists, so the use must
// be recorded before anything else decides the invite's fate: whoever takes
// the invite's lock next writes it first (lockInvite), and every usage
// tracking sweep tries (payDebts). Only a restart while the store stays
// broken loses it, and the log has the details then.
type owedUse struct {
	inv     store.Invite
	account string
	at      time.Time
}

// recordUse marks inv used by account. The caller holds inv's lock, so no
// cancel or sweep can have settled it meanwhile. A store that keeps failing
// leaves the use owed.
func (u *useLedger) recordUse(ctx context.Context, inv store.Invite, account jid.JID) {
	use := owedUse{inv: inv, account: account.String(), at: u.now().UTC()}
	var err error
	for attempt := range useRecordAttempts {
		if attempt > 0 {
			time.Sleep(useRetryDelay)
		}
		if err = u.markUsed(ctx, use); err == nil {
			return
		}
	}
	u.owedMu.Lock()
	u.owed[inv.ID] = use
	u.owedMu.Unlock()
	u.log.ErrorContext(ctx, "account registered but its invite is not marked used yet; retrying with the next sweep",
		slog.String("id", inv.ID), slog.String("account", use.account), slog.Any("err", err))
}

// markUsed writes use to the store and tells the inviter.
func (u *useLedger) markUsed(ctx context.Context, use owedUse) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	used, err := u.store.SetInviteState(wctx, use.inv.ID, store.StateUsed, use.account, store.AuditEntry{
		Time: use.at, Actor: use.account, Action: ActionInviteUse, Subject: use.inv.ID,
		Detail: useDetail(use.inv),
	})
	if errors.Is(err, store.ErrNotPending) {
		// Nothing settles an invite without its lock, which the
		// registration held: this is a bug, and retrying cannot help.
		u.log.ErrorContext(ctx, "invite settled by something else while its registration held it",
			slog.String("id", use.inv.ID), slog.String("account", use.account), slog.Any("err", err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark invite %s used: %w", use.inv.ID, err)
	}
	u.observer.InviteUsed()
	u.module.announceUse(ctx, viewOf(used), use.account)
	return nil
}

// payOwed writes the use owed to invite id, if there is one. The caller
// holds id's lock.
func (u *useLedger) payOwed(ctx context.Context, id string) error {
	u.owedMu.Lock()
	use, ok := u.owed[id]
	u.owedMu.Unlock()
	if !ok {
		return nil
	}
	if err := u.markUsed(ctx, use); err != nil {
		return fmt.Errorf("record the registration of %s first: %w", use.account, err)
	}
	u.owedMu.Lock()
	delete(u.owed, id)
	u.owedMu.Unlock()
	u.log.InfoContext(ctx, "owed invite use recorded", slog.String("id", id), slog.String("account", use.account))
	return nil
}

// payDebts tries every owed use whose invite nobody holds right now.
func (u *useLedger) payDebts(ctx context.Context) {
	u.owedMu.Lock()
	ids := make([]string, 0, len(u.owed))
	for id := range u.owed {
		ids = append(ids, id)
	}
	u.owedMu.Unlock()
	for _, id := range ids {
		if unlock, ok := u.tryLockInvite(ctx, id); ok {
			unlock()
		}
	}
}

// lockInvite takes invite id's lifecycle lock, waiting until ctx ends at
// most, and first writes any use owed to it.
func (u *useLedger) lockInvite(ctx context.Context, id string) (unlock func(), err error) {
	unlock, err = u.locks.lock(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("wait for invite %s: %w", id, err)
	}
	if err := u.payOwed(ctx, id); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// tryLockInvite is lockInvite for background work, which skips an invite
// someone holds: it takes the lock only if it is free right now (and the
// owed use, if any, could be written).
func (u *useLedger) tryLockInvite(ctx context.Context, id string) (unlock func(), ok bool) {
	unlock, ok = u.locks.tryLock(id)
	if !ok {
		return nil, false
	}
	if err := u.payOwed(ctx, id); err != nil {
		u.log.WarnContext(ctx, "owed invite use still not recorded", slog.String("id", id), slog.Any("err", err))
		unlock()
		return nil, false
	}
	return unlock, true
}

// useDetail is the audit record of a browser registration with inv.
func useDetail(inv store.Invite) string {
	if inv.ResetFor != "" {
		return "password reset in the browser; link made by " + inv.Inviter
	}
	return "registered in the browser; invited by " + inv.Inviter
}
