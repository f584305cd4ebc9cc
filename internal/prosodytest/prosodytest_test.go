package prosodytest_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/internal/prosodytest"
	"mellium.im/xmpp/stanza"
)

func TestUsersOnBothDomainsChat(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)

	alice := srv.AddUser(t, "alice", srv.Domain, "alice-pass")
	bob := srv.AddUser(t, "bob", srv.OtherDomain, "bob-pass")

	a := prosodytest.Login(t, srv, alice, "alice-pass")
	b := prosodytest.Login(t, srv, bob, "bob-pass")
	if got := a.JID().Bare(); !got.Equal(alice) {
		t.Errorf("alice bound %s, want bare %s", a.JID(), alice)
	}
	if a.JID().Resourcepart() == "" {
		t.Errorf("alice has no resource bound: %s", a.JID())
	}

	ctx, cancel := context.WithTimeout(context.Background(), prosodytest.ReplyTimeout)
	defer cancel()
	if err := a.Send(ctx, bob, stanza.ChatMessage, "hello <bob> & co"); err != nil {
		t.Fatal(err)
	}
	m := b.Next(t)
	if m.Body != "hello <bob> & co" || m.Type != stanza.ChatMessage || !m.From.Bare().Equal(alice) {
		t.Fatalf("bob got %+v", m)
	}
	if !strings.Contains(m.Inner, "<body") {
		t.Errorf("raw inner XML lacks the body: %q", m.Inner)
	}

	// Chat returns the reply from the peer, here typed by bob.
	done := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), prosodytest.ReplyTimeout)
		defer cancel()
		// Runs off the test goroutine, so it must not call t.Fatal.
		if err := b.Send(ctx, alice, stanza.ChatMessage, "hi alice"); err != nil {
			done <- err.Error()
			return
		}
		done <- ""
	}()
	if got := a.Chat(t, bob, "ping"); got != "hi alice" {
		t.Errorf("Chat returned %q, want %q", got, "hi alice")
	}
	if e := <-done; e != "" {
		t.Fatal(e)
	}
	if got := b.Next(t); got.Body != "ping" {
		t.Errorf("bob got %q, want ping", got.Body)
	}
	a.NoMessage(t, 200*time.Millisecond)
}

func TestWrongPasswordFails(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	alice := srv.AddUser(t, "alice", srv.Domain, "right")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := prosodytest.Dial(ctx, srv, alice, "wrong")
	if err == nil {
		c.Close()
		t.Fatal("login with a wrong password succeeded")
	}
}

func TestKillRestart(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	alice := srv.AddUser(t, "alice", srv.Domain, "pw")
	c := prosodytest.Login(t, srv, alice, "pw")
	c2sAddr, compAddr := srv.C2SAddr, srv.ComponentAddr

	srv.Kill(t)
	// After a crash nothing listens any more.
	if conn, err := net.DialTimeout("tcp", c2sAddr, time.Second); err == nil {
		conn.Close()
		t.Fatal("c2s port still accepts after Kill")
	}
	c.Close()

	srv.Restart(t)
	if srv.C2SAddr != c2sAddr || srv.ComponentAddr != compAddr {
		t.Fatalf("ports changed across restart: %s %s -> %s %s", c2sAddr, compAddr, srv.C2SAddr, srv.ComponentAddr)
	}
	// Accounts live in the data directory and survive the crash.
	c2 := prosodytest.Login(t, srv, alice, "pw")
	if !c2.JID().Bare().Equal(alice) {
		t.Fatalf("logged in as %s", c2.JID())
	}

	// A graceful stop and restart works too.
	srv.Stop(t)
	srv.Restart(t)
	prosodytest.Login(t, srv, alice, "pw")
}

func TestCertificateCoversEveryHost(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	block, _ := pem.Decode(srv.CACert)
	if block == nil {
		t.Fatal("CACert holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{srv.Domain, srv.OtherDomain, srv.Component} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: srv.RootCAs(), DNSName: host}); err != nil {
			t.Errorf("certificate not valid for %s: %v", host, err)
		}
		if cfg := srv.TLSConfig(host); cfg.ServerName != host || cfg.RootCAs != srv.RootCAs() {
			t.Errorf("TLSConfig(%s) has ServerName %q", host, cfg.ServerName)
		}
	}
	// And over the wire: STARTTLS on the c2s port presents it for the other
	// domain too (logging in there exercises SNI and verification).
	bob := srv.AddUser(t, "bob", srv.OtherDomain, "pw")
	prosodytest.Login(t, srv, bob, "pw")
}

func TestMintTokenDistinct(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	a, b := srv.MintToken(t), srv.MintToken(t)
	if a == "" || a == b {
		t.Fatalf("tokens %q and %q", a, b)
	}
}
