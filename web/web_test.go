package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
)

const (
	testDomain  = "durare.test"
	testInviter = "carol@elsewhere.test"
	testPass    = "correct horse battery"
)

// testNow is the fake clock's start; invites expire a week later.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeInvites is an in-memory Invites. RegisterAccount fails with regErr
// when set, and otherwise marks the invite used the way the service does.
type fakeInvites struct {
	mu        sync.Mutex
	invites   map[string]invites.Invite
	lookupErr error
	regErr    error
	calls     []regCall
}

type regCall struct{ id, username, password string }

func (f *fakeInvites) Lookup(_ context.Context, id string) (invites.Invite, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookupErr != nil {
		return invites.Invite{}, f.lookupErr
	}
	inv, ok := f.invites[id]
	if !ok {
		return invites.Invite{}, invites.ErrNoSuchInvite
	}
	return inv, nil
}

func (f *fakeInvites) RegisterAccount(_ context.Context, id, username, password string) (jid.JID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, regCall{id, username, password})
	if f.regErr != nil {
		return jid.JID{}, f.regErr
	}
	inv := f.invites[id]
	j, err := jid.New(username, inv.Domain, "")
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %v", invites.ErrUsernameRefused, err)
	}
	inv.State, inv.UsedBy = invites.StateUsed, j.String()
	f.invites[id] = inv
	return j, nil
}

func (f *fakeInvites) registrations() []regCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]regCall(nil), f.calls...)
}

// fakeHealth is a Health with settable answers.
type fakeHealth struct {
	up         bool
	minterDown bool
	pingErr    error
}

func (h fakeHealth) LinkUp() bool                    { return h.up }
func (h fakeHealth) MinterUp() bool                  { return !h.minterDown }
func (h fakeHealth) PingStore(context.Context) error { return h.pingErr }

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Invite ids of the fixture, one per state. Valid ids are 16 base32 chars.
const (
	idPending   = "pendingaaaaaaaaa"
	idUsed      = "usedaaaaaaaaaaaa"
	idCancelled = "cancelledaaaaaaa"
	idExpired   = "expiredaaaaaaaaa"
	idLapsed    = "lapsedaaaaaaaaaa" // pending, but past its expiry
	idUnknown   = "unknownaaaaaaaaa"
	idOther     = "otheraaaaaaaaaaa" // a second pending invite
)

func tokenOf(id string) string { return "tok-" + id + "-SECRET" }
func uriOf(id string) string {
	return "xmpp:" + testDomain + "?register;preauth=" + tokenOf(id)
}

func fixture() *fakeInvites {
	mk := func(id string, st invites.State, expires time.Time) invites.Invite {
		return invites.Invite{ID: id, URI: uriOf(id), Domain: testDomain,
			Inviter: testInviter, Created: testNow.Add(-time.Hour), Expires: expires, State: st}
	}
	week := testNow.Add(7 * 24 * time.Hour)
	f := &fakeInvites{invites: map[string]invites.Invite{}}
	for _, inv := range []invites.Invite{
		mk(idPending, invites.StatePending, week),
		mk(idUsed, invites.StateUsed, week),
		mk(idCancelled, invites.StateCancelled, week),
		mk(idExpired, invites.StateExpired, testNow.Add(-time.Minute)),
		mk(idLapsed, invites.StatePending, testNow.Add(-time.Second)),
		mk(idOther, invites.StatePending, week),
	} {
		f.invites[inv.ID] = inv
	}
	return f
}

// env is one handler under test with its fakes and captured logs.
type env struct {
	h       http.Handler
	inv     *fakeInvites
	clock   *clock
	metrics *Metrics
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T, health Health, mut ...func(*Config)) *env {
	t.Helper()
	e := &env{inv: fixture(), clock: &clock{now: testNow}, logs: &syncBuffer{}}
	if health == nil {
		health = fakeHealth{up: true}
	}
	var reconnects uint64 = 3
	e.metrics = NewMetrics(func() uint64 { return reconnects })
	log := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), e.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{PublicURL: "https://invites.durare.test", Domain: testDomain, Log: log, Now: e.clock.Now}
	for _, m := range mut {
		m(&cfg)
	}
	e.h = New(cfg, e.inv, health, e.metrics)
	return e
}

