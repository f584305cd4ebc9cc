package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/store"
)

// Errors of browser registration, so that front ends need not know the
// registration client.
var (
	// ErrTokenRejected means the server refused the invite's token although
	// the ledger still had it pending: it was used elsewhere, or expired
	// there first. It is an ErrNotPending.
	ErrTokenRejected = fmt.Errorf("%w: the server refused its token", ErrNotPending)
	// ErrUsernameTaken means the account already exists.
	ErrUsernameTaken = errors.New("username already registered")
	// ErrUsernameRefused means the username or the password cannot be
	// used: the server refused it, or the username breaks one of the
	// rules of PrepareUsername (ErrUsernameInvalid, ErrUsernameTooLong and
	// ErrUsernameConfusable are all ErrUsernameRefused). The user can fix
	// it; the invite stays usable.
	ErrUsernameRefused = errors.New("username or password not acceptable to the server")
)

// Tunables of browser registration.
const (
	// registrationTimeout bounds the server's part of one browser
	// registration: creating the account, then logging in to learn its
	// address. Once begun it runs to its end even if the browser goes
	// away, because an account the server created and we did not record
	// is the worst outcome there is.
	registrationTimeout = 30 * time.Second
	// useRecordAttempts and useRetryDelay say how hard recording a
	// registration tries before the use is kept as owed (see owedUse).
	useRecordAttempts = 3
	useRetryDelay     = 500 * time.Millisecond
	// lockWait bounds how long revoke waits for a registration that holds
	// one of the invites it cancels: longer than a registration can hold
	// one, so revoke gives up only on a hung store.
	lockWait = registrationTimeout + useRecordAttempts*(storeWriteTimeout+useRetryDelay) + 5*time.Second
)

// RegisterAccount creates an account with the invite's token over the
// server's client port, then marks the invite used by that account. The
// username is mapped and checked by PrepareUsername first; the account
// returned and recorded is the one the server says it created. The
// password only passes through: it is neither logged nor stored.
//
// The whole registration holds the invite's lock (see inviteLocks): a
// cancel or revoke of this invite waits for it and then finds the invite
// used, and usage tracking leaves it alone meanwhile. A second
// registration with the same invite fails at once with
// ErrRegistrationInProgress rather than queueing behind the first.
func (s *Service) RegisterAccount(ctx context.Context, id, username, password string) (jid.JID, error) {
	if _, err := s.record(ctx, id); err != nil {
		return jid.JID{}, err
	}
	username, err := PrepareUsername(username)
	if err != nil {
		return jid.JID{}, fmt.Errorf("register account: %w", err)
	}
	s.regMu.Lock()
	busy := s.inRegistration[id]
	s.inRegistration[id] = true
	s.regMu.Unlock()
	if busy {
		return jid.JID{}, ErrRegistrationInProgress
	}
	defer func() {
		s.regMu.Lock()
		delete(s.inRegistration, id)
		s.regMu.Unlock()
	}()

	// Wait out a cancel, revoke or usage check of this invite, then read it
	// again: what they decided stands.
	unlock, err := s.lockInvite(ctx, id)
	if err != nil {
		return jid.JID{}, fmt.Errorf("register account: %w", err)
	}
	defer unlock()
	inv, err := s.record(ctx, id)
	if err != nil {
		return jid.JID{}, err
	}
	if !viewOf(inv).Usable(s.now()) {
		return jid.JID{}, ErrNotPending
	}
	if inv.ResetFor != "" {
		// The server's reset token would also create a new account; a
		// reset link sets the password of its own account only.
		if local, _, _ := strings.Cut(inv.ResetFor, "@"); username != local {
			return jid.JID{}, fmt.Errorf("register account: %w: a reset link is for %s only", ErrUsernameRefused, inv.ResetFor)
		}
	}

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registrationTimeout)
	defer cancel()
	requested, err := s.registrar.Register(rctx, inv.Token, username, password)
	switch {
	case errors.Is(err, ErrTokenRejected):
		// Usage tracking will record what became of it; the visitor just
		// learns the invite is spent.
		return jid.JID{}, ErrTokenRejected
	case errors.Is(err, ErrUsernameTaken):
		return jid.JID{}, fmt.Errorf("register account: %w", ErrUsernameTaken)
	case errors.Is(err, ErrUsernameRefused):
		return jid.JID{}, fmt.Errorf("register account: %w", err)
	case err != nil:
		return jid.JID{}, fmt.Errorf("register account: %w", err)
	}
	account := s.createdAccount(rctx, requested, password)
	s.recordUse(ctx, inv, account)
	s.log.InfoContext(ctx, "account registered with invite", slog.String("id", id),
		slog.String("account", account.String()), slog.String("inviter", inv.Inviter))
	return account, nil
}

