package web_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/web"
)

// TestBrowserEventLinkQR is an event link on a projector and in a visitor's
// hand, in a real Chromium against the real service and Prosody: the page
// shows the QR code of its own address, showing and reloading it (and
// fetching the image) hands out nothing, and only the visitor's press
// takes a use, minting an invitation at the server.
func TestBrowserEventLinkQR(t *testing.T) {
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
	ev, err := svc.CreateEvent(ctx, actor, invites.EventOptions{Uses: 2, Valid: time.Hour})
	if err != nil {
		t.Fatalf("create event link: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	publicURL := "http://" + ln.Addr().String()
	h := web.New(web.Config{PublicURL: publicURL, Domain: srv.Domain, Log: log.With(slog.String("room", "web")),
		Events: svc}, svc, health{link, st}, web.NewMetrics(link.Reconnects))
	ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	ts.Start()
	t.Cleanup(ts.Close)
	page := web.EventURL(publicURL, ev.ID)

	uses := func() int {
		t.Helper()
		got, err := svc.LookupEvent(ctx, ev.ID)
		if err != nil {
			t.Fatalf("look up event link: %v", err)
		}
		return got.Uses
	}
	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser, %s: %v", step, err)
		}
	}

	// The projector: a wide screen, the page shown and reloaded.
	projector := browser(t, ctx, exe)
	must("projector size", chromedp.Do(projector, chromedp.EmulateViewport(1280, 800)))
	for range 2 {
		must("show the page", chromedp.Do(projector, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("event-qr"))))
		qr, err := chromedp.Run(projector, chromedp.Evaluate[int](`document.querySelector("#event-qr img").naturalWidth`))
		must("inspect QR image", err)
		if qr == 0 {
			t.Error("the event page's QR code did not load")
		}
	}
	src, err := chromedp.Run(projector, chromedp.AttributeValue(chromedp.CSS("#event-qr img"), "src"))
	must("read QR address", err)
	if want := "/e/" + ev.ID + "/qr.png"; src.Value != want {
		t.Errorf("QR image at %q, want %q", src.Value, want)
	}
	resp, err := http.Get(web.EventQRURL(publicURL, ev.ID))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("GET the QR code: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if n := uses(); n != 0 {
		t.Fatalf("showing the page and its QR code took %d uses, want none", n)
	}

	// A visitor who scanned it presses the button: that, and only that,
	// takes a use.
	visitor := browser(t, ctx, exe)
	must("open and press", chromedp.Do(visitor,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.ID("claim-button")),
		chromedp.Click(chromedp.ID("claim-button")),
		chromedp.WaitVisible(chromedp.ID("open-in-app")),
	))
	href, err := chromedp.Run(visitor, chromedp.AttributeValue(chromedp.ID("open-in-app"), "href"))
	must("read app link", err)
	if !strings.HasPrefix(href.Value, "xmpp:") {
		t.Errorf("the visitor's invitation links %q", href.Value)
	}
	if n := uses(); n != 1 {
		t.Errorf("after one press the link counts %d uses, want 1", n)
	}
}
