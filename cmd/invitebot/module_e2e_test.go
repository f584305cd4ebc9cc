package main

// End-to-end tests of the bot with and without prosody/mod_invitebot.lua
// loaded into the real Prosody.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
)

// reportDeadline is the promise: the bot knows which account an invite
// created within a second of the registration.
const reportDeadline = time.Second

// newModuleWorld starts a Prosody (with mod_invitebot when module is set,
// and mod_offline so a new account's welcome waits for its first login) and
// the bot with its web server, and waits until the bot has found out
// whether the module is there.
func newModuleWorld(t *testing.T, module bool) *world {
	t.Helper()
	opts := []prosodytest.Option{prosodytest.WithOfflineMessages()}
	if module {
		opts = append(opts, prosodytest.WithInvitebotModule())
	}
	srv := prosodytest.Start(t, opts...)
	w := &world{srv: srv, component: jid.MustParse(srv.Component),
		dbPath: filepath.Join(t.TempDir(), "invitebot.db"), logs: &syncBuffer{}, httpListen: freeAddr(t)}
	w.bot = w.startBot(t)
	want := "prosody module mod_invitebot not loaded"
	if module {
		want = "prosody module mod_invitebot loaded"
	}
	w.awaitLog(t, want)
	return w
}

// awaitLog waits until the bot's log contains s.
func (w *world) awaitLog(t *testing.T, s string) {
	t.Helper()
	testwait.For(t, e2eTimeout, fmt.Sprintf("the bot to log %q", s), func() bool {
		return strings.Contains(w.logs.String(), s)
	})
}

// healthz returns the body of /healthz.
func (w *world) healthz(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + w.httpListen + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d %s", resp.StatusCode, body)
	}
	return string(body)
}

// grantedInviter grants carol on the other domain and logs her in.
func (w *world) grantedInviter(t *testing.T) (admin, carol *prosodytest.Client) {
	t.Helper()
	admin = w.user(t, "admin", w.srv.Domain)
	carol = w.user(t, "carol", w.srv.OtherDomain)
	expectContains(t, admin.Chat(t, w.component, "grant carol@"+w.srv.OtherDomain), "may now create invites")
	expectNotice(t, carol, "You may now create account invites")
	return admin, carol
}

// invite asks for an invite as c and returns the reply; the QR image
// message that follows it (the web server is on) is taken too.
func (w *world) invite(t *testing.T, c *prosodytest.Client) string {
	t.Helper()
	return w.chatWithQR(t, c, "invite")
}

// chatWithQR sends body (a command answered with a link) and returns the
// reply, taking the QR image message that follows it.
func (w *world) chatWithQR(t *testing.T, c *prosodytest.Client, body string) string {
	t.Helper()
	reply := c.Chat(t, w.component, body)
	if qr := c.Next(t); !strings.HasSuffix(qr.Body, "/qr.png") {
		t.Fatalf("expected the QR image after the reply to %q, got %q", body, qr.Body)
	}
	return reply
}

func isStanzaError(err error, cond stanza.Condition) bool {
	var se stanza.Error
	return errors.As(err, &se) && se.Condition == cond
}

// rosterItem is one jabber:iq:roster item.
type rosterItem struct {
	JID          string `xml:"jid,attr"`
	Subscription string `xml:"subscription,attr"`
	Ask          string `xml:"ask,attr"`
}

func rosterOf(t *testing.T, c *prosodytest.Client) map[string]rosterItem {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var q struct {
		Items []rosterItem `xml:"item"`
	}
	payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "jabber:iq:roster", Local: "query"}})
	if err := c.Session().UnmarshalIQElement(ctx, payload, stanza.IQ{Type: stanza.GetIQ}, &q); err != nil {
		t.Fatalf("roster of %s: %v", c.JID(), err)
	}
	items := make(map[string]rosterItem)
	for _, it := range q.Items {
		items[it.JID] = it
	}
	return items
}

