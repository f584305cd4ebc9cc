package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
)

// checkSetup is what a configuration file for check-config -online names.
type checkSetup struct {
	server, secret, domain, c2s, caFile, dbPath string
	minter, minterPassword                      string
	srv                                         *prosodytest.Server
}

func newCheckSetup(t *testing.T, srv *prosodytest.Server) checkSetup {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CACert, 0o600); err != nil {
		t.Fatal(err)
	}
	return checkSetup{
		server: srv.ComponentAddr, secret: srv.ComponentSecret, domain: srv.Domain, c2s: srv.C2SAddr,
		caFile: ca, dbPath: filepath.Join(t.TempDir(), "invitebot.db"), srv: srv,
	}
}

func (s checkSetup) yaml() string {
	y := fmt.Sprintf(`xmpp:
  component: %s
  server: %q
  secret: %q
  domain: %s
  c2s: %q
  c2s_tls:
    ca_file: %q
`, s.srv.Component, s.server, s.secret, s.domain, s.c2s, s.caFile)
	if s.minter != "" {
		y += fmt.Sprintf("  minter: %s\n  minter_password: %q\n", s.minter, s.minterPassword)
	}
	return y + fmt.Sprintf("admins:\n  - admin@%s\nstore:\n  path: %q\n", s.srv.Domain, s.dbPath)
}

// runCheck runs check-config -online on s and returns its exit code and
// output, which must never hold a secret.
func runCheck(t *testing.T, s checkSetup) (int, string) {
	t.Helper()
	path := writeConfig(t, s.yaml())
	// The static check has nothing to say against any of these files.
	var static bytes.Buffer
	if code := run([]string{"check-config", "-config", path}, &static, &static); code != 0 {
		t.Fatalf("static check-config: exit code %d, want 0:\n%s", code, static.String())
	}
	var out, errOut bytes.Buffer
	code := run([]string{"check-config", "-online", "-config", path}, &out, &errOut)
	t.Logf("rc %d, stdout:\n%sstderr:\n%s", code, out.String(), errOut.String())
	all := out.String() + errOut.String()
	for _, secret := range []string{s.secret, s.minterPassword, s.srv.ComponentSecret} {
		if secret != "" && strings.Contains(all, secret) {
			t.Errorf("the output holds a secret %q", secret)
		}
	}
	return code, out.String()
}

// checkLine returns the line of out that starts with prefix.
func checkLine(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starts with %q:\n%s", prefix, out)
	return ""
}

