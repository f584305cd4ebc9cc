package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// TestResetSafety runs against whichever Prosody the harness started. On
// 0.12, which has no reset command, reset is refused as unavailable. On 13:
// an inviter whose invite made an account that was later deleted, and
// whose username an admin's invite registered again, may not reset the
// new account; a reset of an account that does not exist makes no link
// (the link would create it); and a second reset link for an account
// cancels the first, whose token the server then refuses.
func TestResetSafety(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	if !w.srv.HasRoles() {
		expectContains(t, admin.Chat(t, w.component, "reset ghost"), "Password resets need Prosody 13 or newer")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eTimeout)
	defer cancel()
	domain := w.srv.Domain
	carolJID := "carol@" + w.srv.OtherDomain

	// carol's invite made frank two days ago; frank deleted his account;
	// an admin's invite made a new frank yesterday. The bot learnt both
	// registrations (the browser path or mod_invitebot record them): seed
	// the records, then restart the bot.
	frank := w.srv.AddUser(t, "frank", domain, "first frank")
	if err := ibr.Remove(ctx, w.srv.IBRConfig(), frank, "first frank"); err != nil {
		t.Fatalf("delete the first frank: %v", err)
	}
	frank = w.srv.AddUser(t, "frank", domain, "second frank")
	w.bot.stop(t)
	st, err := store.Open(ctx, w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, inviter := range []string{carolJID, "admin@" + domain} {
		at := now.Add(-time.Duration(2-i) * 24 * time.Hour)
		tok := "seeded-token-" + string(rune('a'+i))
		inv, err := st.AddInvite(ctx, store.Invite{Token: tok, URI: "xmpp:" + domain + "?register;preauth=" + tok,
			Domain: domain, Inviter: inviter, Created: at.Add(-time.Hour), Expires: at.Add(time.Hour)},
			store.AuditEntry{Time: at.Add(-time.Hour), Actor: inviter, Action: invites.ActionInviteCreate})
		if err == nil {
			_, err = st.SetInviteState(ctx, inv.ID, store.StateUsed, frank.String(),
				store.AuditEntry{Time: at, Actor: frank.String(), Action: invites.ActionInviteUse})
		}
		if err != nil {
			st.Close()
			t.Fatal(err)
		}
	}
	st.Close()
	w.bot = w.startBot(t)
	testwait.For(t, e2eTimeout, "reset to be offered on Prosody 13", func() bool {
		return strings.Contains(admin.Chat(t, w.component, "help"), "reset <jid>")
	})
	carol := w.user(t, "carol", w.srv.OtherDomain)
	expectContains(t, admin.Chat(t, w.component, "grant "+carolJID+" per-day 5"), "may now create invites")
	expectNotice(t, carol, "You may now create account invites")

	// The recycled username: not carol's any more.
	reply := carol.Chat(t, w.component, "reset frank@"+domain)
	expectContains(t, reply, "only accounts your own invites created")
	if strings.Contains(reply, "preauth=") {
		t.Errorf("carol got a reset link for the new frank:\n%s", reply)
	}

	// An account that does not exist: no link.
	reply = admin.Chat(t, w.component, "reset ghost")
	expectContains(t, reply, "ghost@"+domain, "no account")
	if strings.Contains(reply, "preauth=") {
		t.Errorf("a reset link for an account that does not exist:\n%s", reply)
	}
	if list := admin.Chat(t, w.component, "invites"); strings.Contains(list, "ghost@") {
		t.Errorf("the admin's invites list a link for ghost:\n%s", list)
	}

	// A second reset link cancels the first, at the server too; a server
	// that binds reset tokens to their account (13.0.8) will not let the
	// bot use the first up, and the second reply says it still works.
	first := admin.Chat(t, w.component, "reset frank")
	expectContains(t, first, "Password reset link", "for frank@"+domain)
	second := admin.Chat(t, w.component, "reset frank")
	expectContains(t, second, "Password reset link", "for frank@"+domain)
	if w.srv.BindsResetTokens() {
		expectContains(t, second, "The earlier reset link "+cancelID(t, first)+" is cancelled here, but the server cannot cancel it: it still works until",
			"This server cannot cancel reset links")
		if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), inviteURIToken(t, first)); err != nil {
			t.Errorf("the bot says the first link still works, but the server refuses it: %v", err)
		}
		list := admin.Chat(t, w.component, "invites")
		expectContains(t, list, cancelID(t, first)+"  cancelled", "the server cannot revoke its token: it works until")
	} else {
		if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), inviteURIToken(t, first)); !errors.Is(err, ibr.ErrTokenRejected) {
			t.Errorf("the first reset token after a second reset: %v, want rejected", err)
		}
		if _, err := ibr.Register(ctx, w.srv.IBRConfig(), inviteURIToken(t, first), "frank", "taken over"); !errors.Is(err, ibr.ErrTokenRejected) {
			t.Errorf("registering with the first reset token: %v, want rejected", err)
		}
	}
	expectContains(t, admin.Chat(t, w.component, "cancel "+cancelID(t, first)), "is already cancelled")
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), inviteURIToken(t, second), "frank", "new frank password"); err != nil {
		t.Fatalf("the second reset link: %v", err)
	}
	if _, err := ibr.BoundJID(ctx, w.srv.IBRConfig(), frank, "new frank password"); err != nil {
		t.Errorf("the second link's new password does not log in: %v", err)
	}
}

