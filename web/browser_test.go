package web

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Headless Chromium for the tests of this package (layout on a phone,
// images that load) and, through the exported names, for the end-to-end
// tests in package web_test.

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// phoneWidth and phoneHeight are a phone's screen in CSS pixels.
const phoneWidth, phoneHeight = 390, 844

// layoutTimeout bounds one browser test against the fakes: start-up, a
// few pages and the checks.
const layoutTimeout = time.Minute

// ChromiumForTest returns the browser's path. A missing browser fails the
// test in CI (a skipped browser test there is a test that never runs);
// go test -short is the explicit way to leave browser tests out.
func ChromiumForTest(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("chromium not found: apt-get install chromium (or run go test -short)")
	return ""
}

// BrowserForTest starts a headless Chromium with a fresh profile and
// returns a chromedp context for one tab; both end in t.Cleanup.
func BrowserForTest(t *testing.T, ctx context.Context, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// phoneTab is a browser tab the size of a phone (390x844 CSS pixels,
// touch, scaled like one) and a real HTTP server for e's handler, whose
// base URL it returns.
func (e *env) phoneTab(t *testing.T) (context.Context, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test needs a full run")
	}
	exe := ChromiumForTest(t)
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithTimeout(context.Background(), layoutTimeout)
	t.Cleanup(cancel)
	b := BrowserForTest(t, ctx, exe)
	if err := chromedp.Do(b, chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateScale(3), chromedp.EmulateMobile)); err != nil {
		t.Fatalf("phone viewport: %v", err)
	}
	return b, ts.URL
}

// fitsPhone fails the test when the page open in b is wider than the
// phone's screen. It measures against the layout viewport: a mobile
// browser zooms out to show a page that is too wide, which makes
// window.innerWidth grow with the page.
func fitsPhone(t *testing.T, b context.Context, page string) {
	t.Helper()
	sizes, err := chromedp.Run(b, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`))
	if err != nil {
		t.Fatalf("measure %s: %v", page, err)
	}
	if len(sizes) != 2 || sizes[1] != phoneWidth || sizes[0] > sizes[1] {
		t.Errorf("the %s is %v px wide on a %v px phone (want %d): it scrolls sideways", page, sizes[0], sizes[1], phoneWidth)
	}
}