// TestModuleReportsAppRegistration: with mod_invitebot, a registration made
// by an app straight from the URI is known within a second: the inviter is
// told which account joined, whoinvited names the inviter, the new account
// finds a welcome naming its inviter and the inviter in its contacts, and
// one tap on the inviter's side makes them mutual contacts.
func TestModuleReportsAppRegistration(t *testing.T) {
	w := newModuleWorld(t, true)
	admin, carol := w.grantedInviter(t)
	// The bot asks the server who it is when the link comes up, and says.
	w.awaitLog(t, "the server is Prosody "+w.srv.Version)
	expectContains(t, w.healthz(t), "prosody module mod_invitebot: loaded", "server: Prosody "+w.srv.Version)
	uri := inviteURI(t, w.invite(t, carol))

	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	newbie, err := ibr.Register(ctx, w.srv.IBRConfig(), uri.Token, "newbie", password)
	if err != nil {
		t.Fatalf("app registration: %v", err)
	}
	registered := time.Now()
	notice := carol.Next(t)
	if took := time.Since(registered); took > reportDeadline {
		t.Errorf("the inviter heard of the registration after %v, want within %v", took, reportDeadline)
	}
	expectContains(t, notice.Body, "was used: "+newbie.String()+" joined.",
		"They have asked to add you as a contact", "xmpp:"+newbie.String()+"?roster")
	expectContains(t, admin.Chat(t, w.component, "whoinvited newbie"),
		newbie.String()+" was invited by carol@"+w.srv.OtherDomain)
	expectContains(t, admin.Chat(t, w.component, "invites carol@"+w.srv.OtherDomain), newbie.String())

	// The new person's first login: a welcome naming the inviter, and the
	// inviter already in the contacts with a request out.
	nc := prosodytest.Login(t, w.srv, newbie, password)
	welcome := nc.Next(t)
	if !welcome.From.Equal(w.component) {
		t.Errorf("welcome from %s, want %s", welcome.From, w.component)
	}
	carolJID := "carol@" + w.srv.OtherDomain
	expectContains(t, welcome.Body, "Welcome to "+w.srv.Domain+"! "+carolJID+" invited you.", "xmpp:"+carolJID+"?roster")
	if it := rosterOf(t, nc)[carolJID]; it.Ask != "subscribe" {
		t.Errorf("new account's roster item for its inviter = %+v, want a pending request", it)
	}
	// One tap: carol approves the request and asks back, as clients do.
	for _, typ := range []stanza.PresenceType{stanza.SubscribedPresence, stanza.SubscribePresence} {
		if err := carol.Session().Send(ctx, stanza.Presence{To: newbie, Type: typ}.Wrap(nil)); err != nil {
			t.Fatal(err)
		}
	}
	testwait.ForNil(t, e2eTimeout, "newbie and carol to be mutual contacts", func() error {
		mine, hers := rosterOf(t, nc)[carolJID], rosterOf(t, carol)[newbie.String()]
		if mine.Subscription != "both" || hers.Subscription != "both" {
			return fmt.Errorf("newbie has %+v, carol has %+v", mine, hers)
		}
		return nil
	})

	// One token, one account, whatever the client does next.
	s := prosodytest.OpenRegistration(t, w.srv)
	if err := s.Preauth(uri.Token); !isStanzaError(err, stanza.Forbidden) {
		t.Errorf("preauth with the used token: %v, want forbidden", err)
	}
}

