package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"durare.org/invitebot/internal/plaintext"
	"durare.org/invitebot/invites"
)

// fakeRequests is an in-memory Requests. Keys are a 16-letter id and a
// 26-letter secret, like the service's.
type fakeRequests struct {
	mu        sync.Mutex
	intake    error
	submitErr error
	byKey     map[string]invites.Request
	submitted []invites.NewRequest
}

func (f *fakeRequests) RequestIntake(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.intake
}

func (f *fakeRequests) SubmitRequest(_ context.Context, nr invites.NewRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.submitErr != nil {
		return "", f.submitErr
	}
	f.submitted = append(f.submitted, nr)
	id := fmt.Sprintf("request%09d", len(f.submitted))
	key := id + strings.Repeat("s", 26)
	f.byKey[key] = invites.Request{ID: id, Name: plaintext.Line(nr.Name), Contact: nr.Contact, Message: nr.Message,
		Created: testNow, Expires: testNow.Add(7 * 24 * time.Hour), State: invites.RequestOpen}
	return key, nil
}

func (f *fakeRequests) RequestStatus(_ context.Context, key string) (invites.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byKey[key]
	if !ok {
		return invites.Request{}, invites.ErrNoSuchRequest
	}
	return r, nil
}

func (f *fakeRequests) set(key string, edit func(*invites.Request)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.byKey[key]
	edit(&r)
	f.byKey[key] = r
}

func (f *fakeRequests) sent() []invites.NewRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]invites.NewRequest(nil), f.submitted...)
}

// newRequestEnv is newEnv with the request pages on.
func newRequestEnv(t *testing.T, mut ...func(*Config)) (*env, *fakeRequests) {
	t.Helper()
	reqs := &fakeRequests{byKey: map[string]invites.Request{}}
	e := newEnv(t, nil, append([]func(*Config){func(c *Config) {
		c.Requests, c.RequestForm = reqs, true
	}}, mut...)...)
	return e, reqs
}

// requestForm fetches /request like a browser: its CSRF cookie and token.
func (e *env) requestForm(t *testing.T, remote string) (*http.Cookie, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/request", nil)
	r.RemoteAddr = remote
	w := e.do(r)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /request = %d\n%s", w.Code, w.Body)
	}
	m := csrfRE.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatal("request page has no csrf field")
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == csrfCookie {
			return c, m[1]
		}
	}
	t.Fatal("request page set no csrf cookie")
	return nil, ""
}

// postRequest sends the request form from remote.
func (e *env) postRequest(t *testing.T, remote string, vals url.Values, cookie *http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/request", strings.NewReader(vals.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.RemoteAddr = remote
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return e.do(r)
}

func requestValues(token, name, contact, message string) url.Values {
	return url.Values{"csrf": {token}, "name": {name}, "contact": {contact}, "message": {message}, "website": {""}}
}

const remoteA, remoteB = "203.0.113.5:5000", "203.0.113.9:5000"

func TestRequestPageOff(t *testing.T) {
	e := newEnv(t, nil)
	if w := e.get("/request"); w.Code != http.StatusNotFound {
		t.Errorf("GET /request without requests: %d", w.Code)
	}
	if w := e.postRequest(t, remoteA, requestValues("x", "Anna", "", "hi"), nil); w.Code != http.StatusNotFound {
		t.Errorf("POST /request without requests: %d", w.Code)
	}
	if w := e.get("/r/" + strings.Repeat("a", 42)); w.Code != http.StatusNotFound {
		t.Errorf("GET /r/ without requests: %d", w.Code)
	}
	e, _ = newRequestEnv(t, func(c *Config) { c.RequestForm = false })
	if w := e.get("/request"); w.Code != http.StatusNotFound {
		t.Errorf("GET /request with the form off: %d", w.Code)
	}
}

