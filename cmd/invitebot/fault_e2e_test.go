package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/store"
)

// Fault tests: the bot and the server die in the middle of work, a second
// bot starts on the same database, a secret is wrong. They run the real
// binary where a process must die.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// botBinary builds cmd/invitebot once per test run.
func botBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "invitebot-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "invitebot")
		out, err := exec.Command(filepath.Join(os.Getenv("GOROOT"), "bin", "go"), "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			// GOROOT may be unset: fall back to the go on PATH.
			out, err = exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		}
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build invitebot: %v\n%s", buildErr, binPath)
	}
	return binPath
}

// process is the bot running as a child process.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func startProcess(t *testing.T, configPath string) *process {
	t.Helper()
	p := &process{stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(botBinary(t), "-config", configPath)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		t.Logf("bot process log:\n%s", p.stderr.String())
	})
	return p
}

// awaitLog waits until the process logged want.
func (p *process) awaitLog(t *testing.T, want string) {
	t.Helper()
	testwait.For(t, e2eTimeout, fmt.Sprintf("the bot to log %q", want), func() bool {
		return strings.Contains(p.stderr.String(), want)
	})
}

// TestWrongSecretExitsWithOneLine: a wrong component secret ends the bot
// with a non-zero exit and one line that says what to fix, not a reconnect
// loop.
func TestWrongSecretExitsWithOneLine(t *testing.T) {
	w := newWorld(t)
	w.bot.stop(t)
	cfg := w.config(t)
	cfg.XMPP.Secret = "not the secret"
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfigFile(t, path, cfg)
	p := startProcess(t, path)
	select {
	case err := <-p.done:
		if err == nil {
			t.Fatal("the bot exited 0 with a wrong secret")
		}
	case <-time.After(e2eTimeout):
		t.Fatal("the bot kept running with a wrong secret")
	}
	logs := p.stderr.String()
	if n := strings.Count(logs, "rejected the component secret"); n != 1 {
		t.Errorf("%d lines about the secret, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs, "component link down") {
		t.Errorf("the bot retried a rejected secret:\n%s", logs)
	}
}

// TestSecondBotOnSameDatabase: a second bot on a database another bot holds
// stops at once with a message that says so.
func TestSecondBotOnSameDatabase(t *testing.T) {
	w := newWorld(t) // its bot holds the database
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfigFile(t, path, w.config(t))
	p := startProcess(t, path)
	select {
	case err := <-p.done:
		if err == nil {
			t.Fatal("the second bot exited 0")
		}
	case <-time.After(e2eTimeout):
		t.Fatal("the second bot hangs on the locked database")
	}
	expectContains(t, p.stderr.String(), "database is locked by another process")
}

// inviteStream sends n invite requests from c as fast as it can, waits
// for the first few replies, runs fault while the rest are in flight, and
// returns every reply that arrived before quiet set in.
func inviteStream(t *testing.T, c *prosodytest.Client, w *world, n int, fault func()) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	for i := range n {
		if err := c.Send(ctx, w.component, stanza.ChatMessage, "invite"); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	var bodies []string
	for len(bodies) < 3 {
		bodies = append(bodies, c.Next(t).Body)
	}
	fault()
	return append(bodies, drain(c, 2*time.Second)...)
}

// tokensIn returns the preauth tokens in bodies, and whether any repeats.
func tokensIn(t *testing.T, bodies []string) (map[string]bool, bool) {
	t.Helper()
	tokens := map[string]bool{}
	twice := false
	for _, b := range bodies {
		if !strings.Contains(b, "preauth=") {
			continue
		}
		tok := inviteURIToken(t, b)
		twice = twice || tokens[tok]
		tokens[tok] = true
	}
	return tokens, twice
}

// storedTokens reads every token the database holds, and the number of
// invite.create audit entries.
func storedTokens(t *testing.T, dbPath string) (map[string]bool, int) {
	t.Helper()
	st, err := store.OpenReadOnly(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tokens := map[string]bool{}
	if err := st.EachInvite(context.Background(), func(inv store.Invite) error {
		tokens[inv.Token] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	created := 0
	if err := st.EachAuditEntry(context.Background(), func(e store.AuditEntry) error {
		if e.Action == "invite.create" {
			created++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return tokens, created
}

// drain collects the messages c receives until none came for quiet.
func drain(c *prosodytest.Client, quiet time.Duration) []string {
	var bodies []string
	for {
		m, ok := c.NextWithin(quiet)
		if !ok {
			return bodies
		}
		bodies = append(bodies, m.Body)
	}
}

// TestBotKilledMidStream: the bot is SIGKILLed while invites are being
// minted; restarted, it opens its database, and every URI it delivered is
// recorded, with an audit entry for each invite.
func TestBotKilledMidStream(t *testing.T) {
	w := newWorld(t)
	w.bot.stop(t)
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfigFile(t, path, w.config(t))
	admin := w.user(t, "admin", w.srv.Domain)
	p := startProcess(t, path)
	p.awaitLog(t, "component link up")

	bodies := inviteStream(t, admin, w, 40, func() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	})
	<-p.done
	delivered, twice := tokensIn(t, bodies)
	if twice {
		t.Error("a token was delivered twice")
	}

	again := startProcess(t, path)
	again.awaitLog(t, "component link up")
	expectContains(t, admin.Chat(t, w.component, "help"), "Commands:")
	_ = again.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-again.done; err != nil {
		t.Errorf("restarted bot: %v", err)
	}
	stored, created := storedTokens(t, w.dbPath)
	for tok := range delivered {
		if !stored[tok] {
			t.Errorf("a delivered token is not in the database")
		}
	}
	if created != len(stored) {
		t.Errorf("%d invites but %d invite.create audit entries", len(stored), created)
	}
	if len(delivered) < 3 {
		t.Errorf("only %d URIs delivered before the kill: the test killed nothing in flight", len(delivered))
	}
	t.Logf("%d URIs delivered before the kill, %d invites stored", len(delivered), len(stored))
}

// TestServerKilledMidStream: Prosody is SIGKILLed while invites are being
// minted and comes back; the bot reconnects on its own, no request is
// answered twice, and every URI delivered is recorded.
func TestServerKilledMidStream(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	bodies := inviteStream(t, admin, w, 30, func() { w.srv.Kill(t) })
	w.srv.Restart(t)
	restarted := time.Now()
	w.bot.awaitUp(t)
	t.Logf("the bot was back %s after the server", time.Since(restarted))

	admin = prosodytest.Login(t, w.srv, admin.JID().Bare(), password)
	bodies = append(bodies, admin.Chat(t, w.component, "invite"))
	delivered, twice := tokensIn(t, bodies)
	if twice {
		t.Error("a token was delivered twice")
	}
	w.bot.stop(t)
	stored, _ := storedTokens(t, w.dbPath)
	for tok := range delivered {
		if !stored[tok] {
			t.Error("a delivered token is not in the database")
		}
	}
	if len(delivered) == 0 {
		t.Error("no invite delivered at all")
	}
}
