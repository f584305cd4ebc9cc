package auto

import (
	"context"

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
