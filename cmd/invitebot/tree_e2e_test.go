package main

// End-to-end tests of the tree and of suspending a branch, against the
// real Prosody with mod_invitebot (0.12, and 13 with
// INVITEBOT_PROSODY_PREFIX): a branch of three levels built from real
// registrations, the tree both ways, a suspend previewed and confirmed,
// the suspended accounts refused at login and their sessions ended, and
// unsuspend giving everything back.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/internal/prosodytest"
)

// registerWith registers local with the invite in inviter's reply to
// invite, as an app does, waits for the inviter's notice, and logs the new
// account in, taking its welcome.
func (w *world) registerWith(t *testing.T, inviter *prosodytest.Client, local string) (jid.JID, *prosodytest.Client) {
	t.Helper()
	uri := inviteURI(t, w.invite(t, inviter))
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	acct, err := ibr.Register(ctx, w.srv.IBRConfig(), uri.Token, local, password)
	if err != nil {
		t.Fatalf("register %s: %v", local, err)
	}
	expectNotice(t, inviter, "was used: "+acct.String()+" joined.")
	c := prosodytest.Login(t, w.srv, acct, password)
	expectNotice(t, c, "Welcome to "+w.srv.Domain)
	return acct, c
}

// loginFails reports the error of logging in as acct, nil if it worked.
func (w *world) loginFails(acct jid.JID) error {
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	c, err := prosodytest.Dial(ctx, w.srv, acct, password)
	if err == nil {
		c.Close()
	}
	return err
}

