package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPauseRoundTrip(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	p, err := s.Pause(ctx)
	if err != nil || p.Paused {
		t.Fatalf("fresh Pause = %+v, %v", p, err)
	}
	since := time.Date(2026, 11, 24, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	want := Pause{Paused: true, Reason: "spam wave", By: "admin@x.org", Since: since}
	if err := s.SetPause(ctx, want, AuditEntry{Time: since, Actor: "admin@x.org", Action: "pause"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pause(ctx)
	if err != nil || !got.Paused || got.Reason != want.Reason || !got.Since.Equal(since) {
		t.Errorf("Pause = %+v, %v; want %+v", got, err, want)
	}
	if err := s.SetPause(ctx, Pause{}, AuditEntry{Actor: "admin@x.org"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetPause without action: %v, want ErrInvalid", err)
	}
	if got, _ := s.Pause(ctx); !got.Paused {
		t.Error("a refused SetPause changed the switch")
	}
	entries, err := s.Audit(ctx, "", 10)
	if err != nil || len(entries) != 1 || entries[0].Action != "pause" {
		t.Errorf("audit = %+v, %v", entries, err)
	}
}

func TestScans(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	old := mustAdd(t, s, testInvite("a@x.org", "t-old", base.Add(-48*time.Hour)))
	recent := mustAdd(t, s, testInvite("a@x.org", "t-new", base.Add(-time.Hour)))
	other := mustAdd(t, s, testInvite("b@y.org", "t-other", base))

	since, err := s.InvitesCreatedSince(ctx, base.Add(-24*time.Hour))
	if err != nil || len(since) != 2 {
		t.Fatalf("InvitesCreatedSince = %d invites, %v; want 2", len(since), err)
	}
	for _, inv := range since {
		if inv.ID == old.ID {
			t.Error("old invite counted as recent")
		}
	}

	if _, err := s.SetInviteState(ctx, recent.ID, StateUsed, "new@x.org", AuditEntry{Actor: "system", Action: "invite.use"}); err != nil {
		t.Fatal(err)
	}
	used, err := s.InvitesUsedBy(ctx, "new@x.org")
	if err != nil || len(used) != 1 || used[0].ID != recent.ID {
		t.Errorf("InvitesUsedBy = %+v, %v", used, err)
	}

	if _, err := s.SetInviteState(ctx, other.ID, StateCancelled, "", AuditEntry{Actor: "b@y.org", Action: "invite.cancel"}); err != nil {
		t.Fatal(err)
	}
	unrevoked, err := s.UnrevokedCancelled(ctx)
	if err != nil || len(unrevoked) != 1 || unrevoked[0].ID != other.ID {
		t.Fatalf("UnrevokedCancelled = %+v, %v", unrevoked, err)
	}
	if err := s.MarkRevoked(ctx, other.ID, AuditEntry{Actor: "system", Action: "invite.revoke"}); err != nil {
		t.Fatal(err)
	}
	if unrevoked, _ := s.UnrevokedCancelled(ctx); len(unrevoked) != 0 {
		t.Errorf("still unrevoked after MarkRevoked: %+v", unrevoked)
	}
	if err := s.MarkRevoked(ctx, "aaaaaaaaaaaaaaaa", AuditEntry{Actor: "system", Action: "invite.revoke"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkRevoked unknown: %v", err)
	}
}