func (e *env) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	if r.RemoteAddr == "" || r.RemoteAddr == "192.0.2.1:1234" {
		r.RemoteAddr = "198.51.100.7:40000"
	}
	e.h.ServeHTTP(w, r)
	// The pages mark addresses up for line breaking; the tests look for
	// them as a reader sees them (TestAddressesBreak checks the markup).
	b := addrBlock.ReplaceAll(w.Body.Bytes(), []byte("$1"))
	w.Body = bytes.NewBuffer(addrMarkup.ReplaceAll(b, nil))
	return w
}

func (e *env) get(path string) *httptest.ResponseRecorder {
	return e.do(httptest.NewRequest(http.MethodGet, path, nil))
}

var (
	addrBlock  = regexp.MustCompile(`<span class="addr">(.*?)</span>`)
	addrMarkup = regexp.MustCompile(`</?bdi>|<wbr>`)
)

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// form fetches the landing page of id like a browser and returns the CSRF
// cookie and token its form carries.
func (e *env) form(t *testing.T, id string) (*http.Cookie, string) {
	t.Helper()
	w := e.get("/i/" + id)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /i/%s = %d, want 200", id, w.Code)
	}
	m := csrfRE.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatal("landing page has no csrf field")
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == csrfCookie {
			return c, m[1]
		}
	}
	t.Fatal("landing page set no csrf cookie")
	return nil, ""
}

func postForm(id string, vals url.Values, cookie *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/i/"+id, strings.NewReader(vals.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return r
}

func formValues(token, user, pass, pass2 string) url.Values {
	return url.Values{"csrf": {token}, "username": {user}, "password": {pass}, "password2": {pass2}}
}

func TestLandingStatuses(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		lookupErr error
		want      int
		wantText  string
	}{
		{"pending", "/i/" + idPending, nil, http.StatusOK, "carol@elsewhere.test invited you to durare.test"},
		{"used", "/i/" + idUsed, nil, http.StatusGone, English.GoneTitle},
		{"cancelled", "/i/" + idCancelled, nil, http.StatusGone, English.GoneTitle},
		{"expired", "/i/" + idExpired, nil, http.StatusGone, English.GoneTitle},
		{"pending past expiry", "/i/" + idLapsed, nil, http.StatusGone, English.GoneTitle},
		{"unknown", "/i/" + idUnknown, nil, http.StatusNotFound, English.NotFoundTitle},
		{"malformed id", "/i/NOT-AN-ID", nil, http.StatusNotFound, English.NotFoundTitle},
		{"too long id", "/i/" + idPending + "a", nil, http.StatusNotFound, English.NotFoundTitle},
		{"no id", "/i/", nil, http.StatusNotFound, English.NotFoundTitle},
		{"root", "/", nil, http.StatusNotFound, English.NotFoundTitle},
		{"store broken", "/i/" + idPending, errors.New("disk on fire"), http.StatusInternalServerError, English.InternalTitle},
		{"qr png pending", "/i/" + idPending + "/qr.png", nil, http.StatusOK, "\x89PNG"},
		{"qr svg pending", "/i/" + idPending + "/qr.svg", nil, http.StatusOK, "<svg"},
		{"qr png used", "/i/" + idUsed + "/qr.png", nil, http.StatusGone, English.GoneTitle},
		{"qr svg lapsed", "/i/" + idLapsed + "/qr.svg", nil, http.StatusGone, English.GoneTitle},
		{"qr unknown", "/i/" + idUnknown + "/qr.png", nil, http.StatusNotFound, English.NotFoundTitle},
		{"other file under invite", "/i/" + idPending + "/secret", nil, http.StatusNotFound, English.NotFoundTitle},
		{"stylesheet", "/static/style.css", nil, http.StatusOK, "font"},
		{"no directory listing", "/static/", nil, http.StatusNotFound, English.NotFoundTitle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.inv.lookupErr = tt.lookupErr
			w := e.get(tt.path)
			if w.Code != tt.want {
				t.Fatalf("GET %s = %d, want %d\n%s", tt.path, w.Code, tt.want, w.Body)
			}
			body := w.Body.String()
			if !strings.Contains(body, tt.wantText) {
				t.Errorf("GET %s: body lacks %q", tt.path, tt.wantText)
			}
			// Pages about unusable invites must not leak any token.
			if w.Code != http.StatusOK && strings.Contains(body, "SECRET") {
				t.Errorf("GET %s: %d page contains a token", tt.path, w.Code)
			}
			if w.Code == http.StatusOK && strings.HasPrefix(tt.path, "/i/") &&
				w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("GET %s: Cache-Control = %q, want no-store", tt.path, w.Header().Get("Cache-Control"))
			}
		})
	}
}

