package main

import (
	"log/slog"
	"strings"

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
	a.svc.SetAlarmOptions(alarmOptions(next.Alerts))
	if a.level != nil {
		a.level.Set(next.SlogLevel())
	}
	// The running configuration takes the applied parts only, so the
	// next reload still sees what waits for a restart.
	running := *a.cfg
	running.Admins, running.Policy, running.Log.Level, running.Alerts = next.Admins, next.Policy, next.Log.Level, next.Alerts
	a.cfg = &running
	a.log.Info("configuration reloaded", slog.Any("applied", applied), slog.Int("admins", len(next.Admins)))
	if len(restart) > 0 {
		a.log.Warn("reload: "+strings.Join(restart, ", ")+" changed; restart to apply", slog.Any("keys", restart))
	}
}

// reloadChanges compares two configurations key by key: applied names the
// changed keys a reload applies (admins, policy.*, alerts.*, log.level), restart
// those it cannot, such as xmpp.server.
func reloadChanges(old, next *config.Config) (applied, restart []string) {
	for _, key := range config.ChangedKeys(old, next) {
		if key == "admins" || key == "log.level" || strings.HasPrefix(key, "policy.") || strings.HasPrefix(key, "alerts.") {
			applied = append(applied, key)
		} else {
			restart = append(restart, key)
		}
	}
	return applied, restart
}
