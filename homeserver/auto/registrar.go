package auto

import (
	"context"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/ejabberd"
	"durare.org/invitebot/invites"
)

// registrar returns the client-port side fitted to the server: ejabberd
// needs its own token checker and reading of its errors. When the server
// cannot say who it is, the plain one serves: registering differs only
// in how a taken name is reported.
func (s *Server) registrar(ctx context.Context) invites.Registrar {
	if k, err := s.current(ctx); err == nil && k == homeserver.Ejabberd {
		return ejabberd.Registrar{Registrar: s.cfg.Registrar}
	}
	return s.cfg.Registrar
}

// Register implements invites.Registrar.
func (s *Server) Register(ctx context.Context, token, username, password string) (jid.JID, error) {
	return s.registrar(ctx).Register(ctx, token, username, password)
}

// BoundJID implements invites.Registrar.
func (s *Server) BoundJID(ctx context.Context, account jid.JID, password string) (jid.JID, error) {
	return s.registrar(ctx).BoundJID(ctx, account, password)
}

// Remove implements invites.Registrar.
func (s *Server) Remove(ctx context.Context, account jid.JID, password string) error {
	return s.registrar(ctx).Remove(ctx, account, password)
}

// DialChecker implements invites.Registrar.
func (s *Server) DialChecker(ctx context.Context) (invites.TokenChecker, error) {
	return s.registrar(ctx).DialChecker(ctx)
}
