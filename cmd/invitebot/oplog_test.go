package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/store"
)

// TestJournalLogFormat: with log.format journal each line starts with the
// syslog priority of its level (sd-daemon(3)) and carries no time of its
// own, which journald adds.
func TestJournalLogFormat(t *testing.T) {
	cfg := config.Defaults()
	cfg.Log.Format = "journal"
	var buf bytes.Buffer
	log := newLogger(&cfg, slog.LevelDebug, &buf)
	log.Debug("d")
	log.Info("i", slog.String("k", "two words"))
	log.With(slog.String("room", "bot")).Warn("w")
	log.WithGroup("g").Error("e", slog.Int("n", 1))
	want := []string{
		`<7>level=DEBUG msg=d`,
		`<6>level=INFO msg=i k="two words"`,
		`<4>level=WARN msg=w room=bot`,
		`<3>level=ERROR msg=e g.n=1`,
	}
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestExportNotADatabase: a file that is no database at all says so, and
// names the file, instead of bbolt's "file size too small".
func TestExportNotADatabase(t *testing.T) {
	real := filepath.Join(t.TempDir(), "real.db")
	st, err := store.Open(context.Background(), real)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	whole, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		// The first page of a database alone: bbolt says "file size too
		// small".
		"truncated": string(whole[:os.Getpagesize()]),
		"empty":     "",
		"short":     "not a database",
		"long":      strings.Repeat("x", 64<<10),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "notes.txt")
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := run([]string{"export", path}, &out, &errOut)
			if want := path + " is not an invitebot database (bbolt): "; code != 1 || !strings.Contains(errOut.String(), want) {
				t.Errorf("exit %d, stderr %q; want %q", code, errOut.String(), want)
			}
		})
	}
}

// TestSchemaUpgradeLogged: opening an older file logs the upgrade, from
// which version to which, with what it holds and how long it took.
func TestSchemaUpgradeLogged(t *testing.T) {
	src, err := os.ReadFile("../../testdata/store-v1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "invitebot.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Store.Path = path
	var logs bytes.Buffer
	a := newApp(&cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	if err := a.openStore(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.closeStore(context.Background())
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "database schema upgraded") {
			line = l
		}
	}
	for _, want := range []string{"level=INFO", "from=1", "to=", "invites=", "audit_entries=", "took="} {
		if !strings.Contains(line, want) {
			t.Errorf("upgrade line lacks %q:\n%s", want, logs.String())
		}
	}
	// Opening it again upgrades nothing and says nothing about it.
	a.closeStore(context.Background())
	logs.Reset()
	if err := a.openStore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "upgraded") {
		t.Errorf("a current file logs an upgrade:\n%s", logs.String())
	}
}
