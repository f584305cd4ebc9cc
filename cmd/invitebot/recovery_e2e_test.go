package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
	"durare.org/invitebot/web"
)

// recoverAs sends the recovery form for name and returns the answer.
func (b *browserless) recoverAs(t *testing.T, name string) (*http.Response, string) {
	t.Helper()
	_, body := b.do(t, http.MethodGet, "/recover", nil)
	return b.do(t, http.MethodPost, "/recover", url.Values{"csrf": {submatch(t, csrfField, body)}, "username": {name}})
}

// TestPasswordRecovery: the recovery page answers every name alike. An
// account that kept its confirmed address (given at sign-up, with consent)
// gets a reset link by mail, which sets a new password, and is told over
// XMPP; an account without one has its inviter and the admins asked in
// chat; an unknown name or another domain's account causes nothing; the
// pause closes the page for every name. On Prosody 0.12, which makes no
// reset links, the people are asked for every account.
func TestPasswordRecovery(t *testing.T) {
	w, mta := signupWorld(t, func(c *config.Config) {
		c.Requests.AutoApprove = 5
		c.HTTP.Recovery = true
	})
	domain, other := w.srv.Domain, w.srv.OtherDomain
	resets := !strings.HasPrefix(w.srv.Version, "0.12")
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eTimeout)
	defer cancel()

	// Gus was invited by carol, an inviter elsewhere, and gave no address.
	w.bot.stop(t)
	gus := w.srv.AddUser(t, "gus", domain, "gus password 1")
	carolJID := "carol@" + other
	st, err := store.Open(ctx, w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	seeded, err := st.AddInvite(ctx, store.Invite{Token: "seeded-token", URI: "xmpp:" + domain + "?register;preauth=seeded-token",
		Domain: domain, Inviter: carolJID, Created: now.Add(-time.Hour), Expires: now.Add(time.Hour)},
		store.AuditEntry{Time: now, Actor: carolJID, Action: invites.ActionInviteCreate})
	if err == nil {
		_, err = st.SetInviteState(ctx, seeded.ID, store.StateUsed, gus.String(),
			store.AuditEntry{Time: now, Actor: gus.String(), Action: invites.ActionInviteUse})
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	w.bot = w.startBot(t)
	admin := w.user(t, "admin", domain)
	carol := w.user(t, "carol", other)
	expectContains(t, admin.Chat(t, w.component, "grant "+carolJID), "may now create invites")
	expectNotice(t, carol, "You may now create account invites")
	if resets {
		testwait.For(t, e2eTimeout, "reset to be offered on Prosody 13", func() bool {
			return strings.Contains(admin.Chat(t, w.component, "help"), "reset <jid>")
		})
	}

	// Frank signs up with his address, kept for recovery.
	b := newBrowserless(t, "http://"+w.httpListen)
	resp, _ := b.askWithMail(t, "Frank", "frank@example.net", url.Values{"recovery": {"yes"}})
	code, _ := confirmation(t, mta, "frank@example.net")
	_, body := b.typeCode(t, resp.Request.URL.String(), code)
	expectNotice(t, admin, "was approved automatically")
	resp, body = b.do(t, http.MethodPost, submatch(t, formAction, body), url.Values{"csrf": {submatch(t, csrfField, body)},
		"username": {"frank"}, "password": {password}, "password2": {password}})
	expectContains(t, body, web.English.SuccessTitle)
	frankJID := jid.MustParse("frank@" + domain)
	frank := prosodytest.Login(t, w.srv, frankJID, password)

	stranger := newBrowserless(t, "http://"+w.httpListen)
	answer := func(name string) string {
		t.Helper()
		resp, body := stranger.recoverAs(t, name)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, web.English.RecoverSentTitle) {
			t.Fatalf("recovering %q: %d\n%s", name, resp.StatusCode, body)
		}
		// The page without its CSRF token and cookie-bound parts.
		return csrfField.ReplaceAllString(body, "")
	}

	// Frank: a reset link by mail, and a note over XMPP.
	frankPage := answer("Frank")
	if resets {
		m := mta.Wait(t, "frank@example.net")
		link := regexp.MustCompile(`http://\S+/i/[a-z2-7]{16}`).FindString(m.Body)
		if link == "" || !strings.Contains(m.Subject, "Password reset") {
			t.Fatalf("the reset mail:\n%s\n%s", m.Subject, m.Body)
		}
		expectNotice(t, frank, "was mailed")
		rb := newBrowserless(t, "http://"+w.httpListen)
		_, body = rb.do(t, http.MethodGet, link, nil)
		expectContains(t, tagless.ReplaceAllString(body, ""), "Set a new password for frank@"+domain)
		const newPass = "a new long password"
		resp, body = rb.do(t, http.MethodPost, link, url.Values{"csrf": {submatch(t, csrfField, body)},
			"username": {"frank"}, "password": {newPass}, "password2": {newPass}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("setting the new password: %d\n%s", resp.StatusCode, body)
		}
		prosodytest.Login(t, w.srv, frankJID, newPass)
		expectContains(t, admin.Chat(t, w.component, "audit "+frankJID.String()), "recovery.mail")
	} else {
		expectNotice(t, admin, frankJID.String()+", asks for a password reset")
	}

	// Gus has no address: carol, who invited him, and the admin are asked.
	gusPage := answer("gus")
	expectNotice(t, carol, "An account you invited, "+gus.String()+", asks for a password reset on the recovery page; answer reset "+gus.String())
	expectNotice(t, admin, gus.String()+", asks for a password reset")
	// Asking again within the hour asks nobody again.
	answer("gus")

	// Names of no account here cause nothing, and read the same.
	for _, name := range []string{"nobody", "carol@" + other, "@@@"} {
		if got := answer(name); got != gusPage || got != frankPage {
			t.Errorf("the answer for %q differs from the one for an account", name)
		}
	}
	admin.NoMessage(t, time.Second)
	carol.NoMessage(t, 0)
	wantMails := 1 // Frank's confirmation
	if resets {
		wantMails++
	}
	if n := mta.Count(t, ""); n != wantMails {
		t.Errorf("%d mails sent, want %d", n, wantMails)
	}

	// The pause closes recovery for every name alike.
	expectContains(t, admin.Chat(t, w.component, "pause maintenance"), "paused")
	for _, name := range []string{"frank", "nobody"} {
		resp, body := stranger.recoverAs(t, name)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, web.English.RecoverClosedTitle) {
			t.Errorf("recovering %q while paused: %d\n%s", name, resp.StatusCode, body)
		}
	}
}

