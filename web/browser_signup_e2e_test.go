package web_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/mailtest"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/mail"
	"durare.org/invitebot/store"
	"durare.org/invitebot/web"
)

// TestBrowserSignupConfirmedByMail is a stranger on a phone with nobody in
// the loop (requests.verify: email, requests.auto_approve: 10), in a real
// Chromium against a real Prosody and a real mail server: the request page
// with a mail address, the page that waits for the code, the link from
// the mail and its button, the same page become the invitation, the
// account created from it and a real login with it.
func TestBrowserSignupConfirmedByMail(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test needs a full run")
	}
	exe := chromium(t)
	srv := prosodytest.Start(t)
	mta := mailtest.Start(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	publicURL := "http://" + ln.Addr().String()
	sender, err := mail.New(mail.Config{SMTP: mta.Addr, From: "invites@" + srv.Domain, Username: mta.Username,
		Password: mta.Password, ServerName: "localhost", CAFile: mta.CAFile, Domain: srv.Domain}, log)
	if err != nil {
		t.Fatal(err)
	}
	l := startLive(t, ctx, srv, log, func(o *invites.Options) {
		o.Requests = invites.RequestOptions{Enabled: true}
		o.Signup = invites.SignupOptions{Verify: invites.VerifyEmail, Confirmer: sender, AutoApprovePerDay: 10,
			ConfirmLink: func(key, code string) string { return web.ConfirmURL(publicURL, key, code) }}
	})
	st, link, svc := l.st, l.link, l.svc
	h := web.New(web.Config{PublicURL: publicURL, Domain: srv.Domain, Log: log.With(slog.String("room", "web")),
		Requests: svc, RequestForm: true, Signup: svc}, svc, health{link, st}, web.NewMetrics(link.Reconnects))
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
		ok, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= document.documentElement.clientWidth`))
		must("measure "+page, err)
		if !ok {
			t.Errorf("the %s scrolls sideways on a phone", page)
		}
	}
	must("phone viewport", chromedp.Do(b, chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(3), chromedp.EmulateMobile)))

	must("ask", chromedp.Do(b,
		chromedp.Navigate(publicURL+"/request"),
		chromedp.WaitVisible(chromedp.ID("email")),
	))
	fits("request page")
	const addr = "frank@example.net"
	must("fill in and send", chromedp.Do(b,
		chromedp.SendKeys(chromedp.ID("name"), "Frank"),
		chromedp.SendKeys(chromedp.ID("email"), addr),
		chromedp.SendKeys(chromedp.ID("message"), "My sister is here."),
		chromedp.Click(chromedp.CSS(`#request button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("code")),
	))
	if got := text("read the waiting page", chromedp.ID("confirm-title")); got != web.English.ConfirmTitle {
		t.Fatalf("after sending: %q, want %q", got, web.English.ConfirmTitle)
	}
	fits("page that waits for the code")

	// The person opens the link in the mail on the same phone.
	m := mta.Wait(t, addr)
	confirmLink := regexp.MustCompile(`http://\S+/confirm/[0-9]{6}`).FindString(m.Body)
	if confirmLink == "" {
		t.Fatalf("the mail holds no link:\n%s", m.Body)
	}
	must("open the link", chromedp.Do(b,
		chromedp.Navigate(confirmLink),
		chromedp.WaitVisible(chromedp.ID("confirm-button")),
	))
	fits("confirmation page")
	must("confirm", chromedp.Do(b,
		chromedp.Click(chromedp.ID("confirm-button")),
		chromedp.WaitVisible(chromedp.ID("open-in-app")),
	))
	if got := text("read notice", chromedp.ID("notice")); got != web.English.StatusApproved {
		t.Errorf("notice %q", got)
	}
	fits("invitation")

	const user, pass = "frank", "a fine long password"
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

	// Nobody approved it: the automatic approval's invite made it.
	invs, err := st.InvitesByInviter(ctx, invites.SignupActor)
	if err != nil || len(invs) != 1 {
		t.Fatalf("automatic invites %+v, %v", invs, err)
	}
	if inv := invs[0]; inv.State != store.StateUsed || inv.UsedBy != want.String() {
		t.Errorf("invite %+v", inv)
	}
}