// TestModuleCancelDeletesTokenAtServer: with mod_invitebot, cancel and
// revoke delete tokens at the server at once, no throwaway account is
// registered, and a stream that passed preauth before the cancel cannot
// register with the token any more.
func TestModuleCancelDeletesTokenAtServer(t *testing.T) {
	w := newModuleWorld(t, true)
	admin, carol := w.grantedInviter(t)
	reply := w.invite(t, carol)
	uri := inviteURI(t, reply)
	id := cancelID(t, reply)

	early := prosodytest.OpenRegistration(t, w.srv)
	if err := early.Preauth(uri.Token); err != nil {
		t.Fatalf("preauth: %v", err)
	}
	expectContains(t, carol.Chat(t, w.component, "cancel "+id), "no longer works")
	if err := early.Register("sneaky", password); !isStanzaError(err, stanza.Forbidden) {
		t.Errorf("registration on a stream that passed preauth before the cancel: %v, want forbidden", err)
	}

	second := inviteURI(t, w.invite(t, carol))
	expectContains(t, admin.Chat(t, w.component, "revoke carol@"+w.srv.OtherDomain), "Cancelled 1 pending invite")
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), second.Token); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("token of the revoked inviter's invite: %v, want rejected", err)
	}
	prosodyLog, err := os.ReadFile(w.srv.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(prosodyLog), "revoked-") {
		t.Error("a throwaway revoked-… account was registered although the module deletes tokens")
	}
	expectContains(t, string(prosodyLog), "Deleted invite "+uri.Token[:4], "Deleted invite "+second.Token[:4])
	expectContains(t, admin.Chat(t, w.component, "audit "+id), invites.ActionTokenRevoked)
}

// cancelID returns the id in the "cancel <id>" hint of an invite or reset
// reply.
func cancelID(t *testing.T, reply string) string {
	t.Helper()
	m := cancelHintRE.FindAllStringSubmatch(reply, -1)
	if m == nil {
		t.Fatalf("reply names no id to cancel:\n%s", reply)
	}
	return m[len(m)-1][1]
}

var cancelHintRE = regexp.MustCompile(`cancel ([a-z2-7]{16})`)

// TestForgedReportIgnored: a report claiming an account from anyone but the
// domain itself is refused and changes nothing.
func TestForgedReportIgnored(t *testing.T) {
	w := newModuleWorld(t, true)
	admin, carol := w.grantedInviter(t)
	uri := inviteURI(t, w.invite(t, carol))
	mallory := w.user(t, "mallory", w.srv.Domain)

	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	report := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: prosody.NSModule, Local: "registered"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "token"}, Value: uri.Token},
			{Name: xml.Name{Local: "jid"}, Value: "mallory@" + w.srv.Domain},
		},
	})
	err := mallory.Session().UnmarshalIQElement(ctx, report, stanza.IQ{Type: stanza.SetIQ, To: w.component}, nil)
	if !isStanzaError(err, stanza.Forbidden) {
		t.Errorf("forged report: %v, want forbidden", err)
	}
	carol.NoMessage(t, time.Second)
	expectContains(t, admin.Chat(t, w.component, "whoinvited mallory"), "No record of who invited mallory@"+w.srv.Domain)
	expectContains(t, carol.Chat(t, w.component, "invites"), "pending")
	expectContains(t, w.logs.String(), "usage report ignored: only the domain itself may report registrations")
	// The token still works for the person it was meant for.
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), uri.Token); err != nil {
		t.Errorf("token after a forged report: %v", err)
	}
}

// TestWithoutModule: without mod_invitebot the bot says so, in its log and
// in /healthz, and keeps working as before: an app registration is found
// by polling, without a name, and cancelling consumes the token.
func TestWithoutModule(t *testing.T) {
	w := newModuleWorld(t, false)
	admin, carol := w.grantedInviter(t)
	expectContains(t, w.healthz(t), "prosody module mod_invitebot: not loaded")
	uri := inviteURI(t, w.invite(t, carol))
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), uri.Token, "quiet", password); err != nil {
		t.Fatal(err)
	}
	carol.NoMessage(t, 2*time.Second) // nobody reports it
	expectContains(t, admin.Chat(t, w.component, "whoinvited quiet"), "Without mod_invitebot")

	reply := w.invite(t, carol)
	expectContains(t, carol.Chat(t, w.component, "cancel "+cancelID(t, reply)), "no longer works")
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), inviteURI(t, reply).Token); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("cancelled token without the module: %v, want rejected", err)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// registerInBrowser registers username on the landing page of invite id the
// way a browser submits the form.
func (w *world) registerInBrowser(t *testing.T, id, username string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: e2eTimeout}
	page := "http://" + w.httpListen + "/i/" + id
	resp, err := client.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %s = %d without a form", page, resp.StatusCode)
	}
	form := url.Values{"csrf": {string(m[1])}, "username": {username}, "password": {password}, "password2": {password}}
	req, err := http.NewRequest(http.MethodPost, page, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	// The page lets the address wrap at its parts.
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ReplaceAll(string(body), "<wbr>", ""), username+"@"+w.srv.Domain) {
		t.Fatalf("POST %s = %d:\n%s", page, resp.StatusCode, body)
	}
}

