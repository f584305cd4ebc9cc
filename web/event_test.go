package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// Event link ids of the fixture. Valid ids are 16 base32 chars.
const (
	evOpen    = "eventopenaaaaaaa"
	evUsedUp  = "eventusedupaaaaa"
	evExpired = "eventexpiredaaaa"
	evClosed  = "eventclosedaaaaa"
	evUnknown = "eventunknownaaaa"
)

// fakeEvents is an in-memory Events whose claims mint into the fake
// invites, so the landing page they lead to exists. lookupErr and claimErr
// force answers; paused stops every link.
type fakeEvents struct {
	mu        sync.Mutex
	inv       *fakeInvites
	now       func() time.Time
	links     map[string]invites.EventLink
	lookupErr error
	claimErr  error
	paused    bool
	claims    int
}

func newFakeEvents(inv *fakeInvites, now func() time.Time) *fakeEvents {
	mk := func(id string, uses, used int, expires time.Time) invites.EventLink {
		return invites.EventLink{ID: id, Creator: testInviter, Domain: testDomain, Created: testNow.Add(-time.Hour),
			Expires: expires, MaxUses: uses, Uses: used}
	}
	f := &fakeEvents{inv: inv, now: now, links: map[string]invites.EventLink{}}
	closed := mk(evClosed, 3, 1, testNow.Add(time.Hour))
	closed.Closed = testNow.Add(-time.Minute)
	for _, ev := range []invites.EventLink{
		mk(evOpen, 3, 0, testNow.Add(3*time.Hour)),
		mk(evUsedUp, 3, 3, testNow.Add(3*time.Hour)),
		mk(evExpired, 3, 1, testNow.Add(-time.Second)),
		closed,
	} {
		f.links[ev.ID] = ev
	}
	return f
}

func (f *fakeEvents) LookupEvent(_ context.Context, id string) (invites.EventLink, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookupErr != nil {
		return invites.EventLink{}, f.lookupErr
	}
	ev, ok := f.links[id]
	if !ok {
		return invites.EventLink{}, invites.ErrNoSuchEvent
	}
	return ev, f.available(ev)
}

// available is the service's rule, over the fake's state.
func (f *fakeEvents) available(ev invites.EventLink) error {
	switch ev.State(f.now()) {
	case invites.EventClosed:
		return invites.ErrEventClosed
	case invites.EventExpired:
		return invites.ErrEventExpired
	case invites.EventUsedUp:
		return invites.ErrEventUsedUp
	}
	if f.paused {
		return &invites.PausedError{Reason: "secret admin reason"}
	}
	return nil
}

func (f *fakeEvents) ClaimEventInvite(_ context.Context, id string) (invites.Invite, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.claimErr != nil {
		return invites.Invite{}, f.claimErr
	}
	ev, ok := f.links[id]
	if !ok {
		return invites.Invite{}, invites.ErrNoSuchEvent
	}
	if err := f.available(ev); err != nil {
		return invites.Invite{}, err
	}
	ev.Uses++
	f.links[id] = ev
	f.claims++
	// Ids must be base32 (no 0 or 1) to be valid.
	inv := invites.Invite{ID: fmt.Sprintf("claimedaaaaaaaa%c", 'a'+f.claims), Domain: testDomain, Inviter: testInviter,
		Created: f.now(), Expires: f.now().Add(7 * 24 * time.Hour), State: invites.StatePending, Event: id}
	inv.URI = uriOf(inv.ID)
	f.inv.mu.Lock()
	f.inv.invites[inv.ID] = inv
	f.inv.mu.Unlock()
	return inv, nil
}

func (f *fakeEvents) claimCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.claims
}

// newEventEnv is newEnv with event pages.
func newEventEnv(t *testing.T, mut ...func(*Config)) (*env, *fakeEvents) {
	t.Helper()
	var ev *fakeEvents
	e := newEnv(t, nil, append([]func(*Config){func(c *Config) {
		// newEnv made the fakes before calling this.
		ev = newFakeEvents(nil, c.Now)
		c.Events = ev
	}}, mut...)...)
	ev.inv = e.inv
	return e, ev
}

