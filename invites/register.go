package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
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

// registration creates accounts in the browser with an invite's token,
// over the server's client port, and has the use recorded.
type registration struct {
	*core
	registrar Registrar
	uses      *useLedger
	// mu guards busy: invites whose token a browser registration is using
	// right now, so that a second registration with the same invite (a
	// double click) fails at once instead of waiting.
	mu   sync.Mutex
	busy map[string]bool
}

// begin marks invite id as in registration, unless it is already; end
// unmarks it.
func (rg *registration) begin(id string) (end func(), ok bool) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if rg.busy[id] {
		return nil, false
	}
	rg.busy[id] = true
	return func() {
		rg.mu.Lock()
		delete(rg.busy, id)
		rg.mu.Unlock()
	}, true
}

// RegisterAccount creates an account with the invite's token over the
// server's client port, then marks the invite used by that account. The
// username is mapped and checked by PrepareUsername first, the password
// by CheckPassword (what the server would refuse changes nothing); the
// account returned and recorded is the one the server says it created.
// The password only passes through: it is neither logged nor stored.
//
// The whole registration holds the invite's lock (see inviteLocks): a
// cancel or revoke of this invite waits for it and then finds the invite
// used, and usage tracking leaves it alone meanwhile. A second
// registration with the same invite fails at once with
// ErrRegistrationInProgress rather than queueing behind the first.
func (rg *registration) RegisterAccount(ctx context.Context, id, username, password string) (jid.JID, error) {
	if _, err := rg.record(ctx, id); err != nil {
		return jid.JID{}, err
	}
	username, err := PrepareUsername(username)
	if err != nil {
		return jid.JID{}, fmt.Errorf("register account: %w", err)
	}
	if err := CheckPassword(password); err != nil {
		return jid.JID{}, fmt.Errorf("register account: %w", err)
	}
	end, ok := rg.begin(id)
	if !ok {
		return jid.JID{}, ErrRegistrationInProgress
	}
	defer end()

	// Wait out a cancel, revoke or usage check of this invite, then read it
	// again: what they decided stands.
	unlock, err := rg.uses.lockInvite(ctx, id)
	if err != nil {
		return jid.JID{}, fmt.Errorf("register account: %w", err)
	}
	defer unlock()
	inv, err := rg.record(ctx, id)
	if err != nil {
		return jid.JID{}, err
	}
	if !viewOf(inv).Usable(rg.now()) {
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
	requested, err := rg.registrar.Register(rctx, inv.Token, username, password)
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
	account := rg.createdAccount(rctx, requested, password)
	rg.uses.recordUse(ctx, inv, account)
	rg.log.InfoContext(ctx, "account registered with invite", slog.String("id", id),
		slog.String("account", account.String()), slog.String("inviter", inv.Inviter))
	return account, nil
}

// createdAccount asks the server which account it created, by logging in
// as it: the server maps usernames by its own rules, which PrepareUsername
// mirrors but cannot promise to match (another server, another Unicode
// version). If the login fails, the address asked for is the best guess,
// and the log says so.
func (rg *registration) createdAccount(ctx context.Context, requested jid.JID, password string) jid.JID {
	bound, err := rg.registrar.BoundJID(ctx, requested, password)
	if err != nil {
		rg.log.WarnContext(ctx, "account registered, but logging in to confirm its address failed; recording the address asked for",
			slog.String("account", requested.String()), slog.Any("err", err))
		return requested
	}
	if !bound.Equal(requested) {
		rg.log.InfoContext(ctx, "the server created the account under another address",
			slog.String("requested", requested.String()), slog.String("account", bound.String()))
	}
	return bound
}
