package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/commands"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/web"
)

// requestWorld is a Prosody and a bot with the web server and the request
// page on; tune adjusts the request limits.
func requestWorld(t *testing.T, checkInterval time.Duration, tune func(*config.Config)) *world {
	t.Helper()
	srv := prosodytest.Start(t)
	w := &world{srv: srv, component: jid.MustParse(srv.Component), dbPath: filepath.Join(t.TempDir(), "invitebot.db"),
		logs: &syncBuffer{}, httpListen: freeAddr(t), checkInterval: checkInterval,
		tune: func(c *config.Config) {
			c.HTTP.Requests = true
			if tune != nil {
				tune(c)
			}
		}}
	w.bot = w.startBot(t)
	return w
}

// browserless is a stranger's browser without JavaScript: a cookie jar
// that follows redirects.
type browserless struct {
	c    *http.Client
	base string
}

func newBrowserless(t *testing.T, base string) *browserless {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browserless{c: &http.Client{Jar: jar, Timeout: e2eTimeout}, base: base}
}

func (b *browserless) do(t *testing.T, method, target string, form url.Values) (*http.Response, string) {
	t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = b.base + target
	}
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = b.c.PostForm(target, form)
	} else {
		resp, err = b.c.Get(target)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

var (
	csrfField  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	formAction = regexp.MustCompile(`<form method="post" action="([^"#]*)#register">`)
	appLink    = regexp.MustCompile(`id="open-in-app" href="([^"]+)"`)
	approveCmd = regexp.MustCompile(`approve ([a-z2-7]{16})`)
)

func submatch(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page lacks %s:\n%s", re, body)
	}
	return html.UnescapeString(m[1])
}

// ask fills in the request form as a person would (extra adds or replaces
// fields) and sends it; the answer is whatever the redirect leads to.
func (b *browserless) ask(t *testing.T, name, contact, message string, extra url.Values) (*http.Response, string) {
	t.Helper()
	return b.send(t, b.form(t), name, contact, message, extra)
}

// form opens the request page and returns its form's CSRF token.
func (b *browserless) form(t *testing.T) string {
	t.Helper()
	resp, body := b.do(t, http.MethodGet, "/request", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /request: %d\n%s", resp.StatusCode, body)
	}
	return submatch(t, csrfField, body)
}

// send sends the request form whose token is csrf.
func (b *browserless) send(t *testing.T, csrf, name, contact, message string, extra url.Values) (*http.Response, string) {
	t.Helper()
	form := url.Values{"csrf": {csrf}, "name": {name}, "contact": {contact}, "message": {message}, "website": {""}}
	for k, v := range extra {
		form[k] = v
	}
	return b.do(t, http.MethodPost, "/request", form)
}

// tagless is a page's text without its markup.
var tagless = regexp.MustCompile(`<[^>]*>`)

// noticeID reads the next message of c, a new-request notice, and returns
// the request id it names.
func noticeID(t *testing.T, c *prosodytest.Client) (prosodytest.Message, string) {
	t.Helper()
	m := c.Next(t)
	if !strings.Contains(m.Body, "New account request") {
		t.Fatalf("expected a request notice, got %q", m.Body)
	}
	return m, approveCmd.FindStringSubmatch(m.Body)[1]
}

// metric reads one sample line of /metrics.
func metric(t *testing.T, b *browserless, sample string) string {
	t.Helper()
	_, body := b.do(t, http.MethodGet, "/metrics", nil)
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, sample+" ") {
			return strings.TrimPrefix(line, sample+" ")
		}
	}
	t.Fatalf("/metrics lacks %s", sample)
	return ""
}

