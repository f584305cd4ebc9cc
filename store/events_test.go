package store

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

// addEvent stores an event link of creator with cap uses, open for an hour
// from t0.
func addEvent(t *testing.T, s *Store, creator string, uses int) EventLink {
	t.Helper()
	ev, err := s.AddEvent(t.Context(), EventLink{Creator: creator, Created: t0, Expires: t0.Add(time.Hour), MaxUses: uses, Note: "workshop"},
		AuditEntry{Time: t0, Actor: creator, Action: "event.create"})
	if err != nil {
		t.Fatalf("AddEvent: %v", err)
	}
	return ev
}

func TestAddEventAndGet(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	ev := addEvent(t, s, "carol@example.org", 20)
	if !ValidID(ev.ID) {
		t.Fatalf("event id %q is not an unguessable id", ev.ID)
	}
	got, err := s.Event(ctx, ev.ID)
	if err != nil || !reflect.DeepEqual(got, ev) {
		t.Fatalf("Event = %+v, %v; want %+v", got, err, ev)
	}
	if _, err := s.Event(ctx, "abcdefghijklmnop"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown event: %v, want ErrNotFound", err)
	}
	audit, err := s.Audit(ctx, ev.ID, 5)
	if err != nil || len(audit) != 1 || audit[0].Action != "event.create" {
		t.Errorf("audit of the new link: %+v, %v", audit, err)
	}
	for _, bad := range []EventLink{
		{Created: t0, Expires: t0.Add(time.Hour), MaxUses: 3},
		{Creator: "c@x.org", Expires: t0.Add(time.Hour), MaxUses: 3},
		{Creator: "c@x.org", Created: t0, Expires: t0.Add(time.Hour)},
		{Creator: "c@x.org", Created: t0, Expires: t0.Add(time.Hour), MaxUses: 3, Uses: 1},
	} {
		if _, err := s.AddEvent(ctx, bad, AuditEntry{Actor: "c@x.org", Action: "event.create"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddEvent(%+v): %v, want ErrInvalid", bad, err)
		}
	}
}

// TestClaimEventUseHoldsTheCapUnderConcurrency: fifty visitors claim a
// link for three at once; exactly three claims succeed, the others are
// told it is used up, and the stored count is three.
func TestClaimEventUseHoldsTheCapUnderConcurrency(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	ev := addEvent(t, s, "carol@example.org", 3)
	const visitors = 50
	var wg sync.WaitGroup
	errs := make(chan error, visitors)
	for range visitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.ClaimEventUse(ctx, ev.ID, t0.Add(time.Minute))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	var ok, full int
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrEventFull):
			full++
		default:
			t.Errorf("claim: %v", err)
		}
	}
	if ok != 3 || full != visitors-3 {
		t.Errorf("%d claims succeeded and %d were told used up; want 3 and %d", ok, full, visitors-3)
	}
	if got, _ := s.Event(ctx, ev.ID); got.Uses != 3 {
		t.Errorf("stored uses = %d, want 3", got.Uses)
	}

	// A use given back (minting failed) can be claimed again, once.
	if err := s.ReleaseEventUse(ctx, ev.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimEventUse(ctx, ev.ID, t0.Add(time.Minute)); err != nil || got.Uses != 3 {
		t.Errorf("claim after a release: %+v, %v", got, err)
	}
	if _, err := s.ClaimEventUse(ctx, ev.ID, t0.Add(time.Minute)); !errors.Is(err, ErrEventFull) {
		t.Errorf("claim past the cap: %v, want ErrEventFull", err)
	}
}

func TestClaimEventUseExpiredAndClosed(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	ev := addEvent(t, s, "carol@example.org", 5)
	if _, err := s.ClaimEventUse(ctx, ev.ID, ev.Expires); !errors.Is(err, ErrEventExpired) {
		t.Errorf("claim at the expiry: %v, want ErrEventExpired", err)
	}
	if _, err := s.ClaimEventUse(ctx, ev.ID, ev.Expires.Add(-time.Second)); err != nil {
		t.Errorf("claim a second before the expiry: %v", err)
	}
	if _, err := s.ClaimEventUse(ctx, "abcdefghijklmnop", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("claim of an unknown link: %v, want ErrNotFound", err)
	}

	closed, err := s.CloseEvent(ctx, ev.ID, AuditEntry{Time: t0.Add(2 * time.Minute), Actor: "admin@durare.org", Action: "event.close"})
	if err != nil {
		t.Fatal(err)
	}
	if !closed.Closed.Equal(t0.Add(2*time.Minute)) || closed.ClosedBy != "admin@durare.org" || closed.Uses != 1 {
		t.Errorf("closed link = %+v", closed)
	}
	if _, err := s.ClaimEventUse(ctx, ev.ID, t0.Add(3*time.Minute)); !errors.Is(err, ErrEventClosed) {
		t.Errorf("claim of a closed link: %v, want ErrEventClosed", err)
	}
	again, err := s.CloseEvent(ctx, ev.ID, AuditEntry{Actor: "carol@example.org", Action: "event.close"})
	if !errors.Is(err, ErrEventClosed) || again.ClosedBy != "admin@durare.org" {
		t.Errorf("closing twice: %+v, %v; want ErrEventClosed and the first closing kept", again, err)
	}
	if audit, _ := s.Audit(ctx, ev.ID, 10); len(audit) != 2 {
		t.Errorf("audit of the link has %d entries, want create and one close: %+v", len(audit), audit)
	}
}

func TestEventsListAndInvitesOfEvent(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	first := addEvent(t, s, "carol@example.org", 2)
	later, err := s.AddEvent(ctx, EventLink{Creator: "carol@example.org", Created: t0.Add(time.Hour), Expires: t0.Add(2 * time.Hour), MaxUses: 2},
		AuditEntry{Actor: "carol@example.org", Action: "event.create"})
	if err != nil {
		t.Fatal(err)
	}
	other := addEvent(t, s, "dave@example.org", 2)

	mine, err := s.Events(ctx, "carol@example.org")
	if err != nil || len(mine) != 2 || mine[0].ID != later.ID || mine[1].ID != first.ID {
		t.Errorf("carol's links = %+v, %v; want the later one first", mine, err)
	}
	if all, _ := s.Events(ctx, ""); len(all) != 3 {
		t.Errorf("all links: %d, want 3", len(all))
	}
	if none, err := s.Events(ctx, "nobody@example.org"); err != nil || none == nil || len(none) != 0 {
		t.Errorf("links of nobody = %#v, %v; want empty", none, err)
	}

	inv := testInvite("carol@example.org", "tok-e1", t0)
	inv.Event = first.ID
	stored := mustAdd(t, s, inv)
	mustAdd(t, s, testInvite("carol@example.org", "tok-plain", t0))
	o := testInvite("dave@example.org", "tok-e2", t0)
	o.Event = other.ID
	mustAdd(t, s, o)
	got, err := s.InvitesOfEvent(ctx, first.ID)
	if err != nil || len(got) != 1 || got[0].ID != stored.ID || got[0].Event != first.ID {
		t.Errorf("InvitesOfEvent = %+v, %v; want the one invite of the link", got, err)
	}
}
