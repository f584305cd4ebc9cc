package invites_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// An inviter's event allowance (grant … events N) bounds what all of their
// event links hand out together per rolling 24 hours, and never more than
// half of the service's daily limit: see policy.EventAllowance.

// grantPerDayEvents gives carol per-day perDay and an event allowance of
// events.
func (f *eventFixture) grantPerDayEvents(t *testing.T, perDay, events int) {
	t.Helper()
	if _, _, err := f.svc.Grant(context.Background(), f.actor(t, eventAdmin), eventInviter,
		invites.GrantOptions{PerDay: &perDay, Events: &events}); err != nil {
		t.Fatal(err)
	}
}

// capRefused checks that err refuses an event link with a cap error
// naming max as the largest cap possible now.
func capRefused(t *testing.T, what string, err error, max int) {
	t.Helper()
	var ce *invites.EventCapError
	if !errors.As(err, &ce) || ce.Max != max {
		t.Errorf("%s: %v, want a cap error naming %d", what, err, max)
	}
}

// TestEventAllowanceBoundsAllLinks: with grant carol per-day 1 events 2,
// carol's links together hand out 2 invites per 24 hours, however many
// links she makes: a new link may have only what is left, and what a link
// handed out comes back 24 hours after it was handed out; what an open
// link has not handed out yet is held for it until it closes or expires.
func TestEventAllowanceBoundsAllLinks(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{})
	f.grantPerDayEvents(t, 1, 2)
	carol := f.actor(t, eventInviter)
	create := func(uses int, valid time.Duration) (invites.EventLink, error) {
		return f.svc.CreateEvent(ctx, carol, invites.EventOptions{Uses: uses, Valid: valid})
	}

	// Every link she manages to make gets visitors.
	links := []invites.EventLink{f.event(t, eventInviter, 1, time.Hour)}
	ev, err := create(2, time.Hour)
	capRefused(t, "a second link for 2 while the first holds 1", err, 1)
	if err == nil {
		links = append(links, ev)
	}
	links = append(links, f.event(t, eventInviter, 1, time.Hour))
	ev, err = create(1, time.Hour)
	capRefused(t, "a third link", err, 0)
	if err == nil {
		links = append(links, ev)
	}

	handedOut := 0
	for range 3 {
		for _, ev := range links {
			_, err := f.svc.ClaimEventInvite(ctx, ev.ID)
			switch {
			case err == nil:
				handedOut++
			case !errors.Is(err, invites.ErrEventUsedUp):
				t.Errorf("visitor of %s: %v, want an invite or used up", ev.ID, err)
			}
		}
	}
	if handedOut != 2 {
		t.Fatalf("carol's links handed out %d invites, want 2", handedOut)
	}

	// The links expire; what they handed out still counts for 24 hours.
	f.clock.advance(2 * time.Hour)
	_, err = create(1, time.Hour)
	capRefused(t, "a link 2 hours later", err, 0)
	f.clock.advance(22*time.Hour - time.Second)
	_, err = create(1, time.Hour)
	capRefused(t, "a link a second before the invites are 24 hours old", err, 0)
	f.clock.advance(time.Second)
	c := f.event(t, eventInviter, 2, time.Hour)

	// Closing a link gives back what it had not handed out.
	if _, err := f.svc.ClaimEventInvite(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = create(2, time.Hour)
	capRefused(t, "a link beside one holding one more use", err, 0)
	if _, err := f.svc.CloseEvent(ctx, carol, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = create(2, time.Hour)
	capRefused(t, "a link after closing the one that handed out one", err, 1)
	f.event(t, eventInviter, 1, time.Hour)

	// Her own per-day limit is apart from it.
	if _, err := f.svc.Create(ctx, carol); err != nil {
		t.Errorf("carol's own invite: %v", err)
	}
}

// TestEventAllowanceCountsInvitesNotLinks: a link made more than 24 hours
// ago whose invites were handed out less than 24 hours ago still counts
// them, invite by invite.
func TestEventAllowanceCountsInvitesNotLinks(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{})
	f.grantPerDayEvents(t, 1, 3)
	carol := f.actor(t, eventInviter)
	ev := f.event(t, eventInviter, 3, 24*time.Hour)
	if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(23 * time.Hour)
	for range 2 {
		if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); err != nil {
			t.Fatal(err)
		}
	}
	// 25 hours after the link was made: the first invite has aged out,
	// the two from hour 23 have not.
	f.clock.advance(2 * time.Hour)
	_, err := f.svc.CreateEvent(ctx, carol, invites.EventOptions{Uses: 2, Valid: time.Hour})
	capRefused(t, "a link while two invites of a day-old link are recent", err, 1)
	f.clock.advance(22 * time.Hour)
	f.event(t, eventInviter, 3, time.Hour)
}

