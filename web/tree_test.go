package web

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"durare.org/invitebot/invites"
)

// fakeTrees opens each token once; "forbidden" and "gone" are refused.
type fakeTrees struct{ branch invites.Branch }

func (f fakeTrees) OpenTreeLink(_ context.Context, token string) (invites.Branch, error) {
	switch token {
	case "GONE":
		return invites.Branch{}, invites.ErrTreeLinkGone
	case "FORBIDDEN":
		return invites.Branch{}, invites.ErrNotInBranch
	case "OK":
		return f.branch, nil
	}
	return invites.Branch{}, invites.ErrNoSuchTreeLink
}

// waveBranch is a bot wave: n accounts, 50 under each of the first
// accounts, which invited in turn, four levels deep.
func waveBranch(n int) invites.Branch {
	b := invites.Branch{Root: "spammer@elsewhere.test", RootInviter: invites.InviterGranted,
		Up: []invites.ChainLink{{Account: "spammer@elsewhere.test", Invite: invites.Invite{ID: "aaaaaaaaaaaaaaaa",
			Inviter: "admin@durare.test", Created: testNow}, InviterState: invites.InviterAdmin}}}
	var add func(depth, count int) int
	made := 0
	add = func(depth, count int) int {
		total := 0
		for i := 0; i < count && made < n; i++ {
			made++
			idx := len(b.Accounts)
			b.Accounts = append(b.Accounts, invites.BranchAccount{Account: fmt.Sprintf("bot%05d@durare.test", made),
				Invite: invites.Invite{ID: "bbbbbbbbbbbbbbbb", Created: testNow}, Depth: depth, State: invites.AccountActive,
				Inviter: invites.InviterNone})
			if depth < 4 {
				below := add(depth+1, 50)
				b.Accounts[idx].Below = below
				total += below
				if below > 0 {
					b.Accounts[idx].Children = min(below, 50)
					b.Accounts[idx].Inviter = invites.InviterRevoked
				}
			}
			total++
		}
		return total
	}
	add(1, n)
	b.Accounts[1].State = invites.AccountSuspended
	return b
}

func TestTreePageStatuses(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.Trees = fakeTrees{branch: waveBranch(10)} })
	for token, want := range map[string]int{"OK": http.StatusOK, "GONE": http.StatusGone,
		"FORBIDDEN": http.StatusForbidden, "NOPE": http.StatusNotFound} {
		if got := e.get("/t/" + token).Code; got != want {
			t.Errorf("/t/%s = %d, want %d", token, got, want)
		}
	}
	// A tree link is a link, not an invitation (found with Chromium).
	for token, title := range map[string]string{"GONE": "This link can no longer be used", "NOPE": "Link not found"} {
		if body := e.get("/t/" + token).Body.String(); !strings.Contains(body, title) || strings.Contains(body, "nvitation can") || strings.Contains(body, "nvitation not") {
			t.Errorf("/t/%s does not say %q, or speaks of an invitation:\n%s", token, title, body)
		}
	}
	if got := e.do(httptestRequest(http.MethodPost, "/t/OK")).Code; got != http.StatusMethodNotAllowed {
		t.Errorf("POST /t/OK = %d, want 405", got)
	}
}

func httptestRequest(method, path string) *http.Request {
	r, _ := http.NewRequest(method, path, nil)
	return r
}

// TestTreePageLargeBranch: 10 k accounts draw as a bounded page, quickly,
// with what is not drawn counted.
func TestTreePageLargeBranch(t *testing.T) {
	br := waveBranch(10000)
	e := newEnv(t, nil, func(c *Config) { c.Trees = fakeTrees{branch: br} })
	start := time.Now()
	rec := e.get("/t/OK")
	took := time.Since(start)
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	drawn := strings.Count(body, `<li class="node`)
	if drawn > treeMaxDrawn || drawn < 100 {
		t.Errorf("%d accounts drawn, want 100 to %d", drawn, treeMaxDrawn)
	}
	if !strings.Contains(body, `id="tree-more"`) || !strings.Contains(body, fmt.Sprintf("Accounts below: %d.", len(br.Accounts))) {
		t.Errorf("the page does not count what it leaves out")
	}
	if len(body) > 2<<20 {
		t.Errorf("page of %d bytes", len(body))
	}
	t.Logf("%d accounts: %d drawn, %d bytes, %v", len(br.Accounts), drawn, len(body), took)
}

// TestTreePageOnAPhone: the drawing of a branch fits a phone's width, and
// folded parts unfold without script.
func TestTreePageOnAPhone(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.Trees = fakeTrees{branch: waveBranch(300)} })
	b, base := e.phoneTab(t)
	if err := chromedp.Do(b, chromedp.Navigate(base+"/t/OK"), chromedp.WaitVisible(chromedp.ID("tree"))); err != nil {
		t.Fatal(err)
	}
	fitsPhone(t, b, "tree page")
	if path := os.Getenv("INVITEBOT_TREE_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(b, chromedp.FullScreenshot(80))
		if err == nil {
			_ = os.WriteFile(path, png, 0o600)
		}
	}
}