// TestResetSafetyMinter: a bot minting as the minter account asks the
// server whether an account exists with the account's own rights: with the
// invitebot:minter role as prosody-config prints it, a reset of an existing
// account works and one of a missing account makes no link; with a role
// that lacks the account check, no link is made and the log says what to
// add to Prosody. Prosody 13 only (0.12 has neither roles nor resets).
func TestResetSafetyMinter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow []string
	}{
		{"role as printed", nil},
		{"role without the account check", []string{"adhoc:" + invites.NodeCreateAccount, "adhoc:" + prosody.NodePasswordReset}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allow := tc.allow
			if allow == nil {
				allow = minterRoleAllows(t)
			}
			role := prosodytest.Role{Name: prosody.MinterRole, Inherits: []string{"prosody:registered"}, Allow: allow}
			srv := prosodytest.Start(t, prosodytest.WithoutComponentAdmin(), prosodytest.WithCustomRoles(role))
			if !srv.HasRoles() {
				// 0.12 has no roles and no reset command: a minter bot
				// must say so instead of making a link.
				resetsRefusedWithoutRoles(t, srv)
				return
			}
			account := srv.AddUserWithRole(t, "minter", srv.Domain, minterPass, prosody.MinterRole)
			srv.AddUser(t, "alice", srv.Domain, "alice password")
			w := &world{srv: srv, component: jid.MustParse(srv.Component),
				dbPath: filepath.Join(t.TempDir(), "invitebot.db"), logs: &syncBuffer{}}
			ups := make(chan struct{}, 16)
			w.bot = w.startMinterBot(t, account, ups)
			awaitSignal(t, ups, "minter session up")
			admin := w.user(t, "admin", srv.Domain)
			testwait.For(t, e2eTimeout, "reset to be offered through the minter", func() bool {
				return strings.Contains(admin.Chat(t, w.component, "help"), "reset <jid>")
			})

			reply := admin.Chat(t, w.component, "reset alice")
			ghost := admin.Chat(t, w.component, "reset ghost")
			if strings.Contains(ghost, "preauth=") {
				t.Errorf("a reset link for an account that does not exist:\n%s", ghost)
			}
			if tc.allow == nil {
				expectContains(t, reply, "Password reset link", "for alice@"+srv.Domain)
				expectContains(t, ghost, "ghost@"+srv.Domain, "no account")
				return
			}
			if strings.Contains(reply, "preauth=") {
				t.Errorf("a reset link although the server could not say whether alice exists:\n%s", reply)
			}
			expectContains(t, reply, "could not find out")
			expectContains(t, w.logs.String(), "prosody_13", "admin#user-stats")
		})
	}
}

// minterRoleAllows returns the permissions of prosody.MinterRoleLua, the
// role prosody-config prints.
func minterRoleAllows(t *testing.T) []string {
	t.Helper()
	_, rest, ok := strings.Cut(prosody.MinterRoleLua, "allow = {")
	if !ok {
		t.Fatalf("no allow list in %s", prosody.MinterRoleLua)
	}
	rest, _, _ = strings.Cut(rest, "}")
	var allow []string
	for _, f := range strings.Split(rest, ";") {
		if f = strings.Trim(strings.TrimSpace(f), `"`); f != "" {
			allow = append(allow, f)
		}
	}
	return allow
}

// resetsRefusedWithoutRoles: on a Prosody without roles (0.12) a bot
// minting through a minter account offers no resets and refuses one.
func resetsRefusedWithoutRoles(t *testing.T, srv *prosodytest.Server) {
	t.Helper()
	account := srv.AddUser(t, "minter", srv.Domain, minterPass)
	srv.AddUser(t, "alice", srv.Domain, "alice password")
	w := &world{srv: srv, component: jid.MustParse(srv.Component),
		dbPath: filepath.Join(t.TempDir(), "invitebot.db"), logs: &syncBuffer{}}
	ups := make(chan struct{}, 16)
	w.bot = w.startMinterBot(t, account, ups)
	awaitSignal(t, ups, "minter session up")
	admin := w.user(t, "admin", srv.Domain)
	if strings.Contains(admin.Chat(t, w.component, "help"), "reset <jid>") {
		t.Errorf("Prosody %s offers no resets, but help lists reset", srv.Version)
	}
	expectContains(t, admin.Chat(t, w.component, "reset alice@"+srv.Domain), "need Prosody 13")
}
