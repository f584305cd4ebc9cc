package web_test

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/bot"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/store"
	"durare.org/invitebot/web"
)

// Browser test tunables.
const (
	// browserTimeout bounds the whole browser session: start-up, two
	// registrations (each a c2s connection to Prosody) and the checks.
	browserTimeout = 2 * time.Minute
	// linkUpTimeout bounds waiting for the component link.
	linkUpTimeout = 20 * time.Second
)

// chromium and browser are the package's own browser helpers
// (browser_test.go), shared with these tests.
func chromium(t *testing.T) string { return web.ChromiumForTest(t) }

func browser(t *testing.T, ctx context.Context, exe string) context.Context {
	return web.BrowserForTest(t, ctx, exe)
}

// health is the Health the real program wires: the link and the store.
type health struct {
	link *bot.Link
	st   *store.Store
}

func (h health) LinkUp() bool                        { return h.link.Up() }
func (h health) MinterUp() bool                      { return true } // the component mints here
func (h health) PingStore(ctx context.Context) error { return h.st.Ping(ctx) }

// ignoreStanzas is the component's handler: this test only sends IQs.
func ignoreStanzas(xmlstream.TokenReadEncoder, *xml.StartElement) error { return nil }

// TestBrowserRegistration is the path of a person with only a browser: an
// invite minted by the real server over the component link, its landing
// page in a real Chromium, a taken username first, then registration, the
// success page, a real XMPP login with the new account, and a 410 for the
// spent invite.
func TestBrowserRegistration(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test needs a full run")
	}
	exe := chromium(t)
	srv := prosodytest.Start(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))

	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()

	l := startLive(t, ctx, srv, log, nil)
	st, link, svc := l.st, l.link, l.svc
	const admin = liveAdmin
	actor, err := svc.Actor(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := svc.Create(ctx, actor)
	if err != nil {
		t.Fatalf("create invite: %v", err)
	}

	// Listen first, so the handler knows its public URL before serving.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	publicURL := "http://" + ln.Addr().String()
	metrics := web.NewMetrics(link.Reconnects)
	h := web.New(web.Config{PublicURL: publicURL, Domain: srv.Domain, Log: log.With(slog.String("room", "web"))},
		svc, health{link, st}, metrics)
	ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	ts.Start()
	t.Cleanup(ts.Close)
	landing := web.LandingURL(publicURL, inv.ID)

	taken := srv.AddUser(t, "taken", srv.Domain, "whatever-pass")
	const user, pass = "newbie", "a fine long password"

	b := browser(t, ctx, exe)
	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser, %s: %v", step, err)
		}
	}
	must("open landing page", chromedp.Do(b,
		chromedp.Navigate(landing),
		chromedp.WaitVisible(chromedp.ID("open-in-app")),
	))
	href, err := chromedp.Run(b, chromedp.AttributeValue(chromedp.ID("open-in-app"), "href"))
	must("read app link", err)
	if href.Value != inv.URI {
		t.Errorf("open-in-app href = %q, want %q", href.Value, inv.URI)
	}
	headline, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("h1")))
	must("read headline", err)
	if want := admin + " invited you to " + srv.Domain; headline != want {
		t.Errorf("headline = %q, want %q", headline, want)
	}
	// naturalWidth stays 0 for an image that did not load.
	qrWidth, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelector(".qr img").naturalWidth`))
	must("inspect QR image", err)
	if qrWidth == 0 {
		t.Error("QR image did not load")
	}

	// A taken name first: the server refuses, the token stays valid and the
	// form comes back with an explanation.
	must("submit a taken name", chromedp.Do(b,
		chromedp.SendKeys(chromedp.ID("username"), taken.Localpart()),
		chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.SendKeys(chromedp.ID("password2"), pass),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("form-error")),
	))
	formError, err := chromedp.Run(b, chromedp.Text(chromedp.ID("form-error")))
	must("read form error", err)
	if formError != web.English.ErrUsernameTaken {
		t.Errorf("form error = %q, want %q", formError, web.English.ErrUsernameTaken)
	}

	must("register", chromedp.Do(b,
		chromedp.Clear(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.SendKeys(chromedp.ID("password2"), pass),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("success")),
	))
	newJID, err := chromedp.Run(b, chromedp.Text(chromedp.ID("new-jid")))
	must("read new address", err)
	want := jid.MustParse(user + "@" + srv.Domain)
	if newJID != want.String() {
		t.Fatalf("success page shows %q, want %q", newJID, want)
	}

	// The account really exists on the server, with that password.
	c := prosodytest.Login(t, srv, want, pass)
	if got := c.JID().Bare(); !got.Equal(want) {
		t.Errorf("logged in as %s, want %s", got, want)
	}

	// The invite is spent: recorded as used by the new account, and its
	// page answers 410, except in the browser that used it, which is shown
	// its new address again.
	got, err := st.Invite(ctx, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateUsed || got.UsedBy != want.String() {
		t.Errorf("invite after registration: state %s, used by %q; want used by %s", got.State, got.UsedBy, want)
	}
	resp, err := http.Get(landing)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), web.English.GoneTitle) {
		t.Errorf("GET %s after use = %d, want 410 saying %q", landing, resp.StatusCode, web.English.GoneTitle)
	}
	must("open spent invite", chromedp.Do(b,
		chromedp.Navigate(landing),
		chromedp.WaitVisible(chromedp.ID("success")),
	))
	again, err := chromedp.Run(b, chromedp.Text(chromedp.ID("new-jid")))
	must("read new address again", err)
	if again != want.String() {
		t.Errorf("coming back, the browser that registered is shown %q, want %q", again, want)
	}

	// Health reflects the real link and store.
	resp, err = http.Get(publicURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d with link up and store open", resp.StatusCode)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	testwait.For(t, d, what, cond)
}