func TestLandingContent(t *testing.T) {
	e := newEnv(t, nil)
	w := e.get("/i/" + idPending)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	if got, want := w.Header().Get("Link"), "<"+uriOf(idPending)+`>; rel="alternate"`; got != want {
		t.Errorf("Link = %q, want %q", got, want)
	}
	// The URI goes into an href, where html/template would have replaced an
	// unknown scheme with #ZgotmplZ.
	wantHref := `href="` + strings.ReplaceAll(uriOf(idPending), "&", "&amp;") + `"`
	for _, want := range []string{
		wantHref,
		`src="/i/` + idPending + `/qr.png"`,
		"Sunday 8 March 2026, 12:00 UTC", // testNow + 7 days
		"Conversations", "Monocles", "Monal", "Siskin", "Dino", "Gajim",
		`name="username"`, `name="password"`, `name="password2"`, `method="post"`,
		`<html lang="en">`, `name="viewport"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
	for _, unwanted := range []string{"ZgotmplZ", "<script", tokenOf(idOther), idOther} {
		if strings.Contains(body, unwanted) {
			t.Errorf("landing page contains %q", unwanted)
		}
	}
}

func TestLandingEscapesInviter(t *testing.T) {
	e := newEnv(t, nil)
	inv := e.inv.invites[idPending]
	inv.Inviter = `<b>mallory</b>@evil.example`
	e.inv.invites[idPending] = inv
	body := e.get("/i/" + idPending).Body.String()
	if strings.Contains(body, "<b>mallory") || !strings.Contains(body, "&lt;b&gt;mallory") {
		t.Error("inviter not HTML-escaped on the landing page")
	}
}

func TestLandingRejectsNonXMPPURI(t *testing.T) {
	e := newEnv(t, nil)
	inv := e.inv.invites[idPending]
	inv.URI = "javascript:alert(1)"
	e.inv.invites[idPending] = inv
	if w := e.get("/i/" + idPending); w.Code != http.StatusInternalServerError {
		t.Errorf("invite with a non-xmpp URI: status %d, want 500", w.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/i/" + idPending, "/i/" + idPending + "/qr.png", "/i/" + idUsed, "/healthz", "/nope"} {
		w := e.get(path)
		for header, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"X-Frame-Options":        "DENY",
			"Referrer-Policy":        "no-referrer",
		} {
			if got := w.Header().Get(header); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, header, got, want)
			}
		}
		csp := w.Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if got := w.Header().Get("Strict-Transport-Security"); got == "" {
			t.Errorf("GET %s: no HSTS although the public URL is https", path)
		}
	}
	// Plain-http deployments (tests, a LAN) must not get HSTS or Secure cookies.
	e = newEnv(t, nil, func(c *Config) { c.PublicURL = "http://127.0.0.1:8080" })
	w := e.get("/i/" + idPending)
	if w.Header().Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent for an http public URL")
	}
	for _, c := range w.Result().Cookies() {
		if c.Secure {
			t.Error("Secure cookie for an http public URL")
		}
	}
}

func TestCSRFCookieAttributes(t *testing.T) {
	e := newEnv(t, nil)
	cookie, _ := e.form(t, idPending)
	if !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
		t.Errorf("csrf cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/", cookie)
	}
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name       string
		id         string
		user       string
		pass       string
		pass2      string
		regErr     error
		want       int
		wantText   string
		wantUser   string // username passed to RegisterAccount; "" = not called
		keepsInput bool   // the form comes back with the username filled in
	}{
		{name: "success", id: idPending, user: "alice", pass: testPass, pass2: testPass,
			want: http.StatusOK, wantText: "alice@durare.test", wantUser: "alice"},
		{name: "case folded", id: idPending, user: "Alice", pass: testPass, pass2: testPass,
			want: http.StatusOK, wantText: "alice@durare.test", wantUser: "alice"},
		{name: "whole address typed", id: idPending, user: " bob@durare.test ", pass: testPass, pass2: testPass,
			want: http.StatusOK, wantText: "bob@durare.test", wantUser: "bob"},
		{name: "success page", id: idPending, user: "dave", pass: testPass, pass2: testPass,
			want: http.StatusOK, wantText: English.SuccessTitle, wantUser: "dave"},
		{name: "empty username", id: idPending, user: "  ", pass: testPass, pass2: testPass,
			want: http.StatusUnprocessableEntity, wantText: English.ErrUsernameEmpty},
		{name: "username with space", id: idPending, user: "a b", pass: testPass, pass2: testPass,
			want: http.StatusUnprocessableEntity, wantText: English.ErrUsernameInvalid, keepsInput: true},
		{name: "foreign domain", id: idPending, user: "eve@elsewhere.test", pass: testPass, pass2: testPass,
			want: http.StatusUnprocessableEntity, wantText: English.ErrUsernameInvalid},
		{name: "username too long", id: idPending, user: strings.Repeat("a", maxUsernameLen+1), pass: testPass, pass2: testPass,
			want: http.StatusUnprocessableEntity, wantText: English.ErrUsernameLong},
		{name: "short password", id: idPending, user: "alice", pass: "1234567", pass2: "1234567",
			want: http.StatusUnprocessableEntity, wantText: fmt.Sprintf(English.ErrPasswordShort, MinPasswordLen), keepsInput: true},
		{name: "minimum password", id: idPending, user: "alice", pass: "12345678", pass2: "12345678",
			want: http.StatusOK, wantText: "alice@durare.test", wantUser: "alice"},
		{name: "short in bytes, long enough in characters", id: idPending, user: "alice", pass: "äöüßäöüß", pass2: "äöüßäöüß",
			want: http.StatusOK, wantText: "alice@durare.test", wantUser: "alice"},
		{name: "long password", id: idPending, user: "alice", pass: strings.Repeat("x", maxPasswordLen+1), pass2: strings.Repeat("x", maxPasswordLen+1),
			want: http.StatusUnprocessableEntity, wantText: English.ErrPasswordLong},
		{name: "longest password the server takes", id: idPending, user: "alice", pass: strings.Repeat("x", invites.MaxPasswordBytes), pass2: strings.Repeat("x", invites.MaxPasswordBytes),
			want: http.StatusOK, wantText: "alice@durare.test", wantUser: "alice"},
		{name: "password too long once prepared", id: idPending, user: "alice", pass: strings.Repeat("\u3300", 86), pass2: strings.Repeat("\u3300", 86),
			want: http.StatusUnprocessableEntity, wantText: English.ErrPasswordLong, keepsInput: true},
		{name: "password with a tab", id: idPending, user: "alice", pass: "correct\thorse", pass2: "correct\thorse",
			want: http.StatusUnprocessableEntity, wantText: English.ErrPasswordChars, keepsInput: true},
		{name: "password mixing writing directions", id: idPending, user: "alice", pass: "correct\u0627horse", pass2: "correct\u0627horse",
			want: http.StatusUnprocessableEntity, wantText: English.ErrPasswordChars, keepsInput: true},
		{name: "emoji password", id: idPending, user: "alice", pass: "correct \U0001F600 horse", pass2: "correct \U0001F600 horse",
			want: http.StatusOK, wantText: "alice@durare.test", wantUser: "alice"},
		{name: "service refuses password", id: idPending, user: "alice", pass: testPass, pass2: testPass,
			regErr: fmt.Errorf("register account: %w", invites.ErrPasswordInvalid),
			want:   http.StatusUnprocessableEntity, wantText: English.ErrPasswordChars, wantUser: "alice", keepsInput: true},
		{name: "mismatch", id: idPending, user: "alice", pass: testPass, pass2: testPass + "!",
			want: http.StatusUnprocessableEntity, wantText: English.ErrPasswordMatch, keepsInput: true},
		{name: "taken", id: idPending, user: "alice", pass: testPass, pass2: testPass,
			regErr: fmt.Errorf("register: %w", invites.ErrUsernameTaken),
			want:   http.StatusConflict, wantText: English.ErrUsernameTaken, wantUser: "alice", keepsInput: true},
		{name: "server refuses name", id: idPending, user: "alice", pass: testPass, pass2: testPass,
			regErr: fmt.Errorf("register: %w", invites.ErrUsernameRefused),
			want:   http.StatusUnprocessableEntity, wantText: English.ErrNotAcceptable, wantUser: "alice", keepsInput: true},
		{name: "token used at the server", id: idPending, user: "alice", pass: testPass, pass2: testPass,
			regErr: fmt.Errorf("register: %w", invites.ErrTokenRejected),
			want:   http.StatusGone, wantText: English.TokenUsedBody, wantUser: "alice"},
		{name: "invite no longer pending", id: idPending, user: "alice", pass: testPass, pass2: testPass,
			regErr: invites.ErrNotPending, want: http.StatusGone, wantText: English.GoneTitle, wantUser: "alice"},
		{name: "invite vanished", id: idPending, user: "alice", pass: testPass, pass2: testPass,
			regErr: invites.ErrNoSuchInvite, want: http.StatusNotFound, wantText: English.NotFoundTitle, wantUser: "alice"},
		{name: "registration in progress", id: idPending, user: "alice", pass: testPass, pass2: testPass,
			regErr: invites.ErrRegistrationInProgress, want: http.StatusConflict, wantText: English.ErrInProgress, wantUser: "alice", keepsInput: true},
		{name: "server down", id: idPending, user: "alice", pass: testPass, pass2: testPass,
			regErr: errors.New("register account: ibr: secure connection failed"),
			want:   http.StatusInternalServerError, wantText: English.ErrInternal, wantUser: "alice", keepsInput: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			cookie, token := e.form(t, tt.id)
			e.inv.regErr = tt.regErr
			w := e.do(postForm(tt.id, formValues(token, tt.user, tt.pass, tt.pass2), cookie))
			body := w.Body.String()
			if w.Code != tt.want {
				t.Fatalf("POST = %d, want %d\n%s", w.Code, tt.want, body)
			}
			if !strings.Contains(body, htmlEscape(tt.wantText)) {
				t.Errorf("response lacks %q", tt.wantText)
			}
			calls := e.inv.registrations()
			switch {
			case tt.wantUser == "" && len(calls) > 0:
				t.Errorf("RegisterAccount called (%+v) although the form was invalid", calls)
			case tt.wantUser != "":
				if len(calls) != 1 {
					t.Fatalf("RegisterAccount called %d times, want 1", len(calls))
				}
				if c := calls[0]; c.id != tt.id || c.username != tt.wantUser || c.password != tt.pass {
					t.Errorf("RegisterAccount(%q, %q, pw) want (%q, %q); password passed through: %v",
						c.id, c.username, tt.id, tt.wantUser, c.password == tt.pass)
				}
			}
			if tt.keepsInput && !strings.Contains(body, `value="`+htmlEscape(strings.TrimSpace(tt.user))+`"`) {
				t.Errorf("form does not keep the username %q", tt.user)
			}
			if strings.Contains(body, tt.pass) {
				t.Error("response echoes the password")
			}
			if strings.Contains(e.logs.String(), tt.pass) {
				t.Error("password in the logs")
			}
			if strings.Contains(e.logs.String(), tokenOf(tt.id)) {
				t.Error("token in the logs")
			}
		})
	}
}

// htmlEscape escapes s the way html/template does in text, enough for
// the apostrophes and quotes in the messages.
func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "'", "&#39;", "<", "&lt;", ">", "&gt;", `"`, "&#34;")
	return r.Replace(s)
}

func TestRegisterGoneInvites(t *testing.T) {
	for _, id := range []string{idUsed, idCancelled, idExpired, idLapsed, idUnknown, "bad"} {
		t.Run(id, func(t *testing.T) {
			e := newEnv(t, nil)
			// A token for a valid invite, so only the state can refuse.
			cookie, token := e.form(t, idPending)
			w := e.do(postForm(id, formValues(token, "alice", testPass, testPass), cookie))
			want := http.StatusGone
			if id == idUnknown || id == "bad" {
				want = http.StatusNotFound
			}
			if w.Code != want {
				t.Errorf("POST /i/%s = %d, want %d", id, w.Code, want)
			}
			if n := len(e.inv.registrations()); n != 0 {
				t.Errorf("RegisterAccount called %d times for an unusable invite", n)
			}
		})
	}
}

func TestRegisterTwice(t *testing.T) {
	e := newEnv(t, nil)
	cookie, token := e.form(t, idPending)
	if w := e.do(postForm(idPending, formValues(token, "alice", testPass, testPass), cookie)); w.Code != http.StatusOK {
		t.Fatalf("first registration: %d", w.Code)
	}
	// The fake marked the invite used, as the service does.
	if w := e.do(postForm(idPending, formValues(token, "alice2", testPass, testPass), cookie)); w.Code != http.StatusGone {
		t.Errorf("second registration with the same invite: %d, want 410", w.Code)
	}
	if w := e.get("/i/" + idPending); w.Code != http.StatusGone {
		t.Errorf("landing page after use: %d, want 410", w.Code)
	}
}

func TestRegisterCSRF(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env) *http.Request
	}{
		{"no token", func(t *testing.T, e *env) *http.Request {
			cookie, _ := e.form(t, idPending)
			return postForm(idPending, formValues("", "alice", testPass, testPass), cookie)
		}},
		{"no cookie", func(t *testing.T, e *env) *http.Request {
			_, token := e.form(t, idPending)
			return postForm(idPending, formValues(token, "alice", testPass, testPass), nil)
		}},
		{"cookie of another browser", func(t *testing.T, e *env) *http.Request {
			_, token := e.form(t, idPending)
			other, _ := e.form(t, idPending)
			return postForm(idPending, formValues(token, "alice", testPass, testPass), other)
		}},
		{"token for another invite", func(t *testing.T, e *env) *http.Request {
			cookie, _ := e.form(t, idPending)
			r := e.do(withCookie(httptest.NewRequest(http.MethodGet, "/i/"+idOther, nil), cookie))
			token := csrfRE.FindStringSubmatch(r.Body.String())[1]
			return postForm(idPending, formValues(token, "alice", testPass, testPass), cookie)
		}},
		{"tampered token", func(t *testing.T, e *env) *http.Request {
			cookie, token := e.form(t, idPending)
			return postForm(idPending, formValues(token[:len(token)-2]+"AA", "alice", testPass, testPass), cookie)
		}},
		{"stale form", func(t *testing.T, e *env) *http.Request {
			cookie, token := e.form(t, idPending)
			e.clock.Add(csrfMaxAge + time.Minute)
			return postForm(idPending, formValues(token, "alice", testPass, testPass), cookie)
		}},
		{"key of another process", func(t *testing.T, e *env) *http.Request {
			other := newEnv(t, nil)
			cookie, token := other.form(t, idPending)
			return postForm(idPending, formValues(token, "alice", testPass, testPass), cookie)
		}},
		{"cross-site post", func(t *testing.T, e *env) *http.Request {
			cookie, token := e.form(t, idPending)
			r := postForm(idPending, formValues(token, "alice", testPass, testPass), cookie)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}},
		{"foreign origin, old browser", func(t *testing.T, e *env) *http.Request {
			cookie, token := e.form(t, idPending)
			r := postForm(idPending, formValues(token, "alice", testPass, testPass), cookie)
			r.Header.Del("Sec-Fetch-Site")
			r.Header.Set("Origin", "https://evil.example")
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			w := e.do(tt.setup(t, e))
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403\n%s", w.Code, w.Body)
			}
			if !strings.Contains(w.Body.String(), htmlEscape(English.ErrFormExpired)) {
				t.Error("no explanation on the refused form")
			}
			if n := len(e.inv.registrations()); n != 0 {
				t.Errorf("RegisterAccount called %d times despite CSRF failure", n)
			}
			// The page offers a fresh form that does work.
			token := csrfRE.FindStringSubmatch(w.Body.String())
			if token == nil {
				t.Fatal("refused form has no fresh token")
			}
		})
	}
	t.Run("public origin behind a proxy", func(t *testing.T) {
		e := newEnv(t, nil)
		cookie, token := e.form(t, idPending)
		r := postForm(idPending, formValues(token, "alice", testPass, testPass), cookie)
		r.Header.Del("Sec-Fetch-Site")
		r.Host = "127.0.0.1:8080" // what the proxy forwarded to
		r.Header.Set("Origin", "https://invites.durare.test")
		if w := e.do(r); w.Code != http.StatusOK {
			t.Errorf("status %d, want 200", w.Code)
		}
	})
}

