package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
)

// Event links against the real Prosody and the bot's real HTTP server: the
// cap under concurrent visitors, expiry, closing, pause.

// newWebWorld is newWorld with the web server on.
func newWebWorld(t *testing.T) *world {
	t.Helper()
	srv := prosodytest.Start(t)
	w := &world{srv: srv, component: jid.MustParse(srv.Component),
		dbPath: filepath.Join(t.TempDir(), "invitebot.db"), logs: &syncBuffer{}, httpListen: freeAddr(t)}
	w.bot = w.startBot(t)
	return w
}

var eventPageRE = regexp.MustCompile(`(?m)^(http://\S+/e/([a-z2-7]{16}))$`)

// makeEvent sends an event command as c and returns the link's page and
// id. The QR image the bot sends after the reply is fetched and checked.
func (w *world) makeEvent(t *testing.T, c *prosodytest.Client, command string) (page, id string) {
	t.Helper()
	reply := c.Chat(t, w.component, command)
	m := eventPageRE.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("%q: no event page in the reply:\n%s", command, reply)
	}
	qr := c.Next(t)
	if qr.Body != m[1]+"/qr.png" || !strings.Contains(qr.Inner, "jabber:x:oob") {
		t.Errorf("QR message %q, want the page's QR code as XEP-0066 data", qr.Body)
	}
	resp, err := http.Get(qr.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("GET %s: %d %s", qr.Body, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return m[1], m[2]
}

// visitor is one browser: its own cookies, redirects not followed so the
// test sees where it is sent.
type visitor struct{ c *http.Client }

func newVisitor(t *testing.T) *visitor {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &visitor{c: &http.Client{Jar: jar, Timeout: e2eTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// fetch GETs u and returns the status, the Location and the body.
func (v *visitor) fetch(t *testing.T, u string) (int, string, string) {
	t.Helper()
	resp, err := v.c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// open GETs the event page, which must offer the button, and returns its
// form token.
func (v *visitor) open(t *testing.T, page string) string {
	t.Helper()
	code, _, body := v.fetch(t, page)
	m := csrfFieldRE.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		t.Fatalf("GET %s: %d, want the page with its button:\n%s", page, code, body)
	}
	return m[1]
}

// press POSTs the event page's form; it does not fail the test, so that
// visitors may press from many goroutines.
func (v *visitor) press(page, token string) (int, string, string, error) {
	resp, err := v.c.PostForm(page, url.Values{"csrf": {token}})
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body), nil
}

// inviteToken reads the token of the invite whose landing page is at u,
// from the page's Link header (the page apps read).
func inviteToken(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	link := resp.Header.Get("Link")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(link, "<xmpp:") {
		t.Fatalf("GET %s: %d, Link %q", u, resp.StatusCode, link)
	}
	uri, err := invites.ParseURI(strings.TrimPrefix(link[:strings.IndexByte(link, '>')], "<"))
	if err != nil {
		t.Fatalf("invite URI in %q: %v", link, err)
	}
	return uri.Token
}

// TestEventLinkForThreeWithTenVisitors is the promise: an event
// link for three people hands out exactly three working invites to ten
// concurrent visitors through the real web server, and says it is used up
// afterwards. The invites are the creator's but do not touch their own
// daily quota.
func TestEventLinkForThreeWithTenVisitors(t *testing.T) {
	w := newWebWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	carol := w.user(t, "carol", w.srv.OtherDomain)
	carolJID := "carol@" + w.srv.OtherDomain
	expectContains(t, carol.Chat(t, w.component, "help"), "Ask an admin")
	expectContains(t, admin.Chat(t, w.component, "grant "+carolJID+" per-day 1 events 5"), "Event links of up to 5 people")
	expectNotice(t, carol, "You may now create account invites")
	expectContains(t, carol.Chat(t, w.component, "event 6 2h"), "at most 5 people")
	// With the web server on, clients with a command menu offer it too.
	expectContains(t, strings.Join(commandNodes(t, carol, w.component), " "), "create-event", "list-events", "close-event")
	page, id := w.makeEvent(t, carol, "event 3 2h meetup")

	const visitors = 10
	vs := make([]*visitor, visitors)
	tokens := make([]string, visitors)
	for i := range vs {
		vs[i] = newVisitor(t)
		tokens[i] = vs[i].open(t, page)
	}
	type result struct {
		code     int
		location string
		body     string
		err      error
	}
	results := make([]result, visitors)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, loc, body, err := vs[i].press(page, tokens[i])
			results[i] = result{code, loc, body, err}
		}()
	}
	close(start)
	wg.Wait()

	base := "http://" + w.httpListen
	var landed []string
	var usedUp int
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("visitor %d: %v", i, r.err)
		case r.code == http.StatusSeeOther && strings.HasPrefix(r.location, "/i/"):
			landed = append(landed, base+r.location)
		case r.code == http.StatusGone && strings.Contains(r.body, "This link is used up"):
			usedUp++
		default:
			t.Errorf("visitor %d: %d to %q:\n%s", i, r.code, r.location, r.body)
		}
	}
	if len(landed) != 3 || usedUp != visitors-3 {
		t.Fatalf("%d visitors got an invite and %d were told the link is used up; want 3 and %d", len(landed), usedUp, visitors-3)
	}

	// Each invite is real: its token registers an account at the server.
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eTimeout)
	defer cancel()
	seen := map[string]bool{}
	for i, u := range landed {
		token := inviteToken(t, u)
		if seen[token] {
			t.Fatalf("two visitors got the same token")
		}
		seen[token] = true
		account, err := ibr.Register(ctx, w.srv.IBRConfig(), token, fmt.Sprintf("visitor%d", i), "visitor's password")
		if err != nil {
			t.Fatalf("registering with the invite of visitor %d: %v", i, err)
		}
		if _, err := ibr.BoundJID(ctx, w.srv.IBRConfig(), account, "visitor's password"); err != nil {
			t.Errorf("%s cannot log in: %v", account, err)
		}
	}

	// Afterwards: used up for a newcomer; a visitor who got an invite is
	// sent back to theirs.
	code, _, body := newVisitor(t).fetch(t, page)
	if code != http.StatusGone || !strings.Contains(body, "This link is used up") {
		t.Errorf("the link afterwards: %d\n%s", code, body)
	}
	for i, r := range results {
		if r.code != http.StatusSeeOther {
			continue
		}
		if code, loc, _ := vs[i].fetch(t, page); code != http.StatusSeeOther || loc != r.location {
			t.Errorf("visitor %d coming back: %d to %q, want their own invite %s", i, code, loc, r.location)
		}
	}

	// The invites are carol's, with the link; her own per-day limit of one
	// is untouched.
	list := carol.Chat(t, w.component, "invites")
	if n := strings.Count(list, " pending "); n != 3 {
		t.Errorf("carol's invites list %d pending, want the 3 of the link:\n%s", n, list)
	}
	inviteURI(t, carol.Chat(t, w.component, "invite"))
	carol.Next(t) // its QR code
	expectContains(t, carol.Chat(t, w.component, "events"), id+"  used up", "3 of 3 handed out (meetup)")
	expectContains(t, admin.Chat(t, w.component, "audit "+carolJID+" 30"), "event "+id, "event.create")

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Exactly three minted. How many of the seven others are counted as
	// used_up depends on timing: a visitor who loaded the page after the
	// third claim was told at once (GET) and never pressed the button.
	expectContains(t, string(metrics), `invitebot_event_uses_total{outcome="minted"} 3`)
	if m := regexp.MustCompile(`invitebot_event_uses_total\{outcome="used_up"\} (\d+)`).FindStringSubmatch(string(metrics)); m != nil {
		if n, _ := strconv.Atoi(m[1]); n > visitors-3 {
			t.Errorf("%d claims counted as used up, more than the %d visitors who got none", n, visitors-3)
		}
	}
}

