package store

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// dueIDs pages through every check due at now, a page of two at a time.
func dueIDs(t *testing.T, s *Store, now time.Time) []string {
	t.Helper()
	var ids []string
	for after := (Check{}); ; {
		page, err := s.DueChecks(t.Context(), now, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			ids = append(ids, c.ID)
		}
		if len(page) < 2 {
			return ids
		}
		after = page[len(page)-1]
	}
}

// TestCheckSchedule: a new pending invite is due at its creation in the
// first tier; due checks come lowest tier first, soonest due first within
// one, and only those due; rescheduling moves an entry and keeps what a
// check needs; an invite that leaves the pending state leaves the schedule.
func TestCheckSchedule(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	a := mustAdd(t, s, testInvite("alice@example.org", "tok-a", t0))
	b := mustAdd(t, s, testInvite("bob@example.org", "tok-b", t0.Add(time.Minute)))
	c := mustAdd(t, s, testInvite("carol@example.org", "tok-c", t0.Add(2*time.Minute)))

	if got := dueIDs(t, s, t0.Add(90*time.Second)); !slices.Equal(got, []string{a.ID, b.ID}) {
		t.Fatalf("due at t0+90s: %q, want a and b", got)
	}
	first, err := s.DueChecks(ctx, t0.Add(time.Hour), Check{}, 1)
	if err != nil || len(first) != 1 {
		t.Fatalf("DueChecks = %v, %v", first, err)
	}
	if got := first[0]; got.Token != "tok-a" || got.Inviter != "alice@example.org" || !got.Created.Equal(t0) ||
		!got.Expires.Equal(a.Expires) || got.Tier != 0 || !got.Due.Equal(t0) {
		t.Errorf("entry of a = %+v", got)
	}

	// a goes to a later tier, due soon; b far ahead in the first tier.
	err = s.Reschedule(ctx, []Check{
		{PendingRef: PendingRef{ID: a.ID}, Tier: 3, Due: t0.Add(10 * time.Minute)},
		{PendingRef: PendingRef{ID: b.ID}, Tier: 0, Due: t0.Add(24 * time.Hour)},
		{PendingRef: PendingRef{ID: "gone"}, Tier: 0, Due: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := dueIDs(t, s, t0.Add(time.Hour)); !slices.Equal(got, []string{c.ID, a.ID}) {
		t.Errorf("due at t0+1h: %q, want c (tier 0) before a (tier 3), not b", got)
	}
	moved, err := s.ScheduledCheck(ctx, a.ID)
	if err != nil || moved.Tier != 3 || !moved.Due.Equal(t0.Add(10*time.Minute)) || moved.Token != "tok-a" || !moved.Created.Equal(t0) {
		t.Errorf("a after reschedule = %+v, %v", moved, err)
	}

	if _, err := s.SetInviteState(ctx, a.ID, StateUsed, "", AuditEntry{Time: t0, Actor: "system", Action: "invite.use"}); err != nil {
		t.Fatal(err)
	}
	if got := dueIDs(t, s, t0.Add(48*time.Hour)); !slices.Equal(got, []string{c.ID, b.ID}) {
		t.Errorf("due after a was used: %q, want c and b", got)
	}
	if _, err := s.ScheduledCheck(ctx, a.ID); err == nil {
		t.Error("a used invite is still in the schedule")
	}
}

// TestFillSchedule: a file whose pending invites have no schedule (written
// before it existed, or by an older program afterwards) gets one, in the
// fill tier, oldest first, settled invites left out; a file already filled
// is not read again.
func TestFillSchedule(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "invitebot.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	n := fillBatch + 3
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		for i := range n {
			inv := testInvite("alice@example.org", fmt.Sprintf("tok-%d", i), t0.Add(time.Duration(i)*time.Second))
			inv.ID = fmt.Sprintf("id%05d", i)
			if i == 1 {
				inv.State = StateExpired
			} else {
				ids = append(ids, inv.ID)
			}
			if err := putJSON(tx.Bucket(bucketInvites), []byte(inv.ID), inv); err != nil {
				return err
			}
			if err := indexCreated(tx, inv); err != nil {
				return err
			}
			if err := indexState(tx, inv, true); err != nil {
				return err
			}
		}
		// As a program without the schedule leaves it.
		for _, name := range [][]byte{bucketCheckDue, bucketCheckDueByID} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.FillSchedule(ctx); err != nil || got != n-1 {
		t.Errorf("FillSchedule entered %d invites (%v), want %d", got, err, n-1)
	}
	got := dueIDs(t, s, t0.Add(48*time.Hour))
	if !slices.Equal(got, ids) {
		t.Errorf("due after the fill: %d invites, want the %d pending ones oldest first", len(got), len(ids))
	}
	if c, _ := s.ScheduledCheck(ctx, ids[0]); c.Tier != TierFill {
		t.Errorf("filled entry in tier %d, want %d", c.Tier, TierFill)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.FillSchedule(ctx); err != nil || got != 0 {
		t.Errorf("a second FillSchedule entered %d invites again (%v)", got, err)
	}
	// An invite added by a program without the schedule is found.
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		inv := testInvite("bob@example.org", "tok-late", t0.Add(24*time.Hour))
		inv.ID = "late"
		if err := putJSON(tx.Bucket(bucketInvites), []byte(inv.ID), inv); err != nil {
			return err
		}
		if err := indexCreated(tx, inv); err != nil {
			return err
		}
		return tx.Bucket(bucketInvitesPending).Put(expiryKey(inv.Expires, inv.ID), pendingValue(inv.Token, inv.Inviter))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.FillSchedule(ctx); err != nil || got != 1 {
		t.Errorf("after an older program added an invite, FillSchedule entered %d (%v), want 1", got, err)
	}
}
