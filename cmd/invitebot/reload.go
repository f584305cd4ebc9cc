package main

import (
	"log/slog"
	"reflect"

	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/policy"
)

// reload re-reads the configuration file and applies what can change while
// the bot runs: the admins, the policy limits and the log level. Anything
// else that changed is named in the log as needing a restart; a file that
// does not load or validate changes nothing.
func (a *app) reload() {
	next, err := config.Load(a.configPath)
	if err != nil {
		a.log.Error("reload: configuration not applied; the running one stays", slog.Any("err", err))
		return
	}
	applied, restart := reloadChanges(a.cfg, next)
	a.svc.SetAdmins(next.AdminSet())
	a.svc.SetLimits(policy.Limits{
		PerDay: next.Policy.InvitesPerDay, MaxPending: next.Policy.MaxPending, GlobalPerDay: next.Policy.GlobalPerDay,
		EventMaxUses: next.Policy.EventMaxUses,
	})
	a.svc.SetInviterResets(next.Policy.InviterResets)
	if a.level != nil {
		a.level.Set(next.SlogLevel())
	}
	// The running configuration takes the applied parts only, so the
	// next reload still sees what waits for a restart.
	running := *a.cfg
	running.Admins, running.Policy, running.Log.Level = next.Admins, next.Policy, next.Log.Level
	a.cfg = &running
	a.log.Info("configuration reloaded", slog.Any("applied", applied), slog.Int("admins", len(next.Admins)))
	if len(restart) > 0 {
		a.log.Warn("reload: these changed settings take effect only after a restart", slog.Any("keys", restart))
	}
}

// reloadChanges compares two configurations: applied names the changed
// settings a reload applies, restart those it cannot.
func reloadChanges(old, next *config.Config) (applied, restart []string) {
	for _, c := range []struct {
		name string
		a, b any
		live bool
	}{
		{"admins", old.Admins, next.Admins, true},
		{"policy", old.Policy, next.Policy, true},
		{"log.level", old.Log.Level, next.Log.Level, true},
		{"log.format", old.Log.Format, next.Log.Format, false},
		{"xmpp", old.XMPP, next.XMPP, false},
		{"store", old.Store, next.Store, false},
		{"http", old.HTTP, next.HTTP, false},
		{"invites", old.Invites, next.Invites, false},
		{"requests", old.Requests, next.Requests, false},
	} {
		if reflect.DeepEqual(c.a, c.b) {
			continue
		}
		if c.live {
			applied = append(applied, c.name)
		} else {
			restart = append(restart, c.name)
		}
	}
	return applied, restart
}