func withCookie(r *http.Request, c *http.Cookie) *http.Request {
	r.AddCookie(c)
	return r
}

func TestRegisterRateLimit(t *testing.T) {
	e := newEnv(t, nil)
	cookie, token := e.form(t, idPending)
	attempt := func(addr string, xff ...string) *httptest.ResponseRecorder {
		// Mismatched passwords: a cheap attempt that leaves the invite usable.
		r := postForm(idPending, formValues(token, "alice", testPass, "other password"), cookie)
		r.RemoteAddr = addr
		for _, v := range xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		return e.do(r)
	}
	for i := range rateAttempts {
		if w := attempt("203.0.113.5:1000"); w.Code != http.StatusUnprocessableEntity {
			t.Fatalf("attempt %d: %d, want 422", i+1, w.Code)
		}
	}
	w := attempt("203.0.113.5:2000")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("attempt %d: %d, want 429", rateAttempts+1, w.Code)
	}
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	if !strings.Contains(w.Body.String(), English.ErrTooMany) {
		t.Error("429 page does not explain")
	}
	// Without TrustProxy a forged X-Forwarded-For does not buy new attempts.
	if w := attempt("203.0.113.5:3000", "192.0.2.99"); w.Code != http.StatusTooManyRequests {
		t.Errorf("forged X-Forwarded-For: %d, want 429", w.Code)
	}
	if w := attempt("203.0.113.6:1000"); w.Code != http.StatusUnprocessableEntity {
		t.Errorf("another address: %d, want 422", w.Code)
	}
	e.clock.Add(rateWindow)
	if w := attempt("203.0.113.5:1000"); w.Code == http.StatusTooManyRequests {
		t.Error("still limited after the window")
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		xff    []string
		trust  bool
		want   string
	}{
		{"ipv4", "203.0.113.5:1234", nil, false, "203.0.113.5"},
		{"ipv4-mapped", "[::ffff:203.0.113.5]:1234", nil, false, "203.0.113.5"},
		{"ipv6 grouped by /64", "[2001:db8:1:2:aaaa::1]:1234", nil, false, "2001:db8:1:2::/64"},
		{"xff ignored without trust", "127.0.0.1:1234", []string{"203.0.113.9"}, false, "127.0.0.1"},
		{"xff last hop with trust", "127.0.0.1:1234", []string{"192.0.2.1, 203.0.113.9"}, true, "203.0.113.9"},
		{"xff last header with trust", "127.0.0.1:1234", []string{"192.0.2.1", "203.0.113.9"}, true, "203.0.113.9"},
		{"trust without header", "127.0.0.1:1234", nil, true, "127.0.0.1"},
		{"garbage", "@unix", nil, false, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientKey(r, tt.trust); got != tt.want {
				t.Errorf("clientKey = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLimiterMemoryBound(t *testing.T) {
	c := &clock{now: testNow}
	l := newLimiter(c.Now)
	for i := range rateMaxAddrs + 500 {
		if ok, _ := l.allow(fmt.Sprintf("k%d", i)); !ok {
			t.Fatalf("first attempt of key %d refused", i)
		}
	}
	if n := l.len(); n > rateMaxAddrs {
		t.Errorf("limiter holds %d keys, bound is %d", n, rateMaxAddrs)
	}
	// Once windows end, they make room instead of live ones being dropped.
	c.Add(rateWindow)
	l.allow("fresh")
	if n := l.len(); n != 1 {
		t.Errorf("after the window: %d keys, want 1", n)
	}
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name   string
		health fakeHealth
		want   int
		body   string
	}{
		{"all well", fakeHealth{up: true}, http.StatusOK, "ok"},
		{"link down", fakeHealth{up: false}, http.StatusServiceUnavailable, "component link down"},
		{"store broken", fakeHealth{up: true, pingErr: errors.New("timeout")}, http.StatusServiceUnavailable, "database not answering"},
		{"both", fakeHealth{pingErr: errors.New("timeout")}, http.StatusServiceUnavailable, "component link down"},
		{"minter down", fakeHealth{up: true, minterDown: true}, http.StatusServiceUnavailable, "minter session down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.health)
			w := e.get("/healthz")
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("GET /healthz = %d %q, want %d containing %q", w.Code, w.Body, tt.want, tt.body)
			}
			if strings.Contains(w.Body.String(), "timeout") {
				t.Error("healthz exposes error details")
			}
		})
	}
}

