// Package auto serves whichever server the bot finds on the other end of
// its link. It holds the Prosody and the ejabberd implementation of what
// the invites service needs, and forwards each call to the one that
// matches the name the server gives itself (homeserver.Identify): an
// operator configures no server type, and a server replaced under a
// running bot is served the new way after the next link-up.
package auto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/ejabberd"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/invites"
)

// Config says how to reach each kind of server.
type Config struct {
	// Prosody mints through the component link or the minter account.
	// It also serves servers that are neither Prosody nor ejabberd: its
	// minting is plain XEP-0401.
	Prosody prosody.Issuer
	// Ejabberd mints as the minter account; nil when the bot has none,
	// since ejabberd serves its invite command to its own accounts only.
	Ejabberd *ejabberd.Issuer
	// Registrar reaches the server's client port.
	Registrar homeserver.Registrar
	// Identify asks the server who it is, for calls made before the
	// link-up's own answer arrived (Set).
	Identify func(context.Context) (homeserver.Software, error)
}

// Server implements invites.Issuer, ResetIssuer, AccountChecker, Revoker,
// Deleter, UsageLister and Registrar by forwarding to the implementation
// for the server it last found. Abilities the current server lacks answer
// invites.ErrNotOffered.
type Server struct {
	cfg  Config
	kind atomic.Pointer[string] // homeserver.Prosody, .Ejabberd, or another name
}

// New returns a Server that has not yet found out who it serves.
func New(cfg Config) *Server { return &Server{cfg: cfg} }

// ErrNoMinter means the server is ejabberd and the bot has no minter
// account: ejabberd runs create-account only for its own accounts.
var ErrNoMinter = errors.New("ejabberd lets only its own accounts create invites: set xmpp.minter and xmpp.minter_password")

// Set records which server the bot talks to, as the link-up's
// identification found.
func (s *Server) Set(sw homeserver.Software) {
	k := sw.Kind()
	s.kind.Store(&k)
}

// Kind is the kind of server last found, empty before the first answer.
func (s *Server) Kind() string {
	if k := s.kind.Load(); k != nil {
		return *k
	}
	return ""
}

// Ejabberd is the ejabberd implementation, nil without a minter account.
func (s *Server) Ejabberd() *ejabberd.Issuer { return s.cfg.Ejabberd }

// current returns the kind of server, asking it first when nobody has.
func (s *Server) current(ctx context.Context) (string, error) {
	if k := s.Kind(); k != "" {
		return k, nil
	}
	sw, err := s.cfg.Identify(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: could not tell which server it is: %w", invites.ErrServerUnreachable, err)
	}
	s.Set(sw)
	return sw.Kind(), nil
}

// ejabberd returns the ejabberd implementation when the server is
// ejabberd, nil when it is another one.
func (s *Server) ejabberd(ctx context.Context) (*ejabberd.Issuer, error) {
	k, err := s.current(ctx)
	if err != nil || k != homeserver.Ejabberd {
		return nil, err
	}
	if s.cfg.Ejabberd == nil {
		return nil, &invites.RefusedError{Node: invites.NodeCreateAccount, As: s.cfg.Prosody.From, Condition: "item-not-found",
			Err: ErrNoMinter, Fix: invites.Remedy{Message: ErrNoMinter.Error(),
				Attrs: []slog.Attr{slog.String("server", "ejabberd")}}}
	}
	return s.cfg.Ejabberd, nil
}

// Mint implements invites.Issuer.
func (s *Server) Mint(ctx context.Context) (invites.Minted, error) {
	e, err := s.ejabberd(ctx)
	switch {
	case err != nil:
		return invites.Minted{}, err
	case e != nil:
		return e.Mint(ctx)
	}
	return s.cfg.Prosody.Mint(ctx)
}

// OffersResets implements invites.ResetIssuer.
func (s *Server) OffersResets(ctx context.Context) (bool, error) {
	e, err := s.ejabberd(ctx)
	if errors.Is(err, ErrNoMinter) {
		return false, nil
	}
	switch {
	case err != nil:
		return false, err
	case e != nil:
		return e.OffersResets(ctx)
	}
	return s.cfg.Prosody.OffersResets(ctx)
}

// MintReset implements invites.ResetIssuer.
func (s *Server) MintReset(ctx context.Context, account jid.JID) (invites.Minted, error) {
	e, err := s.ejabberd(ctx)
	switch {
	case err != nil:
		return invites.Minted{}, err
	case e != nil:
		return e.MintReset(ctx, account)
	}
	return s.cfg.Prosody.MintReset(ctx, account)
}

// AccountExists implements invites.AccountChecker.
func (s *Server) AccountExists(ctx context.Context, account jid.JID) (bool, error) {
	e, err := s.ejabberd(ctx)
	switch {
	case err != nil:
		return false, err
	case e != nil:
		return e.AccountExists(ctx, account)
	}
	return s.cfg.Prosody.AccountExists(ctx, account)
}

// Revocation implements invites.Revoker: deletion on ejabberd (unless it
// refuses the minter that), consumption on Prosody and before the server
// has said who it is.
func (s *Server) Revocation() invites.Revocation {
	if s.Kind() == homeserver.Ejabberd && s.cfg.Ejabberd != nil {
		return s.cfg.Ejabberd.Revocation()
	}
	return s.cfg.Prosody.Revocation()
}

// Delete implements invites.Deleter: ejabberd deletes tokens; Prosody
// does only through mod_invitebot, which the service asks itself.
func (s *Server) Delete(ctx context.Context, token string) error {
	e, err := s.ejabberd(ctx)
	switch {
	case err != nil:
		return err
	case e != nil:
		return e.Delete(ctx, token)
	}
	return fmt.Errorf("delete token: %w", invites.ErrNotOffered)
}

// ListUsage implements invites.UsageLister: ejabberd's list_invites. On
// Prosody it is invites.ErrNotOffered, and usage is learnt by checking
// tokens or from mod_invitebot.
func (s *Server) ListUsage(ctx context.Context) ([]invites.TokenUsage, error) {
	e, err := s.ejabberd(ctx)
	switch {
	case err != nil:
		return nil, err
	case e != nil:
		return e.ListUsage(ctx)
	}
	return nil, fmt.Errorf("list tokens: %w", invites.ErrNotOffered)
}
