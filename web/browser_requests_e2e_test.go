package web_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
	"durare.org/invitebot/web"
)

// TestBrowserAccountRequest is a stranger's whole path on a phone, in a
// real Chromium against a real Prosody: the request page, the status page
// that waits, an approval, the same page become the invitation, the
// account created from it, and a real login with that account. The pages
// must fit a phone's width without scrolling sideways.
func TestBrowserAccountRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test needs a full run")
	}
	exe := chromium(t)
	srv := prosodytest.Start(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()

	l := startLive(t, ctx, srv, log, func(o *invites.Options) { o.Requests = invites.RequestOptions{Enabled: true} })
	st, link, svc := l.st, l.link, l.svc
	const admin = liveAdmin
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	publicURL := "http://" + ln.Addr().String()
	h := web.New(web.Config{PublicURL: publicURL, Domain: srv.Domain, Log: log.With(slog.String("room", "web")),
		Requests: svc, RequestForm: true}, svc, health{link, st}, web.NewMetrics(link.Reconnects))
	ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	ts.Start()
	t.Cleanup(ts.Close)

	b := browser(t, ctx, exe)
	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser, %s: %v", step, err)
		}
	}
	text := func(step string, id chromedp.ID) string {
		t.Helper()
		v, err := chromedp.Run(b, chromedp.Text(id))
		must(step, err)
		return v
	}
	fits := func(page string) {
		t.Helper()
		// Against the layout viewport: a mobile browser zooms out to
		// show a page that is too wide, and innerWidth grows with it.
		ok, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= document.documentElement.clientWidth`))
		must("measure "+page, err)
		if !ok {
			t.Errorf("the %s scrolls sideways on a phone", page)
		}
	}
	// A phone: 360 CSS pixels wide, touch, scaled like one.
	must("phone viewport", chromedp.Do(b, chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(3), chromedp.EmulateMobile)))

	must("ask", chromedp.Do(b,
		chromedp.Navigate(publicURL+"/request"),
		chromedp.WaitVisible(chromedp.ID("name")),
	))
	fits("request page")
	must("fill in and send", chromedp.Do(b,
		chromedp.SendKeys(chromedp.ID("name"), "Anna"),
		chromedp.SendKeys(chromedp.ID("message"), "Dora from the climbing club told me to ask."),
		chromedp.Click(chromedp.CSS(`#request button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("status-title")),
	))
	if got := text("read status", chromedp.ID("status-title")); got != web.English.StatusWaitingTitle {
		t.Fatalf("after sending: %q, want %q", got, web.English.StatusWaitingTitle)
	}
	here, err := chromedp.Run(b, chromedp.Location())
	must("read location", err)
	if got := text("read the address to keep", chromedp.ID("status-url")); got != here {
		t.Errorf("the page shows %q to keep, but is at %q", got, here)
	}
	fits("waiting status page")

	adminActor, err := svc.Actor(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	open, err := svc.Requests(ctx, adminActor)
	if err != nil || len(open) != 1 || open[0].Name != "Anna" {
		t.Fatalf("open requests %+v, %v", open, err)
	}
	if _, _, err := svc.ApproveRequest(ctx, adminActor, open[0].ID); err != nil {
		t.Fatalf("approve: %v", err)
	}

	// The bookmarked page, opened again, is the invitation.
	must("come back", chromedp.Do(b,
		chromedp.Navigate(here),
		chromedp.WaitVisible(chromedp.ID("open-in-app")),
	))
	if got := text("read notice", chromedp.ID("notice")); got != web.English.StatusApproved {
		t.Errorf("notice %q", got)
	}
	qrWidth, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelector(".qr img").naturalWidth`))
	must("inspect QR image", err)
	if qrWidth == 0 {
		t.Error("QR image did not load")
	}
	fits("invitation")

	const user, pass = "anna", "a fine long password"
	must("register", chromedp.Do(b,
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.SendKeys(chromedp.ID("password2"), pass),
		chromedp.Click(chromedp.CSS(`#register button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("success")),
	))
	want := jid.MustParse(user + "@" + srv.Domain)
	if got := text("read new address", chromedp.ID("new-jid")); got != want.String() {
		t.Fatalf("success page shows %q, want %q", got, want)
	}
	prosodytest.Login(t, srv, want, pass)

	// Recorded as the approver's invite, answering the request, used by
	// the new account.
	invs, err := st.InvitesByInviter(ctx, admin)
	if err != nil || len(invs) != 1 {
		t.Fatalf("approver's invites %+v, %v", invs, err)
	}
	if inv := invs[0]; inv.Request != open[0].ID || inv.State != store.StateUsed || inv.UsedBy != want.String() {
		t.Errorf("invite %+v", inv)
	}
}