// eventForm fetches an event page like a browser and returns the CSRF
// cookie and token its form carries.
func (e *env) eventForm(t *testing.T, id string) (*http.Cookie, string) {
	t.Helper()
	w := e.get("/e/" + id)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /e/%s = %d, want 200\n%s", id, w.Code, w.Body)
	}
	m := csrfRE.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatal("event page has no csrf field")
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == csrfCookie {
			return c, m[1]
		}
	}
	t.Fatal("event page set no csrf cookie")
	return nil, ""
}

func postEvent(id, token string, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/e/"+id, strings.NewReader(url.Values{"csrf": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

func TestEventPageStatuses(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		paused    bool
		lookupErr error
		want      int
		wantText  string
	}{
		{"open", "/e/" + evOpen, false, nil, http.StatusOK, "carol@elsewhere.test invites you to durare.test"},
		{"used up", "/e/" + evUsedUp, false, nil, http.StatusGone, English.EventUsedUpTitle},
		{"expired", "/e/" + evExpired, false, nil, http.StatusGone, English.EventExpiredTitle},
		{"closed", "/e/" + evClosed, false, nil, http.StatusGone, English.EventClosedTitle},
		{"paused", "/e/" + evOpen, true, nil, http.StatusServiceUnavailable, English.PausedTitle},
		{"closed while paused", "/e/" + evClosed, true, nil, http.StatusGone, English.EventClosedTitle},
		{"unknown", "/e/" + evUnknown, false, nil, http.StatusNotFound, English.EventNotFoundTitle},
		{"malformed id", "/e/NOT-AN-ID", false, nil, http.StatusNotFound, English.EventNotFoundTitle},
		{"store broken", "/e/" + evOpen, false, errors.New("disk on fire"), http.StatusInternalServerError, English.InternalTitle},
		{"qr png", "/e/" + evOpen + "/qr.png", false, nil, http.StatusOK, "\x89PNG"},
		{"qr svg of a used up link", "/e/" + evUsedUp + "/qr.svg", false, nil, http.StatusOK, "<svg"},
		{"qr unknown", "/e/" + evUnknown + "/qr.png", false, nil, http.StatusNotFound, English.EventNotFoundTitle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ev := newEventEnv(t)
			ev.paused, ev.lookupErr = tt.paused, tt.lookupErr
			w := e.get(tt.path)
			if w.Code != tt.want {
				t.Fatalf("GET %s = %d, want %d\n%s", tt.path, w.Code, tt.want, w.Body)
			}
			body := w.Body.String()
			if !strings.Contains(body, tt.wantText) {
				t.Errorf("GET %s: body lacks %q", tt.path, tt.wantText)
			}
			if strings.Contains(body, "secret admin reason") {
				t.Errorf("GET %s shows the admin's pause reason to the public", tt.path)
			}
		})
	}
	t.Run("without event pages", func(t *testing.T) {
		e := newEnv(t, nil)
		if w := e.get("/e/" + evOpen); w.Code != http.StatusNotFound {
			t.Errorf("GET /e/ without Events: %d, want 404", w.Code)
		}
	})
}

