package invites

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// roles says what a JID is to the bot: the admins and the default limits
// come from the configuration and change on a reload while requests read
// them, grants come from the store.
type roles struct {
	*core
	admins atomic.Pointer[map[string]bool]
	limits atomic.Pointer[policy.Limits]
}

// SetAdmins replaces the admins (normalised bare JIDs), as on a
// configuration reload. Requests already running keep the role they began
// with.
func (r *roles) SetAdmins(admins map[string]bool) {
	cp := make(map[string]bool, len(admins))
	for k, v := range admins {
		cp[k] = v
	}
	r.admins.Store(&cp)
}

// SetLimits replaces the default invite limits, as on a configuration
// reload. Each limit left at zero takes its built-in default: a zero limit
// would refuse every invite.
func (r *roles) SetLimits(l policy.Limits) {
	if l.PerDay <= 0 {
		l.PerDay = policy.DefaultLimits.PerDay
	}
	if l.MaxPending <= 0 {
		l.MaxPending = policy.DefaultLimits.MaxPending
	}
	if l.GlobalPerDay <= 0 {
		l.GlobalPerDay = policy.DefaultLimits.GlobalPerDay
	}
	if l.EventMaxUses <= 0 {
		l.EventMaxUses = policy.DefaultLimits.EventMaxUses
	}
	r.limits.Store(&l)
}

// DefaultLimits are the limits of inviters whose grant sets none.
func (r *roles) DefaultLimits() policy.Limits { return *r.limits.Load() }

// IsAdmin reports whether the bare JID is an admin. It reads only the
// configuration, so the read loop may call it to decide whose requests
// must never be turned away.
func (r *roles) IsAdmin(bare string) bool { return (*r.admins.Load())[bare] }

// adminSet is the admins now in force; callers must not change it.
func (r *roles) adminSet() map[string]bool { return *r.admins.Load() }

// adminList lists the admins, whose invites (event link invites aside)
// the global limit does not count.
func (r *roles) adminList() []string {
	admins := r.adminSet()
	out := make([]string, 0, len(admins))
	for jid, admin := range admins {
		if admin {
			out = append(out, jid)
		}
	}
	return out
}

// Actor looks up what the bare JID is to the bot.
func (r *roles) Actor(ctx context.Context, bare string) (Actor, error) {
	admins := r.adminSet()
	if admins[bare] {
		return Actor{jid: bare, role: policy.Admin}, nil
	}
	g, err := r.store.Grant(ctx, bare)
	switch {
	case err == nil:
		return Actor{jid: bare, role: policy.RoleOf(bare, admins, true, g.Requests)}, nil
	case errors.Is(err, store.ErrNotFound):
		return Actor{jid: bare, role: policy.Stranger}, nil
	default:
		return Actor{jid: bare, role: policy.Stranger}, fmt.Errorf("look up role: %w", err)
	}
}