// TestAccountKeepsMailByChat: an account of the domain keeps a mail
// address by chat (a code mailed there and sent back), sees it masked,
// gets a recovery mail there, and has it forgotten on request; wrong
// codes count, disposable domains are refused, and accounts elsewhere
// cannot use the command.
func TestAccountKeepsMailByChat(t *testing.T) {
	w, mta := signupWorld(t, func(c *config.Config) { c.HTTP.Recovery = true })
	domain := w.srv.Domain
	resets := !strings.HasPrefix(w.srv.Version, "0.12")
	admin := w.user(t, "admin", domain)
	gusJID := w.srv.AddUser(t, "gus", domain, "gus password 1")
	gus := prosodytest.Login(t, w.srv, gusJID, "gus password 1")
	other := w.user(t, "olga", w.srv.OtherDomain)
	if resets {
		testwait.For(t, e2eTimeout, "reset to be offered on Prosody 13", func() bool {
			return strings.Contains(admin.Chat(t, w.component, "help"), "reset <jid>")
		})
	}

	expectContains(t, gus.Chat(t, w.component, "email"), "keeps no mail address")
	expectContains(t, gus.Chat(t, w.component, "email gus@mailinator.com"), "disposable")
	expectContains(t, other.Chat(t, w.component, "email olga@example.org"), "Only accounts on "+domain)
	expectContains(t, gus.Chat(t, w.component, "email Gus@Example.net"), "A code is on its way")
	m := mta.Wait(t, "Gus@example.net")
	code := regexp.MustCompile(`email confirm ([0-9]{6})`).FindStringSubmatch(m.Body)
	if code == nil {
		t.Fatalf("the mail holds no code:\n%s", m.Body)
	}
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, code[1])+1)%1000000)
	expectContains(t, gus.Chat(t, w.component, "email confirm "+wrong), "Tries left: 4")
	expectContains(t, gus.Chat(t, w.component, "email confirm "+code[1]), "Confirmed")
	expectContains(t, gus.Chat(t, w.component, "email"), "keeps G•••@example.net")

	b := newBrowserless(t, "http://"+w.httpListen)
	if resets {
		b.recoverAs(t, "gus")
		m = mta.Wait(t, "Gus@example.net")
		expectContains(t, m.Subject, "Password reset")
		expectNotice(t, gus, "was mailed")
	}
	expectContains(t, gus.Chat(t, w.component, "email remove"), "Done")
	expectContains(t, gus.Chat(t, w.component, "email"), "keeps no mail address")
	// Without an address, the admins are asked.
	b.recoverAs(t, "gus")
	expectNotice(t, admin, gusJID.String()+", asks for a password reset")
}
