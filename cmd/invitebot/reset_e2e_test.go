package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// TestPasswordReset runs against whichever Prosody the harness started.
// On 0.12, which has no reset command, the operation is neither listed nor
// run, and the answer names the version needed. On 13 an admin's reset
// link sets a new password (the old one stops working), the account is
// told, an inviter may reset an account their invite created, the link
// counts in their quota, and a cancelled link dies at the server.
func TestPasswordReset(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	if strings.HasPrefix(w.srv.Version, "0.12") {
		expectContains(t, admin.Chat(t, w.component, "reset someone"), "Password resets need Prosody 13 or newer")
		if help := admin.Chat(t, w.component, "help"); strings.Contains(help, "reset <jid>") {
			t.Errorf("help lists reset on a server without it:\n%s", help)
		}
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eTimeout)
	defer cancel()
	domain := w.srv.Domain
	carolJID := "carol@" + w.srv.OtherDomain
	newbie := w.srv.AddUser(t, "newbie", domain, "old password 1")
	other := w.srv.AddUser(t, "other", domain, "other password")

	// The bot learns which account carol's invite created the way the
	// browser path records it: seed that record, then restart the bot.
	w.bot.stop(t)
	st, err := store.Open(ctx, w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	seeded, err := st.AddInvite(ctx, store.Invite{Token: "seeded-token", URI: "xmpp:" + domain + "?register;preauth=seeded-token",
		Domain: domain, Inviter: carolJID, Created: now.Add(-25 * time.Hour), Expires: now.Add(time.Hour)},
		store.AuditEntry{Time: now, Actor: carolJID, Action: invites.ActionInviteCreate})
	if err == nil {
		_, err = st.SetInviteState(ctx, seeded.ID, store.StateUsed, newbie.String(),
			store.AuditEntry{Time: now, Actor: newbie.String(), Action: invites.ActionInviteUse})
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	w.bot = w.startBot(t)
	// Detection runs when the link comes up; give it a moment.
	testwait.For(t, e2eTimeout, "reset to be offered on Prosody 13", func() bool {
		return strings.Contains(admin.Chat(t, w.component, "help"), "reset <jid>")
	})

	// The owner of the account is online to receive the notice.
	owner := prosodytest.Login(t, w.srv, newbie, "old password 1")
	carol := w.user(t, "carol", w.srv.OtherDomain)
	expectContains(t, admin.Chat(t, w.component, "grant "+carolJID+" per-day 1"), "may now create invites")
	expectNotice(t, carol, "You may now create account invites")

	// An inviter may not reset an account their invites did not create.
	expectContains(t, carol.Chat(t, w.component, "reset "+other.String()), "only accounts your own invites created")
	// ... but may reset the one they did, and it counts in their quota.
	reply := carol.Chat(t, w.component, "reset newbie@"+domain)
	expectContains(t, reply, "Password reset link", "for newbie@"+domain, "preauth=")
	expectNotice(t, owner, "A password reset link for your account newbie@"+domain+" was created by "+carolJID)
	expectContains(t, carol.Chat(t, w.component, "invite"), "your limit is 1")

	token := inviteURIToken(t, reply)
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), token, "newbie", "new password 2"); err != nil {
		t.Fatalf("registering with the reset token and the same username: %v", err)
	}
	if _, err := ibr.BoundJID(ctx, w.srv.IBRConfig(), newbie, "new password 2"); err != nil {
		t.Errorf("the new password does not log in: %v", err)
	}
	if _, err := ibr.BoundJID(ctx, w.srv.IBRConfig(), newbie, "old password 1"); err == nil {
		t.Error("the old password still logs in")
	}

	// An admin's reset link, cancelled, dies at the server; a server that
	// binds reset tokens to their account (13.0.8) will not let the bot use
	// one up, and without mod_invitebot the bot says so plainly.
	reply = admin.Chat(t, w.component, "reset other")
	expectContains(t, reply, "for other@"+domain)
	id := regexp.MustCompile(`cancel ([a-z2-7]{16})`).FindStringSubmatch(reply)
	if id == nil {
		t.Fatalf("no cancel hint in %q", reply)
	}
	cancelled := admin.Chat(t, w.component, "cancel "+id[1])
	err = ibr.CheckToken(ctx, w.srv.IBRConfig(), inviteURIToken(t, reply))
	if w.srv.BindsResetTokens() {
		expectContains(t, cancelled, "is cancelled here, but the server cannot cancel it", "works until it expires", "mod_invitebot")
		if err != nil {
			t.Errorf("the bot says the link still works, but the server refuses it: %v", err)
		}
		expectContains(t, admin.Chat(t, w.component, "audit "+id[1]), invites.ActionTokenUnrevocable)
		return
	}
	expectContains(t, cancelled, "is cancelled; its link no longer works")
	if !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("a cancelled reset token: %v, want rejected", err)
	}
}

// inviteURIToken finds the preauth token in a reply.
func inviteURIToken(t *testing.T, reply string) string {
	t.Helper()
	m := regexp.MustCompile(`preauth=([^\s;&]+)`).FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("no token in %q", reply)
	}
	return m[1]
}

// TestResetCancelWithModule: with mod_invitebot, a cancelled reset link is
// deleted at the server, on every Prosody 13 (13.0.8 binds the token to
// its account, so it could not be used up instead): the token is refused,
// also on a stream that passed preauth with it before the cancel, and the
// account's password stays as it was. Prosody 0.12 has no resets.
func TestResetCancelWithModule(t *testing.T) {
	w := newModuleWorld(t, true)
	admin := w.user(t, "admin", w.srv.Domain)
	if !w.srv.HasRoles() {
		expectContains(t, admin.Chat(t, w.component, "reset someone"), "Password resets need Prosody 13 or newer")
		return
	}
	owner := w.srv.AddUser(t, "owner", w.srv.Domain, "owner password")
	testwait.For(t, e2eTimeout, "reset to be offered on Prosody 13", func() bool {
		return strings.Contains(admin.Chat(t, w.component, "help"), "reset <jid>")
	})
	reply := w.chatWithQR(t, admin, "reset owner")
	expectContains(t, reply, "Password reset link", "for "+owner.String())
	if strings.Contains(reply, "cannot cancel") {
		t.Errorf("with mod_invitebot the reset reply says links cannot be cancelled:\n%s", reply)
	}
	token := inviteURIToken(t, reply)
	early := prosodytest.OpenRegistration(t, w.srv)
	if err := early.Preauth(token); err != nil {
		t.Fatalf("preauth with the reset token: %v", err)
	}
	expectContains(t, admin.Chat(t, w.component, "cancel "+cancelID(t, reply)), "is cancelled; its link no longer works")
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), token); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("the cancelled reset token: %v, want rejected", err)
	}
	if err := early.Register("owner", "taken over"); err == nil {
		t.Error("a stream that passed preauth before the cancel reset the password")
	}
	if _, err := ibr.BoundJID(ctx, w.srv.IBRConfig(), owner, "owner password"); err != nil {
		t.Errorf("the owner's password changed: %v", err)
	}
	expectContains(t, admin.Chat(t, w.component, "audit "+cancelID(t, reply)), invites.ActionTokenRevoked)
}
