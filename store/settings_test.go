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
