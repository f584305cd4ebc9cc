package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/bot"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/minter"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
)

// minterPass is distinctive so a leak into the log is easy to spot.
const minterPass = "m1nter-e2e-pass-frotz"

// minterWorld starts a Prosody whose component is no admin, with a minter
// account that may mint (Prosody 13: the invitebot:minter role; 0.12: in
// admins, the only way there) when privileged, and a bot minting as it.
func minterWorld(t *testing.T, privileged bool) (*world, jid.JID, chan struct{}) {
	t.Helper()
	role := prosodytest.Role{Name: prosody.MinterRole, Inherits: []string{"prosody:registered"},
		Allow: []string{"adhoc:" + invites.NodeCreateAccount, "adhoc:" + prosody.NodePasswordReset}}
	opts := []prosodytest.Option{prosodytest.WithoutComponentAdmin(), prosodytest.WithCustomRoles(role)}
	if privileged {
		opts = append(opts, prosodytest.WithAdminsWithoutRoles("minter@"+prosodytest.DefaultDomain))
	}
	srv := prosodytest.Start(t, opts...)
	var account jid.JID
	if privileged && srv.HasRoles() {
		account = srv.AddUserWithRole(t, "minter", srv.Domain, minterPass, prosody.MinterRole)
	} else {
		account = srv.AddUser(t, "minter", srv.Domain, minterPass)
	}
	w := &world{srv: srv, component: jid.MustParse(srv.Component),
		dbPath: filepath.Join(t.TempDir(), "invitebot.db"), logs: &syncBuffer{}, httpListen: freeAddr(t)}
	ups := make(chan struct{}, 16)
	w.bot = w.startMinterBot(t, account, ups)
	awaitSignal(t, ups, "minter session up")
	return w, account, ups
}

// startMinterBot is startBot with xmpp.minter set to account.
func (w *world) startMinterBot(t *testing.T, account jid.JID, minterUps chan struct{}) *runningBot {
	t.Helper()
	cfg := w.config(t)
	cfg.XMPP.Minter, cfg.XMPP.MinterPassword = account.String(), minterPass
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(&teeWriter{t: t, buf: w.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	rb := &runningBot{cancel: cancel, done: make(chan error, 1), ups: make(chan struct{}, 16)}
	a := newApp(cfg, log, func(c *bot.LinkConfig) {
		c.PingInterval, c.PingTimeout = time.Second, 2*time.Second
		c.MinBackoff, c.MaxBackoff = 100*time.Millisecond, time.Second
		c.OnUp = func() { rb.ups <- struct{}{} }
	})
	a.tuneMinter = func(c *minter.Config) {
		c.PingInterval, c.PingTimeout = time.Second, 2*time.Second
		c.MinBackoff, c.MaxBackoff = 100*time.Millisecond, time.Second
		c.OnUp = func() { minterUps <- struct{}{} }
	}
	go func() { rb.done <- a.run(ctx) }()
	rb.awaitUp(t)
	t.Cleanup(func() { rb.stop(t) })
	return rb
}

func awaitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(e2eTimeout):
		t.Fatalf("no %s within %v", what, e2eTimeout)
	}
}

