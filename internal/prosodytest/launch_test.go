package prosodytest_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/commands"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/prosodytest"
)

// TestLaunchOutsideATest drives the entry point cmd/invitebench uses: a
// server without a testing.T, an extra admin that mints with the server's
// own command over c2s, Nagle off, a stop and start in between, and Close
// removing everything.
func TestLaunchOutsideATest(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("prosody tests need a full run")
	}
	boss := "boss@" + prosodytest.DefaultDomain
	srv, err := prosodytest.Launch(t.Logf, prosodytest.WithAdmins(boss), prosodytest.WithoutNagle())
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			srv.Close()
		}
	})
	cfg, err := os.ReadFile(srv.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`admins = { "` + srv.Component + `", "` + boss + `" }`,
		`network_settings = { nagle = false }`,
	} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("configuration lacks %s:\n%s", want, cfg)
		}
	}

	if _, err := srv.Register("boss", srv.Domain, "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Register("no such user", srv.Domain, "pw"); err == nil {
		t.Error("registering an invalid username succeeded")
	}
	// The data survives a stop and start, as the benchmark's token reset
	// relies on.
	if err := srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Boot(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := prosodytest.Dial(ctx, srv, jid.MustParse(boss), "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	domain := jid.MustParse(srv.Domain)
	cmd := commands.Command{JID: domain, Node: "urn:xmpp:invite#create-account", Action: "execute"}
	resp, r, err := cmd.ExecuteIQ(ctx, stanza.IQ{To: domain}, nil, c.Session())
	if err != nil {
		t.Fatalf("create-account as a listed admin: %v", err)
	}
	r.Close()
	if resp.Status != "completed" {
		t.Errorf("create-account status %q", resp.Status)
	}

	// Receive takes what the client got; with an ended context only what
	// is already queued.
	if err := c.Send(ctx, c.JID(), stanza.ChatMessage, "to myself"); err != nil {
		t.Fatal(err)
	}
	m, err := c.Receive(ctx, func(m prosodytest.Message) bool { return m.Body != "" })
	if err != nil || m.Body != "to myself" {
		t.Fatalf("Receive = %q, %v", m.Body, err)
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := c.Receive(done, func(prosodytest.Message) bool { return true }); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive on an empty queue with an ended context = %v", err)
	}

	c.Close()
	closed = true
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(srv.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left %s: %v", srv.Dir, err)
	}
}