// TestBrowserRegistrationIntroduces: an account made on the landing page is
// introduced too: the inviter gets its address with a link to add it, the
// new account a welcome naming the inviter; with mod_invitebot the inviter
// is in the new account's contacts with a request out.
func TestBrowserRegistrationIntroduces(t *testing.T) {
	for _, module := range []bool{false, true} {
		t.Run(fmt.Sprintf("module=%v", module), func(t *testing.T) {
			w := newModuleWorld(t, module)
			_, carol := w.grantedInviter(t)
			carolJID := "carol@" + w.srv.OtherDomain
			w.registerInBrowser(t, cancelID(t, w.invite(t, carol)), "webby")
			webby := "webby@" + w.srv.Domain

			notice := carol.Next(t)
			expectContains(t, notice.Body, "was used: "+webby+" joined.", "xmpp:"+webby+"?roster")
			if got := strings.Contains(notice.Body, "asked to add you"); got != module {
				t.Errorf("notice says a contact request was sent = %v, want %v: %q", got, module, notice.Body)
			}
			carol.NoMessage(t, time.Second) // one notice, although the module reported it too

			nc := prosodytest.Login(t, w.srv, jid.MustParse(webby), password)
			expectContains(t, nc.Next(t).Body, carolJID+" invited you.", "xmpp:"+carolJID+"?roster")
			if it, ok := rosterOf(t, nc)[carolJID]; ok != module || (module && it.Ask != "subscribe") {
				t.Errorf("new account's roster item for its inviter = %+v (present %v), want present = %v", it, ok, module)
			}
		})
	}
}

// TestModuleResetLinks: with mod_invitebot, a password reset link (Prosody
// 13) resets its own account and creates no other, and cancelling one
// deletes its token at the server.
func TestModuleResetLinks(t *testing.T) {
	w := newModuleWorld(t, true)
	admin := w.user(t, "admin", w.srv.Domain)
	if strings.HasPrefix(w.srv.Version, "0.12") {
		expectContains(t, admin.Chat(t, w.component, "reset someone"), "Password resets need Prosody 13 or newer")
		return
	}
	owner := w.srv.AddUser(t, "owner", w.srv.Domain, "old password")
	testwait.For(t, e2eTimeout, "reset to be offered on Prosody 13", func() bool {
		return strings.Contains(admin.Chat(t, w.component, "help"), "reset <jid>")
	})
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()

	reply := w.chatWithQR(t, admin, "reset owner")
	token := inviteURIToken(t, reply)
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), token, "intruder", "any password"); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("a new account with a reset link: %v, want the token rejected", err)
	}
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), token, "owner", "new password"); err != nil {
		t.Fatalf("the reset itself: %v", err)
	}
	if _, err := ibr.BoundJID(ctx, w.srv.IBRConfig(), owner, "new password"); err != nil {
		t.Errorf("the new password does not log in: %v", err)
	}

	reply = w.chatWithQR(t, admin, "reset owner")
	expectContains(t, admin.Chat(t, w.component, "cancel "+cancelID(t, reply)), "no longer works")
	cancelled := inviteURIToken(t, reply)
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), cancelled); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("a cancelled reset token: %v, want rejected", err)
	}
	prosodyLog, err := os.ReadFile(w.srv.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	expectContains(t, string(prosodyLog), "Deleted invite "+cancelled[:4])
	if strings.Contains(string(prosodyLog), "revoked-") {
		t.Error("a throwaway revoked-… account was registered although the module deletes tokens")
	}
}