// TestAccountRequestApprovedInChat is the path the issue asks for: a
// stranger asks on the web page; the approvers (an admin, an inviter
// granted requests yes; not a plain inviter) get the request in chat, its
// markup and links inert; one approves with one command, the first answer
// wins, the requester is told at the address they gave; the bookmarked
// page is now the invitation, whose token registers an account recorded
// as invited by the approver.
func TestAccountRequestApprovedInChat(t *testing.T) {
	w := requestWorld(t, 0, nil)
	domain, other := w.srv.Domain, w.srv.OtherDomain
	admin := w.user(t, "admin", domain)
	dora := w.user(t, "dora", other)
	carol := w.user(t, "carol", other)
	anna := w.user(t, "anna", other) // the requester's address elsewhere
	doraJID := "dora@" + other
	expectContains(t, admin.Chat(t, w.component, "grant carol@"+other), "may now create invites")
	expectNotice(t, carol, "You may now create account invites")
	expectContains(t, admin.Chat(t, w.component, "grant "+doraJID+" requests yes"), "may answer account requests too")
	expectNotice(t, dora, "You may also answer account requests")

	b := newBrowserless(t, "http://"+w.httpListen)
	resp, body := b.ask(t, "*Anna* <b>B</b>", "xmpp:anna@"+other,
		"> I know Dora from https://club.example/members, see www.evil.example _now_", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/r/") {
		t.Fatalf("after sending the request: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	expectContains(t, body, web.English.StatusWaitingTitle, "Thank you, *Anna* &lt;b&gt;B&lt;/b&gt;.")
	statusPage := resp.Request.URL.String()

	// Both approvers get the request; its text can neither link nor style.
	notice, id := noticeID(t, admin)
	for _, m := range []prosodytest.Message{notice, dora.Next(t)} {
		expectContains(t, m.Body, "New account request "+id+" for "+domain, "Name: “*Anna* <b>B</b>”",
			"Contact: anna[@]"+strings.ReplaceAll(other, ".", "[.]")+" (not verified)",
			"Says: > I know Dora from https[:]//club[.]example/members, see www[.]evil[.]example _now_",
			"approve "+id, "deny "+id)
		for _, link := range []string{"https://club", "www.evil", "anna@" + other} {
			if strings.Contains(m.Body, link) {
				t.Errorf("the notice offers %q as a link:\n%s", link, m.Body)
			}
		}
		expectContains(t, m.Inner, `<unstyled xmlns="urn:xmpp:styling:0">`)
		if strings.Contains(m.Inner, "xhtml") {
			t.Errorf("the notice carries XHTML: %s", m.Inner)
		}
	}
	carol.NoMessage(t, time.Second)
	anna.NoMessage(t, 0) // nothing the stranger alone did reached that address

	expectContains(t, dora.Chat(t, w.component, "requests"), "Open account requests (1", id)
	reply := dora.Chat(t, w.component, "approve "+id)
	expectContains(t, reply, "Approved request "+id, "in your name", "told at anna[@]")
	expectNotice(t, admin, "Account request "+id+" by “*Anna* <b>B</b>” was approved by "+doraJID)
	expectNotice(t, anna, "Your request for an account on "+domain+" was approved")
	expectContains(t, admin.Chat(t, w.component, "deny "+id+" too late"), "already approved by "+doraJID)
	expectContains(t, admin.Chat(t, w.component, "approve "+id), "already approved by "+doraJID)

	// The bookmarked page is the invitation now.
	resp, body = b.do(t, http.MethodGet, statusPage, nil)
	expectContains(t, tagless.ReplaceAllString(body, ""), web.English.StatusApproved, doraJID+" invited you to "+domain, web.English.Submit)
	uri, err := invites.ParseURI(submatch(t, appLink, body))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), uri.Token); err != nil {
		t.Fatalf("the status page's token is not valid at the server: %v", err)
	}
	action := submatch(t, formAction, body)
	resp, body = b.do(t, http.MethodPost, action, url.Values{"csrf": {submatch(t, csrfField, body)},
		"username": {"anna"}, "password": {password}, "password2": {password}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("registering from the status page: %d\n%s", resp.StatusCode, body)
	}
	expectContains(t, body, web.English.SuccessTitle)
	prosodytest.Login(t, w.srv, jid.MustParse("anna@"+domain), password)
	expectNotice(t, dora, "was used: anna@"+domain+" joined")

	// The invite tree is exact: the approver invited the new account.
	expectContains(t, admin.Chat(t, w.component, "whoinvited anna"), "anna@"+domain+" was invited by "+doraJID)
	expectContains(t, dora.Chat(t, w.component, "invites"), "answers request "+id, "created account anna@"+domain)
	expectContains(t, admin.Chat(t, w.component, "audit "+id), "request.approve", doraJID, "request.receive")
	// The status page now says the account was created, naming it.
	resp, body = b.do(t, http.MethodGet, statusPage, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the used invitation's status page answers %d at %s", resp.StatusCode, resp.Request.URL)
	}
	expectContains(t, body, web.English.StatusCreatedTitle, "anna@"+domain)
	for sample, want := range map[string]string{
		`invitebot_account_requests_total{event="received"}`: "1",
		`invitebot_account_requests_total{event="approved"}`: "1",
	} {
		if got := metric(t, b, sample); got != want {
			t.Errorf("%s = %s, want %s", sample, got, want)
		}
	}
}

// formWords is what a form's text lines say, wrapped lines joined.
func formWords(f *dataform.Form) string {
	var words []string
	for _, fl := range f.Fields {
		if fl.Type == dataform.Fixed {
			for _, v := range fl.Values {
				words = append(words, strings.Fields(v)...)
			}
		}
	}
	return strings.Join(words, " ")
}

// TestAccountRequestAdhocAndLimits: approval and denial from ad-hoc
// forms, the reason on the declined requester's page; the cap on open
// requests, the honeypot, the per-address limit and the pause, each
// refusing on the public page without reaching the approvers.
func TestAccountRequestAdhocAndLimits(t *testing.T) {
	w := requestWorld(t, 0, func(c *config.Config) { c.Requests.MaxOpen, c.Requests.PerAddressPerHour = 3, 5 })
	admin := w.user(t, "admin", w.srv.Domain)
	b := newBrowserless(t, "http://"+w.httpListen)

	// A robot filling in the honeypot is sent to a page that does not
	// exist; nobody hears of it. It counts against the address's hourly
	// requests (1 of 5).
	resp, _ := b.ask(t, "Robot", "", "cheap pills", url.Values{"website": {"https://spam.example"}})
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Request.URL.Path, "/r/") {
		t.Errorf("honeypot: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	late := b.form(t) // a form opened while requests are still taken

	var ids, pages []string
	for _, name := range []string{"One", "Two", "Three"} { // 2 to 4 of 5
		resp, body := b.ask(t, name, "", "I know the admin", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, web.English.StatusWaitingTitle) {
			t.Fatalf("request %s: %d\n%s", name, resp.StatusCode, body)
		}
		_, id := noticeID(t, admin)
		ids, pages = append(ids, id), append(pages, resp.Request.URL.String())
	}
	// Three open: the page says requests are closed for now, and so does
	// sending the form opened before (which gives its place back).
	resp, body := b.do(t, http.MethodGet, "/request", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, web.English.RequestClosedFull) {
		t.Errorf("the page past the cap: %d\n%s", resp.StatusCode, body)
	}
	resp, body = b.send(t, late, "Four", "", "hello", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, web.English.RequestClosedFull) {
		t.Errorf("a request past the cap: %d\n%s", resp.StatusCode, body)
	}
	admin.NoMessage(t, time.Second)

	// Approve the first with the ad-hoc form: pick, confirm, complete.
	approve := commands.Command{JID: w.component, Node: "approve-request"}
	first := execute(t, admin, approve, nil)
	if first.Form == nil || len(first.Form.Fields) == 0 || len(first.Form.Fields[0].Options) != 3 {
		t.Fatalf("approve form: %+v", first.Form)
	}
	confirm := execute(t, admin, first.Next(), &dataform.Form{Type: dataform.TypeSubmit,
		Fields: []dataform.Field{{Var: "id", Values: []string{ids[0]}}}})
	if confirm.Status != "executing" || !strings.Contains(formWords(confirm.Form), "Approve request "+ids[0]+" by “One”") {
		t.Fatalf("confirmation: %+v", confirm)
	}
	done := execute(t, admin, confirm.Complete(), nil)
	if done.Status != "completed" || len(done.Notes) != 1 || !strings.Contains(done.Notes[0], "Approved request "+ids[0]) {
		t.Fatalf("approval: %+v", done)
	}
	// Decline the second, with a reason the requester reads.
	deny := commands.Command{JID: w.component, Node: "deny-request"}
	form := execute(t, admin, deny, nil)
	confirm = execute(t, admin, form.Next(), &dataform.Form{Type: dataform.TypeSubmit, Fields: []dataform.Field{
		{Var: "id", Values: []string{ids[1]}}, {Var: "reason", Values: []string{"Nobody here could place you."}}}})
	done = execute(t, admin, confirm.Complete(), nil)
	if len(done.Notes) != 1 || !strings.Contains(done.Notes[0], "Declined request "+ids[1]) {
		t.Fatalf("denial: %+v", done)
	}
	_, body = b.do(t, http.MethodGet, pages[1], nil)
	expectContains(t, body, web.English.StatusDeniedTitle, "The reason given: Nobody here could place you.")
	_, body = b.do(t, http.MethodGet, pages[0], nil)
	expectContains(t, body, web.English.StatusApproved, `id="open-in-app"`)

	// Room again, and for the fifth of this address's requests this hour,
	// its last.
	resp, _ = b.ask(t, "Four", "", "hello again", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after answering two: %d", resp.StatusCode)
	}
	noticeID(t, admin)
	resp, body = b.ask(t, "Five", "", "and again", nil)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, web.English.ErrRequestTooMany) {
		t.Errorf("past the per-address limit: %d\n%s", resp.StatusCode, body)
	}

	// The pause closes the page too, without telling the public why.
	expectContains(t, admin.Chat(t, w.component, "pause spam wave"), "paused")
	resp, body = b.do(t, http.MethodGet, "/request", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, web.English.RequestClosedPaused) || strings.Contains(body, "spam wave") {
		t.Errorf("while paused: %d\n%s", resp.StatusCode, body)
	}
	expectContains(t, admin.Chat(t, w.component, "approve "+ids[2]), "Invites are paused: spam wave")
	expectContains(t, admin.Chat(t, w.component, "resume"), "allowed again")
	resp, _ = b.do(t, http.MethodGet, "/request", nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after resume: %d", resp.StatusCode)
	}
	admin.NoMessage(t, time.Second)

	for sample, want := range map[string]string{
		`invitebot_account_requests_total{event="received"}`:            "4",
		`invitebot_account_requests_total{event="approved"}`:            "1",
		`invitebot_account_requests_total{event="denied"}`:              "1",
		`invitebot_account_requests_refused_total{limit="max_open"}`:    "1",
		`invitebot_account_requests_refused_total{limit="honeypot"}`:    "1",
		`invitebot_account_requests_refused_total{limit="per_address"}`: "1",
	} {
		if got := metric(t, b, sample); got != want {
			t.Errorf("%s = %s, want %s", sample, got, want)
		}
	}
}

// TestAccountRequestExpires: a request nobody answers lapses after
// requests.expire_after: the sweep marks it, its page says so and offers
// to ask again, and it can no longer be approved.
func TestAccountRequestExpires(t *testing.T) {
	w := requestWorld(t, 300*time.Millisecond, func(c *config.Config) { c.Requests.ExpireAfter = 2 * time.Second })
	admin := w.user(t, "admin", w.srv.Domain)
	b := newBrowserless(t, "http://"+w.httpListen)
	resp, _ := b.ask(t, "Slow", "", "hello", nil)
	page := resp.Request.URL.String()
	_, id := noticeID(t, admin)

	testwait.For(t, e2eTimeout, "the request to be marked expired", func() bool {
		return strings.Contains(admin.Chat(t, w.component, "audit "+id), "request.expire")
	})
	_, body := b.do(t, http.MethodGet, page, nil)
	expectContains(t, body, web.English.StatusExpiredTitle, `href="/request"`)
	expectContains(t, admin.Chat(t, w.component, "approve "+id), "expired at")
	expectContains(t, admin.Chat(t, w.component, "requests"), "No open account requests.")
	if got := metric(t, b, `invitebot_account_requests_total{event="expired"}`); got != "1" {
		t.Errorf("expired counted %s", got)
	}
}

// TestRequestDefaultsAgree: the configuration's defaults are the ones the
// service and the page use when told nothing.
func TestRequestDefaultsAgree(t *testing.T) {
	if config.DefaultRequestExpiry != invites.DefaultRequestExpiry || config.DefaultMaxOpenRequests != invites.DefaultMaxOpenRequests ||
		config.DefaultRequestsPerHour != web.DefaultRequestsPerHour {
		t.Error("request defaults differ between config, invites and web")
	}
}