func TestEventPageContent(t *testing.T) {
	e, _ := newEventEnv(t)
	w := e.get("/e/" + evOpen)
	body := w.Body.String()
	for _, want := range []string{
		"3 invitations left", "The link works for 3 more hours, until Sunday 1 March 2026, 15:00 UTC.",
		English.EventIntro, English.EventSubmit, `method="post"`, `name="csrf"`, `<title>Join durare.test</title>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("event page lacks %q", want)
		}
	}
	for _, unwanted := range []string{"<script", "preauth", "ZgotmplZ"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("event page contains %q", unwanted)
		}
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
	}
	cookie, _ := e.eventForm(t, evOpen)
	if cookie.Path != "/" || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Errorf("csrf cookie of the event page: %+v", cookie)
	}

	r := httptest.NewRequest(http.MethodGet, "/e/"+evOpen, nil)
	r.Header.Set("Accept-Language", "de")
	de := e.do(r).Body.String()
	for _, want := range []string{"carol@elsewhere.test lädt dich zu durare.test ein", "noch 3 Einladungen übrig", "Meine Einladung holen"} {
		if !strings.Contains(de, want) {
			t.Errorf("German event page lacks %q", want)
		}
	}
}

// TestEventClaim: pressing the button mints an invitation and sends the
// browser to it; the browser's cookie then leads back to the same one, on
// reload and on a second press, without taking another.
func TestEventClaim(t *testing.T) {
	e, ev := newEventEnv(t)
	cookie, token := e.eventForm(t, evOpen)
	w := e.do(postEvent(evOpen, token, cookie))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("claim: %d, want 303\n%s", w.Code, w.Body)
	}
	loc := w.Header().Get("Location")
	if loc != "/i/claimedaaaaaaaab" {
		t.Fatalf("Location %q, want the new invitation's page", loc)
	}
	var visitor *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == eventCookie {
			visitor = c
		}
	}
	if visitor == nil || visitor.Path != "/e/"+evOpen || !visitor.HttpOnly || !visitor.Secure || visitor.SameSite != http.SameSiteLaxMode {
		t.Fatalf("visitor cookie %+v", visitor)
	}
	if w := e.get(loc); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "invited you to durare.test") {
		t.Errorf("the invitation's page: %d", w.Code)
	}

	// Back to the link, and pressing again: the same invitation.
	for _, r := range []*http.Request{
		withCookie(httptest.NewRequest(http.MethodGet, "/e/"+evOpen, nil), visitor),
		postEvent(evOpen, token, cookie, visitor),
	} {
		w := e.do(r)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != loc {
			t.Errorf("%s with the visitor cookie: %d to %q, want 303 to %s", r.Method, w.Code, w.Header().Get("Location"), loc)
		}
	}
	if n := ev.claimCount(); n != 1 {
		t.Errorf("%d invitations minted, want 1", n)
	}

	// Another browser gets its own.
	other, otherToken := e.eventForm(t, evOpen)
	w = e.do(postEvent(evOpen, otherToken, other))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") == loc {
		t.Errorf("second visitor: %d to %q", w.Code, w.Header().Get("Location"))
	}

	// A cookie naming another invitation, or signed by another process,
	// leads nowhere: the page is shown. One made for another link does
	// not open this one's invitation either.
	forged := *visitor
	forged.Value = "claimedaaaaaaaac" + visitor.Value[len("claimedaaaaaaaab"):]
	foreign := *visitor
	foreignEnv, _ := newEventEnv(t)
	fc, ft := foreignEnv.eventForm(t, evOpen)
	for _, c := range foreignEnv.do(postEvent(evOpen, ft, fc)).Result().Cookies() {
		if c.Name == eventCookie {
			foreign.Value = c.Value
		}
	}
	for name, c := range map[string]*http.Cookie{"forged": &forged, "another process's": &foreign} {
		if w := e.do(withCookie(httptest.NewRequest(http.MethodGet, "/e/"+evOpen, nil), c)); w.Code != http.StatusOK {
			t.Errorf("%s visitor cookie: %d, want the page", name, w.Code)
		}
	}
	if w := e.do(withCookie(httptest.NewRequest(http.MethodGet, "/e/"+evUsedUp, nil), visitor)); w.Code != http.StatusGone {
		t.Errorf("another link's visitor cookie: %d, want that link's 410", w.Code)
	}
}

// TestEventClaimRefusals: what a visitor sees when the press gets no
// invitation.
func TestEventClaimRefusals(t *testing.T) {
	tests := []struct {
		name     string
		claimErr error
		want     int
		wantText string
	}{
		{"used up meanwhile", invites.ErrEventUsedUp, http.StatusGone, English.EventUsedUpTitle},
		{"closed meanwhile", invites.ErrEventClosed, http.StatusGone, English.EventClosedTitle},
		{"paused meanwhile", &invites.PausedError{Reason: "secret admin reason"}, http.StatusServiceUnavailable, English.PausedTitle},
		{"daily limit", &invites.QuotaError{Refusal: policy.Refusal{Limit: policy.LimitGlobal, Max: 100, Count: 100, Next: testNow.Add(time.Hour)}},
			http.StatusServiceUnavailable, English.DailyLimitTitle},
		{"server down", errors.New("link down"), http.StatusInternalServerError, htmlEscape(English.ErrInternal)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ev := newEventEnv(t)
			cookie, token := e.eventForm(t, evOpen)
			ev.claimErr = tt.claimErr
			w := e.do(postEvent(evOpen, token, cookie))
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.wantText) {
				t.Fatalf("claim: %d, want %d with %q\n%s", w.Code, tt.want, tt.wantText, w.Body)
			}
			if strings.Contains(w.Body.String(), "secret admin reason") {
				t.Error("the admin's pause reason is shown to the public")
			}
			if tt.name == "daily limit" && w.Header().Get("Retry-After") != "3601" {
				t.Errorf("Retry-After %q, want 3601", w.Header().Get("Retry-After"))
			}
			if tt.want == http.StatusInternalServerError && csrfRE.FindStringSubmatch(w.Body.String()) == nil {
				t.Error("after a failure of ours the page offers no button to try again")
			}
		})
	}
}

func TestEventClaimCSRF(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env) *http.Request
	}{
		{"no token", func(t *testing.T, e *env) *http.Request {
			cookie, _ := e.eventForm(t, evOpen)
			return postEvent(evOpen, "", cookie)
		}},
		{"no cookie", func(t *testing.T, e *env) *http.Request {
			_, token := e.eventForm(t, evOpen)
			return postEvent(evOpen, token)
		}},
		{"token of the invite page with the same id", func(t *testing.T, e *env) *http.Request {
			cookie, _ := e.eventForm(t, evOpen)
			e.inv.mu.Lock()
			e.inv.invites[evOpen] = invites.Invite{ID: evOpen, URI: uriOf(evOpen), Domain: testDomain, State: invites.StatePending, Expires: testNow.Add(time.Hour)}
			e.inv.mu.Unlock()
			w := e.do(withCookie(httptest.NewRequest(http.MethodGet, "/i/"+evOpen, nil), cookie))
			token := csrfRE.FindStringSubmatch(w.Body.String())[1]
			return postEvent(evOpen, token, cookie)
		}},
		{"cross-site post", func(t *testing.T, e *env) *http.Request {
			cookie, token := e.eventForm(t, evOpen)
			r := postEvent(evOpen, token, cookie)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ev := newEventEnv(t)
			w := e.do(tt.setup(t, e))
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), htmlEscape(English.ErrFormExpired)) {
				t.Fatalf("status %d, want 403 with an explanation\n%s", w.Code, w.Body)
			}
			if ev.claimCount() != 0 {
				t.Error("an invitation was minted despite the CSRF failure")
			}
			if csrfRE.FindStringSubmatch(w.Body.String()) == nil {
				t.Error("refused form has no fresh token")
			}
		})
	}
}

// TestEventClaimRateLimit: presses are limited per address, far above
// what a room behind one address needs.
func TestEventClaimRateLimit(t *testing.T) {
	e, _ := newEventEnv(t)
	cookie, _ := e.eventForm(t, evOpen)
	attempt := func(addr string) int {
		r := postEvent(evOpen, "bad token", cookie) // cheap: refused by the CSRF check
		r.RemoteAddr = addr
		return e.do(r).Code
	}
	for i := range eventAttempts {
		if code := attempt("203.0.113.5:1000"); code != http.StatusForbidden {
			t.Fatalf("attempt %d: %d, want 403", i+1, code)
		}
	}
	if code := attempt("203.0.113.5:2000"); code != http.StatusTooManyRequests {
		t.Fatalf("attempt %d: %d, want 429", eventAttempts+1, code)
	}
	if code := attempt("203.0.113.6:1000"); code != http.StatusForbidden {
		t.Errorf("another address: %d, want 403", code)
	}
	// The event limit is its own: the registration form still works.
	if w := e.get("/i/" + idPending); w.Code != http.StatusOK {
		t.Errorf("landing page after the event limit: %d", w.Code)
	}
}

func TestEventURLs(t *testing.T) {
	if got := EventURL("https://example.org/join/", "abcdefghijklmnop"); got != "https://example.org/join/e/abcdefghijklmnop" {
		t.Errorf("EventURL = %q", got)
	}
	if got := EventQRURL("https://invites.example.org", "abcdefghijklmnop"); got != "https://invites.example.org/e/abcdefghijklmnop/qr.png" {
		t.Errorf("EventQRURL = %q", got)
	}
	e, _ := newEventEnv(t, func(c *Config) { c.PublicURL = "https://example.org/join/" })
	cookie, token := e.eventForm(t, evOpen)
	if cookie.Path != "/join/" {
		t.Errorf("csrf cookie path under a prefix: %q", cookie.Path)
	}
	if loc := e.do(postEvent(evOpen, token, cookie)).Header().Get("Location"); !strings.HasPrefix(loc, "/join/i/") {
		t.Errorf("redirect under a prefix: %q", loc)
	}
}

func TestEventMetrics(t *testing.T) {
	m := NewMetrics(nil)
	m.EventUse(invites.EventUseMinted)
	m.EventUse(invites.EventUseMinted)
	m.EventUse(invites.EventUseUsedUp)
	for outcome, want := range map[string]float64{"minted": 2, "used_up": 1, "paused": 0, "quota": 0} {
		if got := counterValue(t, m, "invitebot_event_uses_total", map[string]string{"outcome": outcome}); got != want {
			t.Errorf("event uses %s = %v, want %v", outcome, got, want)
		}
	}
}

// TestEventPageQR: the event page shows the QR code of its own address, to
// put on a projector, and neither the page nor the image hands out an
// invitation: only a visitor's press does. Over a real HTTP server.
func TestEventPageQR(t *testing.T) {
	e, ev := newEventEnv(t)
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	for range 3 { // a projector's browser reloads
		resp, body := get("/e/" + evOpen)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /e/%s = %d", evOpen, resp.StatusCode)
		}
		for _, want := range []string{`<img src="/e/` + evOpen + `/qr.png"`, `alt="` + English.EventQRAlt + `"`, English.EventQRTitle} {
			if !strings.Contains(string(body), want) {
				t.Errorf("event page lacks %q", want)
			}
		}
		resp, img := get("/e/" + evOpen + "/qr.png")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET qr.png = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		decoded, err := png.Decode(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		// The content, read from the pixels as drawn: gozxing's finder
		// search (decodeQR) trips over this one code's pattern at this
		// size, which decodes at other sizes and is a valid code.
		if got, want := decodePureQR(t, decoded), EventURL("https://invites.durare.test", evOpen); got != want {
			t.Errorf("the QR code says %q, want the page's address %q", got, want)
		}
	}
	if n := ev.claimCount(); n != 0 {
		t.Errorf("showing the page and its QR code handed out %d invitations, want none", n)
	}
	if left := ev.links[evOpen].Left(); left != 3 {
		t.Errorf("%d uses left after showing the page, want 3", left)
	}
}

// TestEventPageQROnAPhone: in Chromium on a phone the event page's QR code
// loads, the page fits the screen, and loading both spends no use; on a
// wide screen the code stands large beside the button.
func TestEventPageQROnAPhone(t *testing.T) {
	e, ev := newEventEnv(t)
	b, base := e.phoneTab(t)
	if err := chromedp.Do(b, chromedp.Navigate(base+"/e/"+evOpen), chromedp.WaitVisible(chromedp.ID("claim-button"))); err != nil {
		t.Fatal(err)
	}
	// naturalWidth stays 0 for an image that did not load.
	w, err := chromedp.Run(b, chromedp.Evaluate[int](`(document.querySelector(".qr img") || {}).naturalWidth || 0`))
	if err != nil {
		t.Fatal(err)
	}
	if w == 0 {
		t.Error("the event page shows no QR code")
	}
	fitsPhone(t, b, "event page")

	// On a wide screen (a projector) the code stands beside the button,
	// large, and the headline keeps the width of the page.
	if err := chromedp.Do(b, chromedp.EmulateViewport(1280, 800), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("claim-button"))); err != nil {
		t.Fatal(err)
	}
	box, err := chromedp.Run(b, chromedp.Evaluate[map[string]float64](`(() => {
		const r = s => document.querySelector(s).getBoundingClientRect();
		const img = r(".qr img"), btn = r("#claim-button"), h1 = r("h1"), main = r("main");
		return {img: img.width, imgLeft: img.left, imgTop: img.top, btnRight: btn.right, btnBottom: btn.bottom,
			h1: h1.width, main: main.width};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if box["img"] < 240 || box["imgLeft"] < box["btnRight"] || box["imgTop"] > box["btnBottom"] || box["h1"] < box["main"]/2 {
		t.Errorf("on a wide screen the QR code is not large beside the button under a full-width headline: %v", box)
	}
	if n := ev.claimCount(); n != 0 {
		t.Errorf("opening the page handed out %d invitations, want none", n)
	}
}
