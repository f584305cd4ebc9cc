package prosodytest_test

// mod_invitebot's suspension verbs against the real Prosody: a suspended
// account cannot log in and its open session ends, nothing is deleted,
// unsuspend restores the login; admins, other domains and strangers are
// refused.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/prosodytest"
)

// sessionEndWait bounds how long a suspended account's open session may
// take to end.
const sessionEndWait = 10 * time.Second

func TestModuleSuspendsAndRestoresLogin(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule(),
		prosodytest.WithAdmins("boss@"+prosodytest.DefaultDomain))
	comp := connectModuleComponent(t, srv)
	user := srv.AddUser(t, "spammer", srv.Domain, modulePass)
	other := srv.AddUser(t, "far", srv.OtherDomain, modulePass)
	boss := srv.AddUser(t, "boss", srv.Domain, modulePass)

	open := prosodytest.Login(t, srv, user, modulePass)
	if err := comp.iq(stanza.SetIQ, "suspend", "jid", user.String(), "reason", "bot wave"); err != nil {
		t.Fatalf("suspend: %v", err)
	}
	// The open session ends.
	ctx, cancel := context.WithTimeout(context.Background(), sessionEndWait)
	defer cancel()
	if _, err := open.Receive(ctx, func(prosodytest.Message) bool { return false }); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the suspended account's session did not end: %v", err)
	}
	// A new login is refused.
	dctx, dcancel := context.WithTimeout(context.Background(), sessionEndWait)
	defer dcancel()
	if c, err := prosodytest.Dial(dctx, srv, user, modulePass); err == nil {
		c.Close()
		t.Fatalf("a suspended account logged in")
	} else {
		t.Logf("login refused: %v", err)
	}
	// Suspending twice is fine; the account still exists.
	if err := comp.iq(stanza.SetIQ, "suspend", "jid", user.String()); err != nil {
		t.Errorf("suspend again: %v", err)
	}
	// Strangers may not lift it.
	mallory := prosodytest.Login(t, srv, srv.AddUser(t, "mallory", srv.Domain, modulePass), modulePass)
	if err := moduleIQ(mallory.Session(), mallory.JID(), jid.MustParse(srv.Domain), stanza.SetIQ, "unsuspend",
		"jid", user.String()); !isForbidden(err) {
		t.Errorf("unsuspend by a local user: %v, want forbidden", err)
	}
	if err := comp.iq(stanza.SetIQ, "unsuspend", "jid", user.String()); err != nil {
		t.Fatalf("unsuspend: %v", err)
	}
	prosodytest.Login(t, srv, user, modulePass)

	// Untouchable: an admin of the host, another domain's account, an
	// account that does not exist.
	for _, tc := range []struct {
		jid  string
		want stanza.Condition
	}{
		{boss.String(), stanza.Forbidden},
		{other.String(), stanza.BadRequest},
		{"nobody@" + srv.Domain, stanza.ItemNotFound},
	} {
		err := comp.iq(stanza.SetIQ, "suspend", "jid", tc.jid)
		var se stanza.Error
		if !errors.As(err, &se) || se.Condition != tc.want {
			t.Errorf("suspend %s: %v, want %s", tc.jid, err, tc.want)
		}
	}
	prosodytest.Login(t, srv, boss, modulePass)
	prosodytest.Login(t, srv, other, modulePass)
	if !strings.HasPrefix(srv.Version, "0.") {
		t.Logf("Prosody %s: suspension through its own account disabling", srv.Version)
	}
}
