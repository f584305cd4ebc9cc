// Command screenshots renders the landing and success pages in headless
// Chromium at desktop and phone widths, the landing page on a phone in
// every other language, and the account request page and its waiting
// status page on a phone, and writes them as PNG files, for the
// documentation. It serves the real web handler with an in-memory invite
// and request, so no XMPP server is needed:
//
//	go run ./web/internal/screenshots -out docs
//
// It is a program rather than a test so that CI never writes into the tree.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/web"
)

// Sample data, chosen to look like a real deployment.
const (
	domain  = "example.org"
	inviter = "carol@other.example"
	// inviteID is a well-formed id (16 base32 characters).
	inviteID = "k7q2m4x3trbw5nfa"
	username = "alex"
	password = "correct horse battery staple"
	// timeout bounds the whole run.
	timeout = 2 * time.Minute
)

// viewport is one screen size the pages are shown at.
type viewport struct {
	name          string
	width, height int64
	scale         float64
	mobile        bool
}

var (
	desktop   = viewport{name: "desktop", width: 1280, height: 800, scale: 1}
	phone     = viewport{name: "phone", width: 390, height: 844, scale: 2, mobile: true}
	viewports = []viewport{desktop, phone}
)

// translations are the languages shot besides English, as Accept-Language
// values; each gives landing-phone-<lang>.png.
var translations = []string{"de"}

func main() {
	out := flag.String("out", "docs", "directory to write the PNG files to")
	exe := flag.String("chromium", "/usr/bin/chromium", "path of the Chromium binary")
	flag.Parse()
	if err := run(*out, *exe); err != nil {
		log.Fatal(err)
	}
}

func run(out, exe string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	publicURL := "http://" + ln.Addr().String()
	inv := &sampleInvites{}
	inv.reset()
	h := web.New(web.Config{PublicURL: publicURL, Domain: domain, Log: slog.Default(),
		Requests: &sampleRequests{}, RequestForm: true}, inv, okHealth{}, web.NewMetrics(nil))
	ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	ts.Start()
	defer ts.Close()

	b, closeBrowser := startBrowser(ctx, exe)
	defer closeBrowser()
	if err := shootInvite(b, inv, web.LandingURL(publicURL, inviteID), out); err != nil {
		return err
	}
	if err := shootRequest(b, publicURL, out); err != nil {
		return err
	}
	return shootTranslations(b, inv, web.LandingURL(publicURL, inviteID), out)
}

// startBrowser starts headless Chromium from exe, with nothing of the
// machine's profile and no traffic of its own to disturb the pages.
func startBrowser(ctx context.Context, exe string) (context.Context, context.CancelFunc) {
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(mustTempDir()),
	)
	b, cancelTab := chromedp.NewContext(actx)
	return b, func() {
		cancelTab()
		cancelAlloc()
	}
}

// shootInvite shoots the landing page and, after registering, the success
// page at each viewport, in English.
func shootInvite(b context.Context, inv *sampleInvites, landing, out string) error {
	if err := chromedp.Do(b, acceptLanguage("en")); err != nil {
		return err
	}
	for _, vp := range viewports {
		inv.reset() // a fresh, pending invite for each size
		if err := chromedp.Do(b, emulate(vp, vp.height), chromedp.Navigate(landing),
			chromedp.WaitVisible(chromedp.ID("open-in-app"))); err != nil {
			return fmt.Errorf("%s landing: %w", vp.name, err)
		}
		if err := shoot(b, vp, filepath.Join(out, "landing-"+vp.name+".png")); err != nil {
			return err
		}
		if err := chromedp.Do(b, emulate(vp, vp.height),
			chromedp.SendKeys(chromedp.ID("username"), username),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.SendKeys(chromedp.ID("password2"), password),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.ID("success"))); err != nil {
			return fmt.Errorf("%s register: %w", vp.name, err)
		}
		if err := shoot(b, vp, filepath.Join(out, "success-"+vp.name+".png")); err != nil {
			return err
		}
	}
	return nil
}

