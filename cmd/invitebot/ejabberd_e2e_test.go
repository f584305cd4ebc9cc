package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/commands"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/internal/ejabberdtest"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
)

// ejWorld is the bot beside a real ejabberd, minting as the minter
// account the operator's fragment (homeserver/ejabberd) sets up: ejabberd
// serves its invite command to its own accounts only.
type ejWorld struct {
	srv       *ejabberdtest.Server
	component jid.JID
	logs      *syncBuffer
	bot       *runningBot
}

func newEjabberdWorld(t *testing.T, interval time.Duration) *ejWorld {
	t.Helper()
	srv := ejabberdtest.Start(t)
	w := &ejWorld{srv: srv, component: jid.MustParse(srv.Component), logs: &syncBuffer{}}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CACert, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := new(config.Config)
	*cfg = config.Defaults()
	cfg.XMPP.Component = srv.Component
	cfg.XMPP.Server = srv.ComponentAddr
	cfg.XMPP.Secret = srv.ComponentSecret
	cfg.XMPP.Domain = srv.Domain
	cfg.XMPP.C2S = srv.C2SAddr
	cfg.XMPP.C2STLS.CAFile = ca
	cfg.XMPP.Minter = srv.Minter.String()
	cfg.XMPP.MinterPassword = srv.MinterPassword
	cfg.Admins = []string{"admin@" + srv.Domain}
	cfg.Store.Path = filepath.Join(t.TempDir(), "invitebot.db")
	cfg.Log.Level = "debug"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	cfg.Invites.CheckInterval = interval // shorter than Validate allows, to wait less
	w.bot = launchBot(t, cfg, w.logs)
	return w
}

func (w *ejWorld) tag() string { return "ejabberd " + w.srv.Version }

// user creates local@host on ejabberd and logs it in.
func (w *ejWorld) user(t *testing.T, local, host string) *prosodytest.Client {
	t.Helper()
	j := w.srv.AddUser(t, local, host, password)
	return prosodytest.LoginAt(t, prosodytest.Endpoint{Addr: w.srv.C2SAddr, TLS: w.srv.TLSConfig, Tag: w.tag()}, j, password)
}

// TestEjabberd is the bot's promise on ejabberd: an inviter of another
// domain gets invites by chat and by form, a token makes one account, the
// inviter learns which, cancel deletes the token at the server, and
// password reset links work for accounts that exist and only for them.
func TestEjabberd(t *testing.T) {
	w := newEjabberdWorld(t, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 4*e2eTimeout)
	defer cancel()
	w.awaitLog(t, "the server is ejabberd")
	w.awaitLog(t, "the minter account may create invites")

	admin := w.user(t, "admin", w.srv.Domain)
	carol := w.user(t, "carol", w.srv.OtherDomain)
	expectContains(t, admin.Chat(t, w.component, "grant carol@"+w.srv.OtherDomain), "may now create invites")
	expectNotice(t, carol, "You may now create account invites")

	// By chat: one token, one account, and carol is told which.
	token := inviteURIToken(t, carol.Chat(t, w.component, "invite"))
	newbie, err := ibr.Register(ctx, w.srv.IBRConfig(), token, "newbie", "newbie password")
	if err != nil {
		t.Fatalf("%s: register with the bot's token: %v", w.tag(), err)
	}
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), token, "second", "second password"); err == nil {
		t.Errorf("%s: a second account from one token", w.tag())
	}
	expectNotice(t, carol, newbie.String())
	expectContains(t, admin.Chat(t, w.component, "whoinvited "+newbie.String()), "carol@"+w.srv.OtherDomain)

	// By form.
	res := execute(t, carol, commands.Command{JID: w.component, Node: invites.NodeCreateAccount}, nil)
	if res.Status != "completed" || res.Form == nil {
		t.Fatalf("%s: create-account form: status %q, notes %v", w.tag(), res.Status, res.Notes)
	}
	formURI, err := invites.ParseURI(res.Form.Value("uri"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), formURI.Token); err != nil {
		t.Errorf("%s: the form's token is not valid at the server: %v", w.tag(), err)
	}

	// cancel deletes the token at the server.
	expectContains(t, carol.Chat(t, w.component, "cancel "+res.Form.Value("id")), "is cancelled")
	testwait.ForNil(t, e2eTimeout, "the cancelled token to be gone at the server", func() error {
		if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), formURI.Token); !errors.Is(err, ibr.ErrTokenRejected) {
			return errors.New("still accepted")
		}
		return nil
	})

	w.checkResets(ctx, t, admin, newbie)
}

// checkResets: a reset link for an existing account sets a new password;
// one for an account that does not exist is refused.
func (w *ejWorld) checkResets(ctx context.Context, t *testing.T, admin *prosodytest.Client, account jid.JID) {
	t.Helper()
	testwait.For(t, e2eTimeout, "reset to be offered", func() bool {
		return strings.Contains(admin.Chat(t, w.component, "help"), "reset <jid>")
	})
	expectContains(t, admin.Chat(t, w.component, "reset nobody-here"), "no account")
	reply := admin.Chat(t, w.component, "reset "+account.Localpart())
	expectContains(t, reply, "Password reset link", "for "+account.String())
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), inviteURIToken(t, reply), account.Localpart(), "new password 2"); err != nil {
		t.Fatalf("%s: register with the reset token: %v", w.tag(), err)
	}
	if _, err := ibr.BoundJID(ctx, w.srv.IBRConfig(), account, "new password 2"); err != nil {
		t.Errorf("%s: the new password does not log in: %v", w.tag(), err)
	}
	if id := regexp.MustCompile(`cancel ([a-z2-7]{16})`).FindStringSubmatch(reply); id == nil {
		t.Errorf("no cancel hint in %q", reply)
	}
}

func (w *ejWorld) awaitLog(t *testing.T, s string) {
	t.Helper()
	testwait.For(t, e2eTimeout, "the bot to log "+s, func() bool { return strings.Contains(w.logs.String(), s) })
}