// counterValue reads one counter (or counter func) from the registry;
// labels must match exactly.
func counterValue(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, mt := range f.GetMetric() {
			if len(mt.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range mt.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metric
				}
			}
			return mt.GetCounter().GetValue()
		}
	}
	return 0
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	m := e.metrics
	for range 2 {
		m.InviteCreated()
	}
	m.InviteDenied()
	for range 3 {
		m.InviteUsed()
	}
	m.Command("invite")
	m.Command("invite")
	m.Command("help")
	e.get("/i/" + idPending)
	e.get("/i/" + idPending)
	e.get("/i/" + idUsed)
	e.get("/i/" + idPending + "/qr.png")
	e.get("/favicon.ico")

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"invitebot_invites_created_total", nil, 2},
		{"invitebot_invites_denied_total", nil, 1},
		{"invitebot_invites_used_total", nil, 3},
		{"invitebot_commands_total", map[string]string{"command": "invite"}, 2},
		{"invitebot_commands_total", map[string]string{"command": "help"}, 1},
		{"invitebot_link_reconnects_total", nil, 3},
		{"invitebot_http_requests_total", map[string]string{"route": "GET /i/{id}", "code": "200"}, 2},
		{"invitebot_http_requests_total", map[string]string{"route": "GET /i/{id}", "code": "410"}, 1},
		{"invitebot_http_requests_total", map[string]string{"route": "GET /i/{id}/qr.png", "code": "200"}, 1},
		{"invitebot_http_requests_total", map[string]string{"route": "/", "code": "404"}, 1},
	}
	for _, tt := range tests {
		if got := counterValue(t, m, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	w := e.get("/metrics")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`invitebot_http_requests_total{code="200",route="GET /i/{id}"} 2`,
		"invitebot_invites_created_total 2",
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, idPending) {
		t.Error("/metrics exposes an invite id")
	}
}