// shootRequest shoots the filled-in request form and, once it is sent,
// the waiting status page, on a phone.
func shootRequest(b context.Context, publicURL, out string) error {
	if err := chromedp.Do(b, emulate(phone, phone.height), chromedp.Navigate(publicURL+"/request"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), requester),
		chromedp.SendKeys(chromedp.ID("message"), requestMessage)); err != nil {
		return fmt.Errorf("request page: %w", err)
	}
	if err := shoot(b, phone, filepath.Join(out, "request-phone.png")); err != nil {
		return err
	}
	if err := chromedp.Do(b, emulate(phone, phone.height), chromedp.Click(chromedp.CSS(`#request button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("status-url"))); err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	return shoot(b, phone, filepath.Join(out, "status-phone.png"))
}

// shootTranslations shoots the landing page on a phone in each of the
// translations.
func shootTranslations(b context.Context, inv *sampleInvites, landing, out string) error {
	for _, lang := range translations {
		inv.reset()
		if err := chromedp.Do(b, acceptLanguage(lang), emulate(phone, phone.height), chromedp.Navigate(landing),
			chromedp.WaitVisible(chromedp.ID("open-in-app"))); err != nil {
			return fmt.Errorf("%s landing: %w", lang, err)
		}
		if err := shoot(b, phone, filepath.Join(out, "landing-phone-"+lang+".png")); err != nil {
			return err
		}
	}
	return nil
}

// acceptLanguage makes the browser ask for lang, as a reader's browser set
// to that language would, whatever the machine's own language is.
func acceptLanguage(lang string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders,
			network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": lang}})
		return err
	})
}

func emulate(vp viewport, height int64) chromedp.Action[chromedp.Void] {
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(vp.scale)}
	if vp.mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	return chromedp.EmulateViewport(vp.width, height, opts...)
}

// shoot captures the whole page: the viewport is stretched to the page's
// height first, because a screenshot shows only what the viewport holds.
func shoot(b context.Context, vp viewport, path string) error {
	h, err := chromedp.Run(b, chromedp.Evaluate[int64](`document.documentElement.scrollHeight`))
	if err != nil {
		return fmt.Errorf("%s: page height: %w", path, err)
	}
	if err := chromedp.Do(b, emulate(vp, max(h, vp.height))); err != nil {
		return err
	}
	png, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("%s: screenshot: %w", path, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", path)
	return nil
}

func mustTempDir() string {
	dir, err := os.MkdirTemp("", "invitebot-screenshots-")
	if err != nil {
		log.Fatal(err)
	}
	return dir
}

// sampleInvites serves one invite and pretends registration succeeds.
type sampleInvites struct {
	mu  sync.Mutex
	inv invites.Invite
}

func (s *sampleInvites) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Hour)
	s.inv = invites.Invite{
		ID: inviteID, Domain: domain, Inviter: inviter,
		URI:     "xmpp:" + domain + "?register;preauth=sampletokenQR42",
		Created: now, Expires: now.Add(7 * 24 * time.Hour), State: invites.StatePending,
	}
}

func (s *sampleInvites) Lookup(_ context.Context, id string) (invites.Invite, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.inv.ID {
		return invites.Invite{}, invites.ErrNoSuchInvite
	}
	return s.inv, nil
}

func (s *sampleInvites) RegisterAccount(_ context.Context, id, user, _ string) (jid.JID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.inv.ID || s.inv.State != invites.StatePending {
		return jid.JID{}, errors.New("sample invite not pending")
	}
	j, err := jid.New(user, domain, "")
	if err != nil {
		return jid.JID{}, err
	}
	s.inv.State, s.inv.UsedBy = invites.StateUsed, j.String()
	return j, nil
}

// Sample account request.
const (
	requester      = "Alex"
	requestMessage = "Carol from the climbing club told me to ask here."
	// requestKey is a well-formed status page key: an id and a secret.
	requestKey = "r5t2k8m4q3wb7nfa" + "s6d4f2g8h3j5k7l2m4n6p3q5r7"
)

// sampleRequests takes any request and shows it waiting.
type sampleRequests struct{}

func (sampleRequests) RequestIntake(context.Context) error { return nil }

func (sampleRequests) SubmitRequest(context.Context, invites.NewRequest) (string, error) {
	return requestKey, nil
}

func (sampleRequests) RequestStatus(_ context.Context, key string) (invites.Request, error) {
	if key != requestKey {
		return invites.Request{}, invites.ErrNoSuchRequest
	}
	now := time.Now().UTC().Truncate(time.Hour)
	return invites.Request{ID: requestKey[:16], Name: requester, Message: requestMessage, Created: now,
		Expires: now.Add(7 * 24 * time.Hour), State: invites.RequestOpen}, nil
}

type okHealth struct{}

func (okHealth) LinkUp() bool                    { return true }
func (okHealth) MinterUp() bool                  { return true }
func (okHealth) PingStore(context.Context) error { return nil }