// createdAccount asks the server which account it created, by logging in
// as it: the server maps usernames by its own rules, which PrepareUsername
// mirrors but cannot promise to match (another server, another Unicode
// version). If the login fails, the address asked for is the best guess,
// and the log says so.
func (s *Service) createdAccount(ctx context.Context, requested jid.JID, password string) jid.JID {
	bound, err := s.registrar.BoundJID(ctx, requested, password)
	if err != nil {
		s.log.WarnContext(ctx, "account registered, but logging in to confirm its address failed; recording the address asked for",
			slog.String("account", requested.String()), slog.Any("err", err))
		return requested
	}
	if !bound.Equal(requested) {
		s.log.InfoContext(ctx, "the server created the account under another address",
			slog.String("requested", requested.String()), slog.String("account", bound.String()))
	}
	return bound
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
func (s *Service) recordUse(ctx context.Context, inv store.Invite, account jid.JID) {
	use := owedUse{inv: inv, account: account.String(), at: s.now().UTC()}
	var err error
	for attempt := range useRecordAttempts {
		if attempt > 0 {
			time.Sleep(useRetryDelay)
		}
		if err = s.markUsed(ctx, use); err == nil {
			return
		}
	}
	s.owedMu.Lock()
	s.owed[inv.ID] = use
	s.owedMu.Unlock()
	s.log.ErrorContext(ctx, "account registered but its invite is not marked used yet; retrying with the next sweep",
		slog.String("id", inv.ID), slog.String("account", use.account), slog.Any("err", err))
}

// markUsed writes use to the store and tells the inviter.
func (s *Service) markUsed(ctx context.Context, use owedUse) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	used, err := s.store.SetInviteState(wctx, use.inv.ID, store.StateUsed, use.account, store.AuditEntry{
		Time: use.at, Actor: use.account, Action: ActionInviteUse, Subject: use.inv.ID,
		Detail: useDetail(use.inv),
	})
	if errors.Is(err, store.ErrNotPending) {
		// Nothing settles an invite without its lock, which the
		// registration held: this is a bug, and retrying cannot help.
		s.log.ErrorContext(ctx, "invite settled by something else while its registration held it",
			slog.String("id", use.inv.ID), slog.String("account", use.account), slog.Any("err", err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark invite %s used: %w", use.inv.ID, err)
	}
	s.observer.InviteUsed()
	s.announceUse(ctx, viewOf(used), use.account)
	return nil
}

// payOwed writes the use owed to invite id, if there is one. The caller
// holds id's lock.
func (s *Service) payOwed(ctx context.Context, id string) error {
	s.owedMu.Lock()
	use, ok := s.owed[id]
	s.owedMu.Unlock()
	if !ok {
		return nil
	}
	if err := s.markUsed(ctx, use); err != nil {
		return fmt.Errorf("record the registration of %s first: %w", use.account, err)
	}
	s.owedMu.Lock()
	delete(s.owed, id)
	s.owedMu.Unlock()
	s.log.InfoContext(ctx, "owed invite use recorded", slog.String("id", id), slog.String("account", use.account))
	return nil
}

// payDebts tries every owed use whose invite nobody holds right now.
func (s *Service) payDebts(ctx context.Context) {
	s.owedMu.Lock()
	ids := make([]string, 0, len(s.owed))
	for id := range s.owed {
		ids = append(ids, id)
	}
	s.owedMu.Unlock()
	for _, id := range ids {
		if unlock, ok := s.tryLockInvite(ctx, id); ok {
			unlock()
		}
	}
}

// lockInvite takes invite id's lifecycle lock, waiting until ctx ends at
// most, and first writes any use owed to it.
func (s *Service) lockInvite(ctx context.Context, id string) (unlock func(), err error) {
	unlock, err = s.locks.lock(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("wait for invite %s: %w", id, err)
	}
	if err := s.payOwed(ctx, id); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// tryLockInvite is lockInvite for background work, which skips an invite
// someone holds: it takes the lock only if it is free right now (and the
// owed use, if any, could be written).
func (s *Service) tryLockInvite(ctx context.Context, id string) (unlock func(), ok bool) {
	unlock, ok = s.locks.tryLock(id)
	if !ok {
		return nil, false
	}
	if err := s.payOwed(ctx, id); err != nil {
		s.log.WarnContext(ctx, "owed invite use still not recorded", slog.String("id", id), slog.Any("err", err))
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