// TestEventAllowanceUnderConcurrency: links made at once cannot together
// hold more than the allowance, and visitors pressing several links at
// once get no more than it.
func TestEventAllowanceUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{})
	f.grantPerDayEvents(t, 1, 2)
	carol := f.actor(t, eventInviter)

	const makers = 6
	var wg sync.WaitGroup
	links := make(chan invites.EventLink, makers)
	for range makers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, err := f.svc.CreateEvent(ctx, carol, invites.EventOptions{Uses: 1, Valid: time.Hour})
			var ce *invites.EventCapError
			switch {
			case err == nil:
				links <- ev
			case !errors.As(err, &ce) || ce.Max != 0:
				t.Errorf("CreateEvent: %v, want a link or a cap error naming 0", err)
			}
		}()
	}
	wg.Wait()
	close(links)
	var ids []string
	for ev := range links {
		ids = append(ids, ev.ID)
	}
	if len(ids) != 2 {
		t.Fatalf("%d links of one made at once, want 2", len(ids))
	}

	gate := newMintGate(t, 10)
	f.issuer.gate = gate
	const visitors = 10
	got := make(chan error, visitors)
	for i := range visitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.ClaimEventInvite(ctx, ids[i%2])
			got <- err
		}()
	}
	gate.wait(t, 2)
	gate.open()
	wg.Wait()
	close(got)
	handedOut := 0
	for err := range got {
		switch {
		case err == nil:
			handedOut++
		case !errors.Is(err, invites.ErrEventUsedUp):
			t.Errorf("visitor: %v", err)
		}
	}
	if handedOut != 2 || f.issuer.minted != 2 {
		t.Errorf("%d invites handed out, %d minted; want 2", handedOut, f.issuer.minted)
	}
}

// TestEventAllowanceShareOfGlobalLimit: one inviter's event links take at
// most half of policy.global_per_day, whatever their grant says, so that
// the rest stays for the others and for the admins' links.
func TestEventAllowanceShareOfGlobalLimit(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{GlobalPerDay: 6})
	f.grantPerDayEvents(t, 1, 10)
	carol := f.actor(t, eventInviter)
	if _, _, err := f.svc.Grant(ctx, f.actor(t, eventAdmin), "dave@elsewhere.test", invites.GrantOptions{}); err != nil {
		t.Fatal(err)
	}

	ev, err := f.svc.CreateEvent(ctx, carol, invites.EventOptions{Uses: 10, Valid: time.Hour})
	var ce *invites.EventCapError
	if errors.As(err, &ce) {
		if ce.Max != 3 {
			t.Errorf("carol's link for 10: %v, want a cap error naming 3 (half of 6)", err)
		}
		ev = f.event(t, eventInviter, ce.Max, time.Hour)
	} else if err != nil {
		t.Fatal(err)
	} else {
		t.Errorf("carol made a link for 10 with a daily limit of 6 for everybody")
	}
	// Visitors take all the link gives.
	handedOut := 0
	for range 10 {
		if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); err != nil {
			break
		}
		handedOut++
	}
	if handedOut > 3 {
		t.Errorf("carol's link handed out %d of the day's 6", handedOut)
	}
	_, err = f.svc.CreateEvent(ctx, carol, invites.EventOptions{Uses: 1, Valid: time.Hour})
	capRefused(t, "another link of carol's", err, 0)

	// Another inviter, and an admin's link, still get theirs.
	if _, err := f.svc.Create(ctx, f.actor(t, "dave@elsewhere.test")); err != nil {
		t.Errorf("dave's invite after carol's links: %v", err)
	}
	byAdmin := f.event(t, eventAdmin, 5, time.Hour)
	if _, err := f.svc.ClaimEventInvite(ctx, byAdmin.ID); err != nil {
		t.Errorf("a visitor of the admin's link after carol's links: %v", err)
	}
	// Admins' links are not bound by the share.
	more := f.event(t, eventAdmin, 5, time.Hour)
	if more.MaxUses != 5 {
		t.Errorf("admin's second link: %+v", more)
	}
}