func TestMetricsCommandLabelsBounded(t *testing.T) {
	m := NewMetrics(nil)
	for i := range maxCommandLabels + 10 {
		m.Command(fmt.Sprintf("cmd%d", i))
	}
	if got := counterValue(t, m, "invitebot_commands_total", map[string]string{"command": otherCommand}); got != 10 {
		t.Errorf("overflow counted %v times as %q, want 10", got, otherCommand)
	}
	var nilMetrics *Metrics // front ends without a web server pass nil
	nilMetrics.InviteCreated()
	nilMetrics.Command("x")
}

func TestURLs(t *testing.T) {
	tests := []struct {
		public, id, landing, qr string
	}{
		{"https://invites.example.org", "abcdefghijklmnop",
			"https://invites.example.org/i/abcdefghijklmnop", "https://invites.example.org/i/abcdefghijklmnop/qr.png"},
		{"https://invites.example.org/", "abcdefghijklmnop",
			"https://invites.example.org/i/abcdefghijklmnop", "https://invites.example.org/i/abcdefghijklmnop/qr.png"},
		{"https://example.org/join/", "abcdefghijklmnop",
			"https://example.org/join/i/abcdefghijklmnop", "https://example.org/join/i/abcdefghijklmnop/qr.png"},
	}
	for _, tt := range tests {
		if got := LandingURL(tt.public, tt.id); got != tt.landing {
			t.Errorf("LandingURL(%q) = %q, want %q", tt.public, got, tt.landing)
		}
		if got := QRURL(tt.public, tt.id); got != tt.qr {
			t.Errorf("QRURL(%q) = %q, want %q", tt.public, got, tt.qr)
		}
	}
}