// TestEventLinkExpiresClosesAndPauses: a link stops at its expiry; closing
// one cancels its unused invites at the server; pause stops a link and
// resume lets it go on.
func TestEventLinkExpiresClosesAndPauses(t *testing.T) {
	w := newWebWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eTimeout)
	defer cancel()

	// Expiry. The link is open for a few seconds; the wait counts from
	// before it was made, so a slow machine cannot make it too short.
	const valid = 6 * time.Second
	made := time.Now()
	page, _ := w.makeEvent(t, admin, "event 2 "+valid.String())
	early := newVisitor(t)
	token := early.open(t, page)
	time.Sleep(time.Until(made.Add(valid + 500*time.Millisecond)))
	code, _, body := newVisitor(t).fetch(t, page)
	if code != http.StatusGone || !strings.Contains(body, "This link has expired") {
		t.Errorf("an expired link: %d\n%s", code, body)
	}
	if code, _, body, err := early.press(page, token); err != nil || code != http.StatusGone || !strings.Contains(body, "This link has expired") {
		t.Errorf("pressing on an expired link: %d, %v\n%s", code, err, body)
	}

	// Closing.
	page, id := w.makeEvent(t, admin, "event 3 1h")
	guest := newVisitor(t)
	code, loc, _, err := guest.press(page, guest.open(t, page))
	if err != nil || code != http.StatusSeeOther {
		t.Fatalf("claim: %d, %v", code, err)
	}
	inviteTok := inviteToken(t, "http://"+w.httpListen+loc)
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), inviteTok); err != nil {
		t.Fatalf("the event invite's token before closing: %v", err)
	}
	expectContains(t, admin.Chat(t, w.component, "close-event "+id), "is closed", "handed out 1 of 3; cancelled 1 unused invite(s): their links no longer work.")
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), inviteTok); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("the token of a closed link's unused invite: %v, want ErrTokenRejected", err)
	}
	code, _, body = newVisitor(t).fetch(t, page)
	if code != http.StatusGone || !strings.Contains(body, "This link was closed") {
		t.Errorf("a closed link: %d\n%s", code, body)
	}
	// The guest is sent to their invite, which says it no longer works.
	if code, back, _ := guest.fetch(t, page); code != http.StatusSeeOther || back != loc {
		t.Errorf("the guest coming back: %d to %q", code, back)
	}
	if code, _, _ := guest.fetch(t, "http://"+w.httpListen+loc); code != http.StatusGone {
		t.Errorf("the guest's cancelled invite: %d, want 410", code)
	}

	// Pause.
	page, _ = w.makeEvent(t, admin, "event 3 1h")
	late := newVisitor(t)
	token = late.open(t, page)
	expectContains(t, admin.Chat(t, w.component, "pause checking something"), "paused")
	code, _, body = newVisitor(t).fetch(t, page)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "Invitations are paused") || strings.Contains(body, "checking something") {
		t.Errorf("a link while paused: %d\n%s", code, body)
	}
	if code, _, _, err := late.press(page, token); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("pressing while paused: %d, %v", code, err)
	}
	expectContains(t, admin.Chat(t, w.component, "event 3 1h"), "Invites are paused")
	expectContains(t, admin.Chat(t, w.component, "resume"), "allowed again")
	if code, loc, _, err := late.press(page, late.open(t, page)); err != nil || code != http.StatusSeeOther {
		t.Errorf("pressing after resume: %d to %q, %v", code, loc, err)
	}
}
