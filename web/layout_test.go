package web

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"durare.org/invitebot/invites"
)

// TestLongWordsWrapOnAPhone: text people type, shown back to them (a
// requester's name without spaces, an approver's reason), wraps inside a
// phone's width instead of making the page scroll sideways.
func TestLongWordsWrapOnAPhone(t *testing.T) {
	e, reqs := newRequestEnv(t)
	long := strings.Repeat("Anna", 30) // one 120-letter word
	key, err := reqs.SubmitRequest(context.Background(), invites.NewRequest{Name: long, Message: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	b, base := e.phoneTab(t)

	if err := chromedp.Do(b, chromedp.Navigate(base+"/r/"+key), chromedp.WaitVisible(chromedp.ID("status-message"))); err != nil {
		t.Fatal(err)
	}
	fitsPhone(t, b, "waiting status page with a long name")

	reqs.set(key, func(r *invites.Request) {
		r.State, r.Reason = invites.RequestDenied, strings.Repeat("Begründung", 15)
	})
	if err := chromedp.Do(b, chromedp.Navigate(base+"/r/"+key), chromedp.WaitVisible(chromedp.ID("status-hint"))); err != nil {
		t.Fatal(err)
	}
	fitsPhone(t, b, "declined status page with a long reason")
}