func expectLine(t *testing.T, out, prefix string, wants ...string) {
	t.Helper()
	l := checkLine(t, out, prefix)
	for _, w := range wants {
		if !strings.Contains(l, w) {
			t.Errorf("line %q lacks %q", l, w)
		}
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestCheckConfigOnline: check-config -online passes a configuration that
// works, and fails each broken one with one line saying what is wrong,
// where the static check passes them all.
func TestCheckConfigOnline(t *testing.T) {
	srv := prosodytest.Start(t)

	t.Run("good", func(t *testing.T) {
		s := newCheckSetup(t, srv)
		code, out := runCheck(t, s)
		if code != 0 {
			t.Fatalf("exit code %d, want 0", code)
		}
		expectLine(t, out, "component link "+s.server, ": ok")
		expectLine(t, out, "domain "+s.domain, ": ok")
		expectLine(t, out, "client port "+s.c2s, ": ok")
		expectLine(t, out, "minting as the component", ": ok", "urn:xmpp:invite#create-account")
		expectLine(t, out, "password resets")
		expectLine(t, out, "mod_invitebot", ": note: not loaded")
		expectLine(t, out, "database "+s.dbPath, ": ok", "will be created")
		if strings.Contains(out, "FAIL") {
			t.Errorf("a check failed:\n%s", out)
		}
	})

	t.Run("wrong component port", func(t *testing.T) {
		s := newCheckSetup(t, srv)
		s.server = closedAddr(t)
		code, out := runCheck(t, s)
		if code == 0 {
			t.Fatal("exit code 0, want a failure")
		}
		expectLine(t, out, "component link "+s.server, ": FAIL: cannot connect to "+s.server)
	})

	t.Run("wrong secret", func(t *testing.T) {
		s := newCheckSetup(t, srv)
		s.secret = "not-the-component-secret"
		code, out := runCheck(t, s)
		if code == 0 {
			t.Fatal("exit code 0, want a failure")
		}
		expectLine(t, out, "component link", ": FAIL: the server refused the component secret")
	})

	t.Run("domain typo", func(t *testing.T) {
		s := newCheckSetup(t, srv)
		s.domain = strings.Replace(srv.Domain, "test", "tset", 1)
		code, out := runCheck(t, s)
		if code == 0 {
			t.Fatal("exit code 0, want a failure")
		}
		expectLine(t, out, "domain "+s.domain, ": FAIL: xmpp.domain "+s.domain+" is not served by this server")
		// Not misdiagnosed as missing rights on a VirtualHost that does
		// not exist.
		expectLine(t, out, "minting", ": skipped")
		if strings.Contains(out, "admins") {
			t.Errorf("the output blames the admins:\n%s", out)
		}
	})

	t.Run("domain typo, client port unreachable", func(t *testing.T) {
		// The component link's disco#info tells instead.
		s := newCheckSetup(t, srv)
		s.domain = strings.Replace(srv.Domain, "test", "tset", 1)
		s.c2s = closedAddr(t)
		code, out := runCheck(t, s)
		if code == 0 {
			t.Fatal("exit code 0, want a failure")
		}
		expectLine(t, out, "client port "+s.c2s, ": FAIL: cannot connect to "+s.c2s)
		expectLine(t, out, "domain "+s.domain, ": FAIL: xmpp.domain "+s.domain+" is not served by this server")
		expectLine(t, out, "minting", ": skipped")
	})

	t.Run("unwritable database folder", func(t *testing.T) {
		s := newCheckSetup(t, srv)
		dir := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			// Root may write anywhere; the check then acts as the
			// folder's owner, as the bot's user would be.
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
		s.dbPath = filepath.Join(dir, "invitebot.db")
		code, out := runCheck(t, s)
		if code == 0 {
			t.Fatal("exit code 0, want a failure")
		}
		expectLine(t, out, "database "+s.dbPath, ": FAIL: ", "cannot create files in "+dir)
	})
}

// TestCheckConfigOnlineWhileBotRuns: with the bot running, the check does
// not open its database nor knock as a second component, and passes; a
// second instance elsewhere (another database) is reported as a conflict,
// not as a failure.
func TestCheckConfigOnlineWhileBotRuns(t *testing.T) {
	w := newWorld(t)
	s := newCheckSetup(t, w.srv)
	s.dbPath = w.dbPath

	code, out := runCheck(t, s)
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	expectLine(t, out, "database "+s.dbPath, ": ok: in use by a running bot")
	expectLine(t, out, "component link", ": skipped")

	s.dbPath = filepath.Join(t.TempDir(), "other.db")
	code, out = runCheck(t, s)
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	expectLine(t, out, "component link", "another instance of the component is connected (the bot is running?)")
	expectLine(t, out, "domain "+s.domain, ": ok")
}

// TestCheckConfigOnlineRights: the check says whether the identity that
// mints may create invites (a component outside the admins may not; a
// minter account with the role may, with its right password only), and
// whether mod_invitebot answers.
func TestCheckConfigOnlineRights(t *testing.T) {
	role := prosodytest.Role{Name: prosody.MinterRole, Inherits: []string{"prosody:registered"},
		Allow: []string{"adhoc:" + invites.NodeCreateAccount, "adhoc:" + prosody.NodePasswordReset}}
	srv := prosodytest.Start(t, prosodytest.WithoutComponentAdmin(), prosodytest.WithCustomRoles(role),
		prosodytest.WithAdminsWithoutRoles("minter@"+prosodytest.DefaultDomain), prosodytest.WithInvitebotModule())
	var account jid.JID
	if srv.HasRoles() {
		account = srv.AddUserWithRole(t, "minter", srv.Domain, minterPass, prosody.MinterRole)
	} else {
		account = srv.AddUser(t, "minter", srv.Domain, minterPass)
	}

	t.Run("component without rights", func(t *testing.T) {
		s := newCheckSetup(t, srv)
		code, out := runCheck(t, s)
		if code == 0 {
			t.Fatal("exit code 0, want a failure")
		}
		expectLine(t, out, "minting as the component "+srv.Component,
			": FAIL: the server does not offer "+srv.Component+" the command "+invites.NodeCreateAccount,
			fmt.Sprintf("admins of VirtualHost %q", srv.Domain))
		expectLine(t, out, "mod_invitebot", ": ok: loaded")
	})

	t.Run("minter account", func(t *testing.T) {
		s := newCheckSetup(t, srv)
		s.minter, s.minterPassword = account.String(), minterPass
		code, out := runCheck(t, s)
		if code != 0 {
			t.Fatalf("exit code %d, want 0", code)
		}
		expectLine(t, out, "minting as "+account.String()+" (xmpp.minter)", ": ok", invites.NodeCreateAccount)
		expectLine(t, out, "mod_invitebot", ": ok: loaded")
	})

	t.Run("minter wrong password", func(t *testing.T) {
		s := newCheckSetup(t, srv)
		s.minter, s.minterPassword = account.String(), "not-the-minter-password"
		code, out := runCheck(t, s)
		if code == 0 {
			t.Fatal("exit code 0, want a failure")
		}
		expectLine(t, out, "minting as "+account.String(), ": FAIL: the server refused the minter account's login")
	})
}