// TestRequestSubmitted: the form, sent, becomes a request whose fields are
// plain lines, and the browser is sent to its status page, which waits.
func TestRequestSubmitted(t *testing.T) {
	e, reqs := newRequestEnv(t)
	w := e.get("/request")
	body := w.Body.String()
	for _, want := range []string{`name="name"`, `name="contact"`, `<textarea id="message"`, `maxlength="64"`, `maxlength="500"`,
		`class="hp" aria-hidden="true"`, `name="website"`, `tabindex="-1"`, `action="/request"`,
		"Ask for an account on durare.test"} {
		if !strings.Contains(body, want) {
			t.Errorf("request page lacks %q", want)
		}
	}
	cookie, token := e.requestForm(t, remoteA)
	w = e.postRequest(t, remoteA, requestValues(token, " <b>Anna</b>\u202e\n", "xmpp:anna@example.org", "I know\r\nBob\u0007"), cookie)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("POST /request = %d\n%s", w.Code, w.Body)
	}
	loc := w.Header().Get("Location")
	if !strings.HasPrefix(loc, "/r/request000000001") {
		t.Fatalf("redirected to %q", loc)
	}
	if got := reqs.sent(); len(got) != 1 || got[0] != (invites.NewRequest{Name: "<b>Anna</b>", Contact: "xmpp:anna@example.org", Message: "I know Bob"}) {
		t.Errorf("submitted %+v", got)
	}
	w = e.get(loc)
	body = w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, English.StatusWaitingTitle) {
		t.Fatalf("status page %d\n%s", w.Code, body)
	}
	if strings.Contains(body, "<b>Anna") || !strings.Contains(body, "Thank you, &lt;b&gt;Anna&lt;/b&gt;.") {
		t.Errorf("the name is not shown escaped:\n%s", body)
	}
	for _, want := range []string{"https://invites.durare.test" + loc, "Sunday 8 March 2026, 12:00 UTC", English.StatusBookmarkTitle} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("status page headers %v", w.Header())
	}
}

// TestRequestFormErrors: fields are checked, a forged or stale form is
// refused, and neither counts against the hourly limit.
func TestRequestFormErrors(t *testing.T) {
	e, reqs := newRequestEnv(t, func(c *Config) { c.RequestsPerHour = 1 })
	cookie, token := e.requestForm(t, remoteA)
	tests := []struct {
		name          string
		vals          url.Values
		cookie        *http.Cookie
		code          int
		want          string
		keepsTheField string
	}{
		{"no name", requestValues(token, " \n", "", "hi"), cookie, 422, English.ErrRequestName, ""},
		{"long name", requestValues(token, strings.Repeat("n", 65), "", "hi"), cookie, 422, "at most 64 characters", ""},
		{"no message", requestValues(token, "Anna", "", "\u202e"), cookie, 422, English.ErrRequestMessage, ""},
		{"long message", requestValues(token, "Anna", "", strings.Repeat("ü", 501)), cookie, 422, "at most 500 characters", ""},
		{"contact a URL", requestValues(token, "Anna", "https://evil.example", "hi"), cookie, 422, English.ErrRequestContact, `value="https://evil.example"`},
		{"no cookie", requestValues(token, "Anna", "", "hi"), nil, 403, English.ErrFormExpired, `value="Anna"`},
		{"forged token", requestValues("AAAAAAAAAAA.forged", "Anna", "", "hi"), cookie, 403, English.ErrFormExpired, ""},
	}
	for _, tt := range tests {
		w := e.postRequest(t, remoteA, tt.vals, tt.cookie)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) || !strings.Contains(w.Body.String(), tt.keepsTheField) {
			t.Errorf("%s: %d, want %d with %q and %q\n%s", tt.name, w.Code, tt.code, tt.want, tt.keepsTheField, w.Body)
		}
	}
	if len(reqs.sent()) != 0 {
		t.Fatalf("refused forms were submitted: %+v", reqs.sent())
	}
	// An invite's form token does not pass for the request form.
	ic, itoken := e.form(t, idPending)
	if w := e.postRequest(t, remoteA, requestValues(itoken, "Anna", "", "hi"), ic); w.Code != http.StatusForbidden {
		t.Errorf("an invite's token on the request form: %d", w.Code)
	}
	// The one request an hour allowed is still there.
	if w := e.postRequest(t, remoteA, requestValues(token, "Anna", "", "hi"), cookie); w.Code != http.StatusSeeOther {
		t.Errorf("first real request after corrections: %d\n%s", w.Code, w.Body)
	}
}

