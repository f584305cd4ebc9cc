package ejabberdtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/homeserver/ejabberd"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/minter"
	"durare.org/invitebot/invites"
)

// clientTimeout bounds a helper's exchanges with the server: logins take
// milliseconds, the rest is slack for -race on a busy host.
const clientTimeout = 30 * time.Second

// MintAsMinter mints an account invitation on Domain the way the bot
// does: logged in as the minter account (minter.Session), through
// urn:xmpp:invite#create-account (ejabberd.Issuer).
func (s *Server) MintAsMinter(t testing.TB) invites.Minted {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	var m invites.Minted
	err := s.AsAccount(ctx, s.Minter, s.MinterPassword, func(iss *ejabberd.Issuer) error {
		var err error
		m, err = iss.Mint(ctx)
		return err
	})
	if err != nil {
		s.fatalf(t, "mint as %s: %v", s.Minter, err)
	}
	return m
}

// AsAccount logs account in (minter.Session, without its rights check)
// and runs f with an Issuer running commands as it, then logs out.
func (s *Server) AsAccount(ctx context.Context, account jid.JID, pass string, f func(*ejabberd.Issuer) error) error {
	up := make(chan struct{}, 1)
	down := make(chan error, 1)
	sess := minter.New(minter.Config{
		Account: account, Password: pass, Addr: s.C2SAddr, TLS: s.TLSConfig(s.Domain),
		OnUp:        func() { up <- struct{}{} },
		OnDown:      func(err error) { down <- err },
		CheckRights: func(context.Context, *slog.Logger, jid.JID, adhoc.IQSender) {},
	}, slog.New(slog.DiscardHandler))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = sess.Run(rctx) }()
	defer func() { stop(); <-done }()
	select {
	case <-up:
	case err := <-down:
		return fmt.Errorf("log in as %s: %w", account, err)
	case <-ctx.Done():
		return fmt.Errorf("log in as %s: %w", account, ctx.Err())
	}
	return f(ejabberd.NewIssuer(account, sess))
}

// RegisterWithToken registers user on Domain with token over c2s
// (XEP-0445 preauth, then XEP-0077), as a new account's app would, and
// returns the account; any failure fails the test.
func (s *Server) RegisterWithToken(t testing.TB, token, user, pass string) jid.JID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	j, err := ibr.Register(ctx, s.IBRConfig(), token, user, pass)
	if err != nil {
		s.fatalf(t, "register %s with a token: %v", user, err)
	}
	return j
}

// CanLogin reports whether account logs in with pass (SCRAM over
// STARTTLS); an error means the question could not be asked.
func (s *Server) CanLogin(account jid.JID, pass string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	_, err := ibr.BoundJID(ctx, s.IBRConfig(), account, pass)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ibr.ErrAuthFailed):
		return false, nil
	}
	return false, err
}