func TestTreeSuspendUnsuspend(t *testing.T) {
	w := newModuleWorld(t, true)
	admin, carol := w.grantedInviter(t)
	carolJID := "carol@" + w.srv.OtherDomain

	// carol -> lvl1 -> lvl2 -> lvl3, each inviter granted by the admin.
	lvl1, c1 := w.registerWith(t, carol, "lvl1")
	expectContains(t, admin.Chat(t, w.component, "grant "+lvl1.String()), "may now create invites")
	expectNotice(t, c1, "You may now create account invites")
	lvl2, c2 := w.registerWith(t, c1, "lvl2")
	expectContains(t, admin.Chat(t, w.component, "grant lvl2@"+w.srv.Domain), "may now create invites")
	expectNotice(t, c2, "You may now create account invites")
	lvl3, _ := w.registerWith(t, c2, "lvl3")

	// Down from carol, and up from lvl3.
	down := admin.Chat(t, w.component, "tree "+carolJID)
	expectContains(t, down, "Tree of "+carolJID+" (inviter: granted)", "3 accounts in 3 levels (1, 1, 1)",
		"└ "+lvl1.String(), "  └ "+lvl2.String(), "    └ "+lvl3.String(), "invited 1 (2 below)")
	up := admin.Chat(t, w.component, "tree lvl3")
	expectContains(t, up, carolJID+" invited "+lvl1.String(), lvl1.String()+" invited "+lvl2.String(),
		lvl2.String()+" invited "+lvl3.String(), "account: active")
	// An inviter sees their own branch only.
	expectContains(t, c1.Chat(t, w.component, "tree lvl3"), lvl3.String())
	expectContains(t, c1.Chat(t, w.component, "tree "+carolJID), "is not in your branch")

	// Admins are never suspended.
	expectContains(t, admin.Chat(t, w.component, "suspend admin@"+w.srv.Domain), "admins cannot be suspended")
	expectContains(t, admin.Chat(t, w.component, "yes"), "no suspension waiting")

	// Preview: nothing happens until yes.
	preview := admin.Chat(t, w.component, "suspend "+carolJID+" deep bot wave")
	expectContains(t, preview, "This suspends 3 accounts: "+lvl1.String()+", "+lvl2.String()+", "+lvl3.String(),
		"It revokes "+carolJID+", "+lvl1.String()+", "+lvl2.String(), "Answer yes")
	if err := w.loginFails(lvl3); err != nil {
		t.Fatalf("lvl3 cannot log in after the preview alone: %v", err)
	}
	done := admin.Chat(t, w.component, "yes")
	expectContains(t, done, "Suspended the branch of "+carolJID, "3 accounts suspended at the server", "unsuspend "+carolJID)
	expectNotice(t, carol, "revoked")

	// The open session of lvl2 ends; nobody of the branch logs in.
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if _, err := c2.Receive(ctx, func(prosodytest.Message) bool { return false }); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lvl2's open session did not end: %v", err)
	}
	for _, acct := range []jid.JID{lvl1, lvl2, lvl3} {
		if err := w.loginFails(acct); err == nil {
			t.Errorf("suspended %s logged in", acct)
		}
	}
	if err := w.loginFails(jid.MustParse("admin@" + w.srv.Domain)); err != nil {
		t.Errorf("the admin cannot log in: %v", err)
	}
	expectContains(t, admin.Chat(t, w.component, "tree "+carolJID), "inviter: revoked", "3 suspended")
	expectContains(t, admin.Chat(t, w.component, "invite"), "xmpp:") // the bot still works for others
	admin.Next(t)                                                    // its QR image

	// Undo: grants back as they were, logins restored.
	undo := admin.Chat(t, w.component, "unsuspend "+carolJID)
	expectContains(t, undo, "Lifted the suspension of "+carolJID, "3 accounts can log in again")
	for _, acct := range []jid.JID{lvl1, lvl2, lvl3} {
		if err := w.loginFails(acct); err != nil {
			t.Errorf("%s cannot log in after unsuspend: %v", acct, err)
		}
	}
	expectContains(t, admin.Chat(t, w.component, "inviters"), carolJID, lvl1.String(), lvl2.String())
	// An account deleted at the server shows as deleted: only the server
	// knows, and the tree asks it about the rows it shows.
	rctx, rcancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer rcancel()
	if err := ibr.Remove(rctx, w.srv.IBRConfig(), lvl3, password); err != nil {
		t.Fatalf("remove lvl3: %v", err)
	}
	for _, line := range strings.Split(admin.Chat(t, w.component, "tree "+carolJID), "\n") {
		switch {
		case strings.Contains(line, "└ "+lvl3.String()) && !strings.Contains(line, "  deleted"):
			t.Errorf("deleted lvl3 shows as %q", line)
		case strings.Contains(line, "└ "+lvl2.String()) && !strings.Contains(line, "  active"):
			t.Errorf("lvl2 shows as %q", line)
		}
	}
	audit := admin.Chat(t, w.component, "audit "+carolJID)
	expectContains(t, audit, "suspend  "+carolJID, "unsuspend  "+carolJID)
	if !strings.Contains(admin.Chat(t, w.component, "audit "+lvl3.String()), "account.suspend") {
		t.Errorf("the audit log does not name lvl3's suspension")
	}
}

// TestAlarmOnBotWave: a scripted wave of registrations with one inviter's
// invites, each used at once, reaches the admin as an alarm while it
// happens, with the evidence and the commands; with alerts.suspend the
// inviter loses the right to invite at once, and unsuspend gives it back.
func TestAlarmOnBotWave(t *testing.T) {
	srv := prosodytest.Start(t, prosodytest.WithOfflineMessages(), prosodytest.WithInvitebotModule())
	w := &world{srv: srv, component: jid.MustParse(srv.Component),
		dbPath: filepath.Join(t.TempDir(), "invitebot.db"), logs: &syncBuffer{}, httpListen: freeAddr(t),
		tune: func(c *config.Config) {
			c.Alerts.Enabled = true
			c.Alerts.FastUses = 3
			c.Alerts.Suspend = true
		}}
	w.bot = w.startBot(t)
	w.awaitLog(t, "prosody module mod_invitebot loaded")
	admin, carol := w.grantedInviter(t)
	carolJID := "carol@" + w.srv.OtherDomain

	start := time.Now()
	var wave []string
	for i := range 3 {
		uri := inviteURI(t, w.invite(t, carol))
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		acct, err := ibr.Register(ctx, w.srv.IBRConfig(), uri.Token, fmt.Sprintf("wave%d", i), password)
		cancel()
		if err != nil {
			t.Fatalf("wave registration %d: %v", i, err)
		}
		wave = append(wave, acct.String())
		expectNotice(t, carol, "was used: "+acct.String())
	}
	alarm := admin.Next(t)
	if took := time.Since(start); took > time.Minute {
		t.Errorf("the alarm came %v after the wave began, want within a minute", took)
	}
	expectContains(t, alarm.Body, "Alarm: 3 invites of "+carolJID+" were used within minutes of being made",
		"by "+wave[2], "lost the right to invite at once", "tree "+carolJID, "unsuspend "+carolJID)
	expectNotice(t, carol, "revoked")
	expectContains(t, carol.Chat(t, w.component, "invite"), "may not use invite")
	expectContains(t, admin.Chat(t, w.component, "audit "+carolJID), "alarm", "suspend")
	expectContains(t, w.metrics(t), `invitebot_alarms_total{kind="fast-uses"} 1`)

	expectContains(t, admin.Chat(t, w.component, "unsuspend "+carolJID), carolJID+" may invite again")
	expectNotice(t, carol, "You may now create account invites")
}