// TestRequestPerAddressLimit: one address gets its hourly requests and
// then a 429; another address is not affected; the next hour it may again.
func TestRequestPerAddressLimit(t *testing.T) {
	e, reqs := newRequestEnv(t)
	cookie, token := e.requestForm(t, remoteA)
	for i := range DefaultRequestsPerHour {
		if w := e.postRequest(t, remoteA, requestValues(token, fmt.Sprint("Anna ", i), "", "hi"), cookie); w.Code != http.StatusSeeOther {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := e.postRequest(t, remoteA, requestValues(token, "Anna again", "", "hi"), cookie)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), English.ErrRequestTooMany) {
		t.Fatalf("over the limit: %d %v", w.Code, w.Header())
	}
	if w := e.postRequest(t, remoteB, requestValues(token, "Ben", "", "hi"), cookie); w.Code != http.StatusSeeOther {
		t.Errorf("another address: %d", w.Code)
	}
	if n := len(reqs.sent()); n != DefaultRequestsPerHour+1 {
		t.Errorf("%d requests submitted", n)
	}
	if got := counterValue(t, e.metrics, "invitebot_account_requests_refused_total", map[string]string{"limit": "per_address"}); got != 1 {
		t.Errorf("per_address refusals counted %v", got)
	}
	e.clock.Add(time.Hour)
	cookie, token = e.requestForm(t, remoteA)
	if w := e.postRequest(t, remoteA, requestValues(token, "Anna later", "", "hi"), cookie); w.Code != http.StatusSeeOther {
		t.Errorf("the next hour: %d", w.Code)
	}
}

// TestRequestHoneypot: a filled honeypot looks like success to the robot,
// stores nothing and is counted.
func TestRequestHoneypot(t *testing.T) {
	e, reqs := newRequestEnv(t)
	cookie, token := e.requestForm(t, remoteA)
	vals := requestValues(token, "Bot", "", "buy things")
	vals.Set("website", "https://spam.example")
	w := e.postRequest(t, remoteA, vals, cookie)
	loc := w.Header().Get("Location")
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/r/") || len(loc) != len("/r/")+42 {
		t.Fatalf("honeypot: %d to %q", w.Code, loc)
	}
	if len(reqs.sent()) != 0 {
		t.Errorf("a robot's request was submitted: %+v", reqs.sent())
	}
	if w := e.get(loc); w.Code != http.StatusNotFound {
		t.Errorf("the decoy status page: %d", w.Code)
	}
	if got := counterValue(t, e.metrics, "invitebot_account_requests_refused_total", map[string]string{"limit": "honeypot"}); got != 1 {
		t.Errorf("honeypot refusals counted %v", got)
	}
}

// TestRequestClosed: full or paused, the page says requests are closed
// for now (without the admin's pause reason), and a form sent meanwhile
// is refused the same way and counted.
func TestRequestClosed(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		text  string
		limit string
	}{
		{"full", invites.ErrRequestsFull, English.RequestClosedFull, "max_open"},
		{"paused", &invites.PausedError{Reason: "internal: spam wave from 10.0.0.0/8"}, English.RequestClosedPaused, "paused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, reqs := newRequestEnv(t)
			cookie, token := e.requestForm(t, remoteA)
			reqs.intake, reqs.submitErr = tt.err, tt.err
			w := e.get("/request")
			if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), English.RequestClosedTitle) ||
				!strings.Contains(w.Body.String(), tt.text) || strings.Contains(w.Body.String(), "spam wave") {
				t.Errorf("GET /request: %d\n%s", w.Code, w.Body)
			}
			w = e.postRequest(t, remoteA, requestValues(token, "Anna", "", "hi"), cookie)
			if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), tt.text) {
				t.Errorf("POST /request: %d\n%s", w.Code, w.Body)
			}
			if got := counterValue(t, e.metrics, "invitebot_account_requests_refused_total", map[string]string{"limit": tt.limit}); got != 1 {
				t.Errorf("%s refusals counted %v", tt.limit, got)
			}
		})
	}
}

