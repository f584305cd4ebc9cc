// Package homeserver is the room of everything that speaks a server's
// protocol, and of what every server shares. Its packages implement what
// the invites service names in invites/server.go:
//
//   - adhoc runs the server's XEP-0050 commands (XEP-0401 minting);
//   - prosody is Prosody: its reset command, the fixes its configuration
//     needs, and the protocol of mod_invitebot;
//   - ejabberd is ejabberd: minting as the minter account, its API
//     commands (resets, usage, deletion, the account check), and the
//     ejabberd.yml they need;
//   - minter keeps the minter account logged in, for servers where the
//     component may not run the commands itself;
//   - ibr registers accounts with a token and checks tokens (XEP-0445,
//     XEP-0077), over the client port;
//   - this package adapts ibr to the service's Registrar.
//
// Only cmd/invitebot wires these packages; the front ends (bot, web) never
// import them.
package homeserver

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/invites"
)

// Registrar is the server's client port as the invites service uses it:
// ibr with its errors given the service's meaning.
type Registrar struct {
	// C2S says how to reach the client port.
	C2S ibr.Config
}

// Register implements invites.Registrar.
func (r Registrar) Register(ctx context.Context, token, username, password string) (jid.JID, error) {
	account, err := ibr.Register(ctx, r.C2S, token, username, password)
	return account, meaning(err)
}

// BoundJID implements invites.Registrar.
func (r Registrar) BoundJID(ctx context.Context, account jid.JID, password string) (jid.JID, error) {
	return ibr.BoundJID(ctx, r.C2S, account, password)
}

// Remove implements invites.Registrar.
func (r Registrar) Remove(ctx context.Context, account jid.JID, password string) error {
	return ibr.Remove(ctx, r.C2S, account, password)
}

// DialChecker implements invites.Registrar.
func (r Registrar) DialChecker(ctx context.Context) (invites.TokenChecker, error) {
	c, err := ibr.DialChecker(ctx, r.C2S)
	if err != nil {
		return nil, err
	}
	return checker{c}, nil
}

// checker is an ibr.Checker whose refusals are the service's.
type checker struct{ c *ibr.Checker }

func (c checker) Check(ctx context.Context, token string) error {
	return meaning(c.c.Check(ctx, token))
}

func (c checker) Close() error { return c.c.Close() }

// meaning wraps ibr's errors with the service's, keeping ibr's text and
// the server's stanza error.
func meaning(err error) error {
	switch {
	case errors.Is(err, ibr.ErrTokenRejected):
		return fmt.Errorf("%w: %w", invites.ErrTokenRejected, err)
	case errors.Is(err, ibr.ErrTokenBound):
		return fmt.Errorf("%w: %w: %w", invites.ErrTokenBound, invites.ErrUsernameRefused, err)
	case errors.Is(err, ibr.ErrConflict):
		return fmt.Errorf("%w: %w", invites.ErrUsernameTaken, err)
	case errors.Is(err, ibr.ErrNotAcceptable):
		return fmt.Errorf("%w: %w", invites.ErrUsernameRefused, err)
	}
	return err
}