// healthStatus returns /healthz's status and body.
func (w *world) healthStatus(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + w.httpListen + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestMintingAsAccount: the component holds no admin rights; the bot mints
// through the minter account (Prosody 13: only the invitebot:minter role;
// 0.12: an account in admins), says so at start, hands out tokens the
// server honours, shows the minter session in /healthz, and after Prosody
// restarts logs both connections in again and mints again.
func TestMintingAsAccount(t *testing.T) {
	w, account, minterUps := minterWorld(t, true)
	admin := w.user(t, "admin", w.srv.Domain)

	expectContains(t, w.logs.String(), "minting=account",
		"invites are minted as the account "+account.String()+" over c2s "+w.srv.C2SAddr,
		"the component needs no admin rights")
	uri := inviteURI(t, admin.Chat(t, w.component, "invite"))
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), uri.Token); err != nil {
		t.Errorf("Prosody %s: token minted by the minter account is not valid: %v", w.srv.Version, err)
	}
	expectContains(t, w.logs.String(), "the minter account may create invites")
	if code, body := w.healthStatus(t); code != http.StatusOK {
		t.Errorf("/healthz = %d %q with everything up", code, body)
	}

	w.srv.Kill(t)
	testwait.ForNil(t, e2eTimeout, "/healthz to be 503 naming the minter session with Prosody gone", func() error {
		code, body := w.healthStatus(t)
		if code == http.StatusServiceUnavailable && strings.Contains(body, "minter session down") {
			return nil
		}
		return fmt.Errorf("/healthz = %d %q", code, body)
	})
	w.srv.Restart(t)
	w.bot.awaitUp(t)
	awaitSignal(t, minterUps, "minter login after the restart")
	if code, body := w.healthStatus(t); code != http.StatusOK {
		t.Errorf("/healthz = %d %q after reconnecting", code, body)
	}
	admin = prosodytest.Login(t, w.srv, jid.MustParse("admin@"+w.srv.Domain), password)
	uri = inviteURI(t, admin.Chat(t, w.component, "invite"))
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), uri.Token); err != nil {
		t.Errorf("Prosody %s: token minted after the reconnect is not valid: %v", w.srv.Version, err)
	}
	expectContains(t, w.logs.String(), "minter session down", "minter session up")
	if strings.Contains(w.logs.String(), minterPass) {
		t.Error("the minter password is in the log")
	}
}

// TestMintingAsAccountWithoutRights: a minter account the server gives no
// right to mint: the log says at start exactly what to add, the inviter
// gets the usual apology, and the log says it again with the refusal.
func TestMintingAsAccountWithoutRights(t *testing.T) {
	w, account, _ := minterWorld(t, false)
	admin := w.user(t, "admin", w.srv.Domain)
	fix := []string{
		`prosody_13="VirtualHost \"durare.test\": custom_roles = { { name = \"invitebot:minter\";`,
		`prosody_13_account="prosodyctl shell user set_role ` + account.String() + ` invitebot:minter"`,
		`prosody_0_12="VirtualHost \"durare.test\": admins = { \"` + account.String() + `\" }"`,
	}
	testwait.For(t, e2eTimeout, "a start-up warning about the minter's missing rights", func() bool {
		return strings.Contains(w.logs.String(), "the server does not let the minter account create invites")
	})
	expectContains(t, w.logs.String(), fix...)

	reply := admin.Chat(t, w.component, "invite")
	expectContains(t, reply, "server refused to create the invite")
	expectContains(t, w.logs.String(), append(fix, "the server refused the minter account its command")...)
	if strings.Contains(w.logs.String(), `admins = { \"`+w.srv.Component) {
		t.Error("the log tells to make the component an admin although an account mints")
	}
}

// TestMinterWrongPasswordEndsTheBot: like a rejected component secret, a
// refused minter login stops the bot with an error that says what to
// check, instead of a reconnect loop.
func TestMinterWrongPasswordEndsTheBot(t *testing.T) {
	srv := prosodytest.Start(t, prosodytest.WithoutComponentAdmin())
	account := srv.AddUser(t, "minter", srv.Domain, minterPass)
	w := &world{srv: srv, component: jid.MustParse(srv.Component),
		dbPath: filepath.Join(t.TempDir(), "invitebot.db"), logs: &syncBuffer{}}
	cfg := w.config(t)
	cfg.XMPP.Minter, cfg.XMPP.MinterPassword = account.String(), "not-the-"+minterPass
	log := slog.New(slog.NewTextHandler(&teeWriter{t: t, buf: w.logs}, nil))
	done := make(chan error, 1)
	go func() { done <- serve(context.Background(), cfg, log, nil) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(e2eTimeout):
		t.Fatal("the bot kept running with a wrong minter password")
	}
	if err == nil || !strings.Contains(err.Error(), "refused the minter account's login") ||
		!strings.Contains(err.Error(), "check xmpp.minter_password") {
		t.Fatalf("serve = %v, want the refused login named", err)
	}
	if strings.Contains(w.logs.String(), "minter session down") {
		t.Errorf("the bot retried a refused login:\n%s", w.logs)
	}
	if strings.Contains(err.Error()+w.logs.String(), minterPass) {
		t.Error("the minter password is in the error or the log")
	}
}
