package web_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
	"durare.org/invitebot/web"
)

// TestBrowserPasswordRules: the landing page in a real Chromium refuses
// passwords the real server would refuse (a tab, in German; one byte past
// what the server's SASLprep takes, in English) with a message that says
// why, before anything reaches the server, and the invite stays usable;
// the longest password the page takes, the server takes too, and it logs
// in. Run against Prosody 13.0.8, whose limit on stanzas before login is
// 10,000 bytes, it also shows that the longest password fits.
func TestBrowserPasswordRules(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test needs a full run")
	}
	exe := chromium(t)
	srv := prosodytest.Start(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()

	l := startLive(t, ctx, srv, log, nil)
	actor, err := l.svc.Actor(ctx, liveAdmin)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := l.svc.Create(ctx, actor)
	if err != nil {
		t.Fatalf("create invite: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	publicURL := "http://" + ln.Addr().String()
	h := web.New(web.Config{PublicURL: publicURL, Domain: srv.Domain, Log: log.With(slog.String("room", "web"))},
		l.svc, health{l.link, l.st}, web.NewMetrics(l.link.Reconnects))
	ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	ts.Start()
	t.Cleanup(ts.Close)
	landing := web.LandingURL(publicURL, inv.ID)

	b := browser(t, ctx, exe)
	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser, %s: %v", step, err)
		}
	}
	// submit fills the form and sends it. The values are set rather than
	// typed: a typed tab would move the focus, and maxlength stops typing
	// but not a pasted or scripted value, which the server side must catch.
	submit := func(step, user, pass, waitFor string) {
		t.Helper()
		must(step, chromedp.Do(b,
			chromedp.Navigate(landing),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SetValue(chromedp.ID("username"), user),
			chromedp.SetValue(chromedp.ID("password"), pass),
			chromedp.SetValue(chromedp.ID("password2"), pass),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.ID(waitFor)),
		))
	}
	formError := func(step string) string {
		t.Helper()
		text, err := chromedp.Run(b, chromedp.Text(chromedp.ID("form-error")))
		must(step, err)
		return text
	}

	language := func(lang string) {
		t.Helper()
		if _, err := chromedp.Call(b, network.Enable, network.EnableParams{}); err != nil {
			t.Fatalf("browser, network: %v", err)
		}
		_, err := chromedp.Call(b, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": lang}})
		must("ask for "+lang, err)
	}
	language("de")
	submit("a password with a tab", "newbie", "correct\thorse battery", "form-error")
	if got := formError("read the German error"); !strings.Contains(got, "Das Passwort enthält ein Zeichen, das der Server nicht annimmt") {
		t.Errorf("form error for a tab, in German = %q", got)
	}
	language("en")
	submit("a password one byte too long", "newbie", strings.Repeat("p", invites.MaxPasswordBytes+1), "form-error")
	if got := formError("read the error"); got != web.English.ErrPasswordLong {
		t.Errorf("form error for %d bytes = %q, want %q", invites.MaxPasswordBytes+1, got, web.English.ErrPasswordLong)
	}
	if rec, err := l.st.Invite(ctx, inv.ID); err != nil || rec.State != store.StatePending {
		t.Fatalf("invite after the refused passwords: %+v, %v; want pending", rec, err)
	}
	prosodyLog, err := os.ReadFile(srv.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(prosodyLog), "fails SASLprep"); n > 0 {
		t.Errorf("the server saw %d passwords it refuses", n)
	}

	longest := strings.Repeat("<", invites.MaxPasswordBytes) // 4 bytes each in XML
	submit("the longest password", "newbie", longest, "success")
	account := jid.MustParse("newbie@" + srv.Domain)
	prosodytest.Login(t, srv, account, longest)
}