// TestStatusPage: each state of a request as its requester sees it.
func TestStatusPage(t *testing.T) {
	e, reqs := newRequestEnv(t)
	key, err := reqs.SubmitRequest(context.Background(), invites.NewRequest{Name: "Anna", Message: "hi"})
	if err != nil {
		t.Fatal(err)
	}

	reqs.set(key, func(r *invites.Request) {
		r.State, r.AnsweredBy, r.Reason = invites.RequestDenied, "admin@durare.test", "<i>we</i> do not know you"
	})
	w := e.get("/r/" + key)
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, English.StatusDeniedTitle) ||
		!strings.Contains(body, "The reason given: &lt;i&gt;we&lt;/i&gt; do not know you") || strings.Contains(body, "admin@durare.test") {
		t.Errorf("declined: %d\n%s", w.Code, body)
	}

	reqs.set(key, func(r *invites.Request) { r.State, r.Reason = invites.RequestOpen, "" })
	e.clock.Add(8 * 24 * time.Hour) // lapsed, not yet swept
	w = e.get("/r/" + key)
	body = w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, English.StatusExpiredTitle) || !strings.Contains(body, `href="/request"`) {
		t.Errorf("lapsed: %d\n%s", w.Code, body)
	}
	e.clock.Add(-8 * 24 * time.Hour)

	// Approved: the invitation itself, whose form posts to the invite.
	reqs.set(key, func(r *invites.Request) { r.State, r.Invite = invites.RequestApproved, idPending })
	w = e.get("/r/" + key)
	body = w.Body.String()
	for _, want := range []string{English.StatusApproved, "carol@elsewhere.test invited you to durare.test", `id="open-in-app"`,
		`action="/i/` + idPending + `#register"`, `src="/i/` + idPending + `/qr.png"`} {
		if !strings.Contains(body, want) {
			t.Errorf("approved status page lacks %q", want)
		}
	}
	if w.Code != http.StatusOK || w.Header().Get("Link") == "" {
		t.Errorf("approved: %d %v", w.Code, w.Header())
	}
	// The form, sent from the status page, registers with that invite.
	m := csrfRE.FindStringSubmatch(body)
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == csrfCookie {
			cookie = c
		}
	}
	if m == nil || cookie == nil {
		t.Fatal("no form token or cookie on the approved status page")
	}
	w = e.do(postForm(idPending, formValues(m[1], "anna", testPass, testPass), cookie))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "anna@durare.test") {
		t.Fatalf("registering from the status page: %d\n%s", w.Code, w.Body)
	}
	// Used now: the status page says the account exists.
	w = e.get("/r/" + key)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), English.StatusCreatedTitle) {
		t.Errorf("approved and used: %d\n%s", w.Code, w.Body)
	}
	// Cancelled: the status page hands over to the invite's own page.
	e.inv.invites[idPending] = invites.Invite{ID: idPending, URI: uriOf(idPending), State: invites.StateCancelled}
	w = e.get("/r/" + key)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/i/"+idPending {
		t.Errorf("approved and cancelled: %d to %q", w.Code, w.Header().Get("Location"))
	}

	for _, bad := range []string{key[:16], key + "x", strings.Repeat("a", 42)} {
		if w := e.get("/r/" + bad); w.Code != http.StatusNotFound {
			t.Errorf("GET /r/%s: %d", bad, w.Code)
		}
	}
	reqs.mu.Lock()
	delete(reqs.byKey, key)
	reqs.mu.Unlock()
	if w := e.get("/r/" + key); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), English.StatusNotFoundTitle) {
		t.Errorf("unknown key: %d", w.Code)
	}
}