// metrics returns the body of /metrics.
func (w *world) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + w.httpListen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// treeLinkIn finds the picture link in a tree reply.
func treeLinkIn(t *testing.T, reply string) string {
	t.Helper()
	m := regexp.MustCompile(`http://\S+/t/[A-Z2-7]+`).FindString(reply)
	if m == "" {
		t.Fatalf("tree reply has no picture link:\n%s", reply)
	}
	return m
}

// TestTreePageInChromium: the link in tree's reply draws the branch in a
// browser, on a phone without sideways scrolling and on a desktop; it
// opens once; an inviter's link for their own branch stops working once
// they are revoked.
func TestTreePageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test needs a full run")
	}
	exe := chromiumForTest(t)
	w := newModuleWorld(t, true)
	admin, carol := w.grantedInviter(t)
	carolJID := "carol@" + w.srv.OtherDomain
	lvl1, c1 := w.registerWith(t, carol, "lvl1")
	expectContains(t, admin.Chat(t, w.component, "grant "+lvl1.String()), "may now create invites")
	expectNotice(t, c1, "You may now create account invites")
	lvl2, _ := w.registerWith(t, c1, "lvl2")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := browserForTest(t, ctx, exe)
	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser, %s: %v", step, err)
		}
	}
	for _, size := range []struct {
		name          string
		width, height int64
		opts          []chromedp.EmulateViewportOption
	}{
		{"phone", 360, 740, []chromedp.EmulateViewportOption{chromedp.EmulateScale(3), chromedp.EmulateMobile}},
		{"desktop", 1280, 800, nil},
	} {
		link := treeLinkIn(t, admin.Chat(t, w.component, "tree "+carolJID))
		must(size.name+" viewport", chromedp.Do(b, chromedp.EmulateViewport(size.width, size.height, size.opts...)))
		resp, err := chromedp.RunResponse(b, chromedp.Navigate(link))
		must("open "+size.name, err)
		if resp.Status != http.StatusOK {
			t.Fatalf("%s: tree page answered %d", size.name, resp.Status)
		}
		title, err := chromedp.Run(b, chromedp.Text(chromedp.ID("tree-title")))
		must("title", err)
		if !strings.Contains(title, carolJID) {
			t.Errorf("%s: title %q", size.name, title)
		}
		tree, err := chromedp.Run(b, chromedp.Text(chromedp.ID("tree")))
		must("tree", err)
		expectContains(t, tree, lvl1.String(), lvl2.String(), "may invite", "active")
		ok, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= document.documentElement.clientWidth`))
		must("measure", err)
		if !ok {
			t.Errorf("the tree page scrolls sideways on a %s", size.name)
		}
		// Once only.
		resp, err = chromedp.RunResponse(b, chromedp.Navigate(link))
		must("open again", err)
		if resp.Status != http.StatusGone {
			t.Errorf("%s: the link opened a second time answered %d, want 410", size.name, resp.Status)
		}
	}

	// An inviter's own link works for them only while they may see it.
	link := treeLinkIn(t, c1.Chat(t, w.component, "tree"))
	expectContains(t, admin.Chat(t, w.component, "revoke "+lvl1.String()), "may no longer create invites")
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a revoked inviter's link answered %d, want 403", resp.StatusCode)
	}
}

// chromiumForTest returns Debian's chromium; a missing browser fails the
// test (go test -short leaves browser tests out). As web's test helper of
// the same name, which other packages cannot import.
func chromiumForTest(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("chromium not found: apt-get install chromium (or run go test -short)")
	return ""
}

// browserForTest starts a headless Chromium with a fresh profile and
// returns a context for one tab; both end in t.Cleanup.
func browserForTest(t *testing.T, ctx context.Context, exe string) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true))
	bctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// prosodyctl is the prosodyctl of the Prosody under test, as prosodytest
// finds it.
func prosodyctl(t *testing.T) string {
	t.Helper()
	if prefix := os.Getenv(prosodytest.EnvPrefix); prefix != "" {
		return filepath.Join(prefix, "bin", "prosodyctl")
	}
	p, err := exec.LookPath("prosodyctl")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runListed runs, through sh, the commands the bot listed for the Prosody
// under test (the part of its reply after label, up to the next ". "), with
// prosodyctl pointed at the test server's configuration.
func (w *world) runListed(t *testing.T, reply, label string) {
	t.Helper()
	_, rest, ok := strings.Cut(reply, label)
	if !ok {
		t.Fatalf("reply lists no commands for %q:\n%s", label, reply)
	}
	cmds, _, _ := strings.Cut(rest, ". ")
	for _, c := range strings.Split(cmds, "; ") {
		c = strings.ReplaceAll(c, "prosodyctl ", prosodyctl(t)+" --config "+w.srv.ConfigPath+" ")
		out, err := exec.Command("sh", "-c", c).CombinedOutput()
		if err != nil {
			t.Fatalf("listed command %q: %v\n%s", c, err, out)
		}
		t.Logf("ran %q: %s", c, strings.TrimSpace(string(out)))
	}
}

// TestSuspendWithoutModule: without mod_invitebot the bot records the
// suspension and lists the exact server commands; they work when an admin
// runs them (Prosody 13 disables the account; 0.12 gets a new password and
// its sessions closed).
func TestSuspendWithoutModule(t *testing.T) {
	w := newModuleWorld(t, false)
	admin, carol := w.grantedInviter(t)
	carolJID := "carol@" + w.srv.OtherDomain
	reply := w.invite(t, carol)
	w.registerInBrowser(t, cancelID(t, reply), "webby")
	webby := jid.MustParse("webby@" + w.srv.Domain)
	expectNotice(t, carol, "was used: "+webby.String())

	expectContains(t, admin.Chat(t, w.component, "suspend "+carolJID), "This suspends 1 account: "+webby.String())
	done := admin.Chat(t, w.component, "yes")
	expectContains(t, done, "no mod_invitebot", "prosodyctl shell user disable "+webby.String(),
		"ejabberdctl ban_account webby "+w.srv.Domain)
	if err := w.loginFails(webby); err != nil {
		t.Fatalf("webby cannot log in before an admin ran anything: %v", err)
	}
	expectContains(t, admin.Chat(t, w.component, "tree "+carolJID), "suspended")

	v13 := !strings.HasPrefix(w.srv.Version, "0.")
	if v13 {
		w.runListed(t, done, "Prosody 13: ")
	} else {
		w.runListed(t, done, "Prosody 0.12 (no account disabling: a new password locks them out): ")
	}
	if err := w.loginFails(webby); err == nil {
		t.Fatal("webby logs in after the listed commands ran")
	}

	undo := admin.Chat(t, w.component, "unsuspend "+carolJID)
	expectContains(t, undo, "Lift it by hand on the server", "prosodyctl shell user enable "+webby.String(),
		"ejabberdctl unban_account webby "+w.srv.Domain)
	if v13 {
		w.runListed(t, undo, "Prosody 13: ")
		if err := w.loginFails(webby); err != nil {
			t.Errorf("webby cannot log in after the listed enable: %v", err)
		}
	}
}
