package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"durare.org/invitebot/bot"
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/internal/testwait"
)

func TestReloadChanges(t *testing.T) {
	old := config.Defaults()
	old.Admins = []string{"admin@durare.test"}
	next := old
	next.Admins = []string{"admin@durare.test", "carol@elsewhere.test"}
	next.Policy.InvitesPerDay = 2
	next.XMPP.Server = "10.0.0.1:5347"
	next.Store.BackupKeep = 3
	applied, restart := reloadChanges(&old, &next)
	if strings.Join(applied, ",") != "admins,policy.invites_per_day" || strings.Join(restart, ",") != "xmpp.server,store.backup_keep" {
		t.Errorf("applied %v, restart %v", applied, restart)
	}
	if a, r := reloadChanges(&old, &old); len(a)+len(r) != 0 {
		t.Errorf("no change reported %v %v", a, r)
	}
}

// writeConfigFile writes cfg as the YAML file an admin edits.
func writeConfigFile(t *testing.T, path string, cfg *config.Config) {
	t.Helper()
	var admins []string
	for _, a := range cfg.Admins {
		admins = append(admins, fmt.Sprintf("%q", a))
	}
	body := fmt.Sprintf(`xmpp:
  component: %q
  server: %q
  secret: %q
  domain: %q
  c2s: %q
  c2s_tls:
    ca_file: %q
admins: [%s]
store:
  path: %q
log:
  level: %q
policy:
  invites_per_day: %d
`, cfg.XMPP.Component, cfg.XMPP.Server, cfg.XMPP.Secret, cfg.XMPP.Domain, cfg.XMPP.C2S, cfg.XMPP.C2STLS.CAFile,
		strings.Join(admins, ", "), cfg.Store.Path, cfg.Log.Level, cfg.Policy.InvitesPerDay)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadAppliesAdminsAndLimits reloads a running bot the way SIGHUP
// does: a new admin may act at once, and a setting that needs a restart is
// named in the log instead of half-applied.
func TestReloadAppliesAdminsAndLimits(t *testing.T) {
	w := newWorld(t)
	w.bot.stop(t) // this test runs its own, reloadable, on the same database
	admin := w.user(t, "admin", w.srv.Domain)
	carol := w.user(t, "carol", w.srv.OtherDomain)
	cfg := w.config(t)
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfigFile(t, path, cfg)

	log := slog.New(slog.NewTextHandler(&teeWriter{t: t, buf: w.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ups := make(chan struct{}, 16)
	a := newApp(cfg, log, func(c *bot.LinkConfig) { c.OnUp = func() { ups <- struct{}{} } })
	reloads := make(chan os.Signal, 1)
	a.configPath, a.reloads, a.level = path, reloads, new(slog.LevelVar)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	select {
	case <-ups:
	case <-time.After(e2eTimeout):
		t.Fatal("link did not come up")
	}

	expectContains(t, admin.Chat(t, w.component, "inviters"), "Nobody holds a grant")
	carolJID := "carol@" + w.srv.OtherDomain
	expectContains(t, carol.Chat(t, w.component, "inviters"), "may not use inviters")

	next := *cfg
	next.Admins = []string{"admin@" + w.srv.Domain, carolJID}
	next.Policy.InvitesPerDay = 2
	next.XMPP.Server = "127.0.0.1:1" // needs a restart: must not be applied
	writeConfigFile(t, path, &next)
	reloads <- syscall.SIGHUP

	testwait.For(t, e2eTimeout, "the reload in the log", func() bool {
		return strings.Contains(w.logs.String(), "configuration reloaded")
	})
	expectContains(t, carol.Chat(t, w.component, "inviters"), "Nobody holds a grant")
	expectContains(t, admin.Chat(t, w.component, "grant dave@"+w.srv.OtherDomain), "per-day 2 (default)")
	expectContains(t, w.logs.String(), "reload: xmpp.server changed; restart to apply", "keys=[xmpp.server]")

	// A broken file changes nothing.
	if err := os.WriteFile(path, []byte("xmpp: [not, a, map"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloads <- syscall.SIGHUP
	testwait.For(t, e2eTimeout, "the broken file to be reported", func() bool {
		return strings.Contains(w.logs.String(), "reload: configuration not applied")
	})
	expectContains(t, carol.Chat(t, w.component, "inviters"), "dave@")
}