func TestPathPrefix(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.PublicURL = "https://example.org/join/" })
	body := e.get("/i/" + idPending).Body.String()
	for _, want := range []string{`href="/join/static/style.css"`, `src="/join/i/` + idPending + `/qr.png"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page under a path prefix lacks %q", want)
		}
	}
	cookie, _ := e.form(t, idPending)
	if cookie.Path != "/join/" {
		t.Errorf("csrf cookie path %q under a path prefix, want /join/", cookie.Path)
	}
}

func TestRegisterOversizedForm(t *testing.T) {
	e := newEnv(t, nil)
	cookie, token := e.form(t, idPending)
	vals := formValues(token, "alice", testPass, testPass)
	vals.Set("padding", strings.Repeat("x", maxFormBytes))
	if w := e.do(postForm(idPending, vals, cookie)); w.Code != http.StatusBadRequest {
		t.Errorf("oversized form: %d, want 400", w.Code)
	}
	if n := len(e.inv.registrations()); n != 0 {
		t.Errorf("RegisterAccount called %d times for an oversized form", n)
	}
}

// TestTextComplete guards translations: an empty string would render as a
// blank heading or button.
func TestTextComplete(t *testing.T) {
	v := reflect.ValueOf(English)
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.String && f.String() == "" {
			t.Errorf("English.%s is empty", v.Type().Field(i).Name)
		}
	}
	if len(English.Platforms) != 3 {
		t.Errorf("%d platforms, want Android, iOS and desktop", len(English.Platforms))
	}
	for _, p := range English.Platforms {
		for _, c := range p.Clients {
			if c.Name == "" || !strings.HasPrefix(c.URL, "https://") || c.Login == "" {
				t.Errorf("client %+v incomplete", c)
			}
		}
	}
}