func TestStatusPageStoreError(t *testing.T) {
	e, reqs := newRequestEnv(t)
	key, _ := reqs.SubmitRequest(context.Background(), invites.NewRequest{Name: "Anna", Message: "hi"})
	reqs.set(key, func(r *invites.Request) { r.State, r.Invite = invites.RequestApproved, idUnknown })
	if w := e.get("/r/" + key); w.Code != http.StatusInternalServerError {
		t.Errorf("approved request without its invite: %d", w.Code)
	}
	reqs.submitErr = errors.New("disk on fire")
	cookie, token := e.requestForm(t, remoteA)
	if w := e.postRequest(t, remoteA, requestValues(token, "Anna", "", "hi"), cookie); w.Code != http.StatusInternalServerError {
		t.Errorf("submit failing: %d", w.Code)
	}
}

// TestRequestPagesInGerman: the request page and its closed state speak
// the reader's language.
func TestRequestPagesInGerman(t *testing.T) {
	e, reqs := newRequestEnv(t)
	r := httptest.NewRequest(http.MethodGet, "/request", nil)
	r.Header.Set("Accept-Language", "de-DE,de;q=0.9")
	w := e.do(r)
	if !strings.Contains(w.Body.String(), "Ein Konto auf durare.test erbitten") || w.Header().Get("Content-Language") != "de" {
		t.Errorf("German request page:\n%s", w.Body)
	}
	reqs.intake = invites.ErrRequestsFull
	w = e.do(r)
	if !strings.Contains(w.Body.String(), "Anfragen sind gerade geschlossen") {
		t.Errorf("German closed page:\n%s", w.Body)
	}
}

func TestRequestMetricsObserve(t *testing.T) {
	m := NewMetrics(nil)
	var o invites.RequestObserver = m
	o.RequestReceived()
	o.RequestReceived()
	o.RequestApproved()
	o.RequestDenied()
	o.RequestExpired()
	for event, want := range map[string]float64{"received": 2, "approved": 1, "denied": 1, "expired": 1} {
		if got := counterValue(t, m, "invitebot_account_requests_total", map[string]string{"event": event}); got != want {
			t.Errorf("%s = %v, want %v", event, got, want)
		}
	}
}

// TestStatusPageAfterRegistration: the status page of an approved request
// whose invitation created the account says that the account exists, and
// which, in any browser (the one that registered and others); it does not
// send the requester to "the person who invited you".
func TestStatusPageAfterRegistration(t *testing.T) {
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			e, reqs := newRequestEnv(t)
			key, err := reqs.SubmitRequest(context.Background(), invites.NewRequest{Name: "Anna", Message: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			reqs.set(key, func(r *invites.Request) { r.State, r.Invite = invites.RequestApproved, idPending })
			var text *Text
			for _, l := range languages {
				if l.Lang == lang {
					text = l
				}
			}
			registered, other := e.serve(t), e.serve(t)
			registered.lang, other.lang = lang, lang
			_, body := registered.get("/r/" + key)
			if resp, body := registered.post("/i/"+idPending, formValues(registered.token(body), "anna", testPass, testPass)); resp.StatusCode != http.StatusOK {
				t.Fatalf("registering: %d\n%s", resp.StatusCode, body)
			}
			for name, v := range map[string]*visitor{"the browser that registered": registered, "another browser": other} {
				resp, body := v.get("/r/" + key)
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, text.StatusCreatedTitle) ||
					!strings.Contains(body, "anna@"+testDomain) || strings.Contains(body, text.AskInviterAgain) {
					t.Errorf("%s: %d %s, want the account named as created\n%s", name, resp.StatusCode, resp.Header.Get("Location"), body)
				}
			}

			// Should the store not name the account, the page still says
			// one was created.
			e.inv.mu.Lock()
			inv := e.inv.invites[idPending]
			inv.UsedBy = ""
			e.inv.invites[idPending] = inv
			e.inv.mu.Unlock()
			if resp, body := other.get("/r/" + key); resp.StatusCode != http.StatusOK || !strings.Contains(body, text.StatusCreatedAnon) {
				t.Errorf("without the account's name: %d\n%s", resp.StatusCode, body)
			}
		})
	}
}
