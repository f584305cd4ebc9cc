package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites/ibr"
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
	// ErrUsernameRefused means the server refused the username or the
	// password.
	ErrUsernameRefused = errors.New("username or password not acceptable to the server")
)

// RegisterAccount creates username@domain with the invite's token over the
// server's client port, then marks the invite used by that account. The
// password only passes through: it is neither logged nor stored.
func (s *Service) RegisterAccount(ctx context.Context, id, username, password string) (jid.JID, error) {
	inv, err := s.record(ctx, id)
	if err != nil {
		return jid.JID{}, err
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
	if !viewOf(inv).Usable(s.now()) {
		return jid.JID{}, ErrNotPending
	}
	account, err := ibr.Register(ctx, s.c2s, inv.Token, username, password)
	switch {
	case errors.Is(err, ibr.ErrTokenRejected):
		// Usage tracking will record what became of it; the visitor just
		// learns the invite is spent.
		return jid.JID{}, ErrTokenRejected
	case errors.Is(err, ibr.ErrConflict):
		return jid.JID{}, fmt.Errorf("register account: %w", ErrUsernameTaken)
	case errors.Is(err, ibr.ErrNotAcceptable):
		return jid.JID{}, fmt.Errorf("register account: %w: %w", ErrUsernameRefused, err)
	case err != nil:
		return jid.JID{}, fmt.Errorf("register account: %w", err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	used, err := s.store.SetInviteState(wctx, id, store.StateUsed, account.String(), store.AuditEntry{
		Time: s.now().UTC(), Actor: account.String(), Action: ActionInviteUse, Subject: id,
		Detail: "registered in the browser; invited by " + inv.Inviter,
	})
	if err != nil {
		// The account exists; only our record lags (or usage tracking
		// got there first and told the inviter). Say so in the log, but do
		// not tell the new user their account failed.
		s.log.ErrorContext(ctx, "account registered but invite not marked used",
			slog.String("id", id), slog.String("account", account.String()), slog.Any("err", err))
	} else {
		s.observer.InviteUsed()
		s.announceUse(ctx, viewOf(used), account.String())
	}
	s.log.InfoContext(ctx, "account registered with invite", slog.String("id", id),
		slog.String("account", account.String()), slog.String("inviter", inv.Inviter))
	return account, nil
}

func (s *Service) registering(id string) bool {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	return s.inRegistration[id]
}
