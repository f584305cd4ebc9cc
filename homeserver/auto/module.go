package auto

import (
	"context"
	"errors"
	"time"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/invites"
)

// ProsodyModule returns m (mod_invitebot) as the service should see it:
// asked for only while the server is not ejabberd. ejabberd has no such
// module; its API commands do the module's work (deletion, usage), and
// asking it for the module would only log that it is missing.
func (s *Server) ProsodyModule(m invites.ServerModule) invites.ServerModule {
	return prosodyModule{ServerModule: m, s: s}
}

type prosodyModule struct {
	invites.ServerModule
	s *Server
}

func (m prosodyModule) onEjabberd() bool { return m.s.Kind() == homeserver.Ejabberd }

// State implements invites.ServerModule.
func (m prosodyModule) State() invites.ModuleState {
	if m.onEjabberd() {
		return invites.ModuleAbsent
	}
	return m.ServerModule.State()
}

// Detect implements invites.ServerModule.
func (m prosodyModule) Detect(ctx context.Context) (invites.ModuleState, error) {
	if m.onEjabberd() {
		return invites.ModuleAbsent, nil
	}
	return m.ServerModule.Detect(ctx)
}

// errNoModule is what the optional abilities of mod_invitebot answer when
// the wrapped module lacks them, or the server is ejabberd.
var errNoModule = errors.New("no mod_invitebot here that does this")

// PurgeExpired passes invites.TokenPurger through: the wrapper must not
// hide what the module can do.
func (m prosodyModule) PurgeExpired(ctx context.Context) (int, error) {
	p, ok := m.ServerModule.(invites.TokenPurger)
	if !ok || m.onEjabberd() {
		return 0, errNoModule
	}
	return p.PurgeExpired(ctx)
}

// MintedSince passes invites.MintLister through.
func (m prosodyModule) MintedSince(ctx context.Context, since time.Time) ([]invites.ServerToken, error) {
	l, ok := m.ServerModule.(invites.MintLister)
	if !ok || m.onEjabberd() {
		return nil, errNoModule
	}
	return l.MintedSince(ctx, since)
}
