package policy

import (
	"testing"
	"time"
)

func TestCheckQuota(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	lim := Limits{PerDay: 2, MaxPending: 3, GlobalPerDay: 4}
	tests := []struct {
		name      string
		role      Role
		usage     Usage
		wantOK    bool
		wantLimit Limit
		wantNext  time.Time
	}{
		{name: "empty", role: Inviter, wantOK: true},
		{name: "one today", role: Inviter, usage: Usage{Created: 1}, wantOK: true},
		{name: "two today", role: Inviter, usage: Usage{Created: 2, CreatedOldest: []time.Time{ago(3 * time.Hour)}},
			wantLimit: "per-day", wantNext: ago(3 * time.Hour).Add(QuotaWindow)},
		{name: "three today, next when the second oldest ages out", role: Inviter,
			usage:     Usage{Created: 3, CreatedOldest: []time.Time{ago(5 * time.Hour), ago(3 * time.Hour)}},
			wantLimit: "per-day", wantNext: ago(3 * time.Hour).Add(QuotaWindow)},
		{name: "more oldest than needed", role: Inviter,
			usage:     Usage{Created: 2, CreatedOldest: []time.Time{ago(5 * time.Hour), ago(3 * time.Hour)}},
			wantLimit: "per-day", wantNext: ago(5 * time.Hour).Add(QuotaWindow)},
		{name: "too few oldest: no guess", role: Inviter,
			usage:     Usage{Created: 3, CreatedOldest: []time.Time{ago(5 * time.Hour)}},
			wantLimit: "per-day"},
		{name: "pending full", role: Inviter,
			usage:     Usage{Pending: 3, NextExpiry: now.Add(24 * time.Hour)},
			wantLimit: "pending", wantNext: now.Add(24 * time.Hour)},
		{name: "pending full, no known expiry", role: Inviter, usage: Usage{Pending: 4}, wantLimit: "pending"},
		{name: "pending below the limit", role: Inviter, usage: Usage{Created: 1, Pending: 2}, wantOK: true},
		{name: "global full", role: Inviter,
			usage:     Usage{GlobalCreated: 4, GlobalOldest: []time.Time{ago(3 * time.Hour)}},
			wantLimit: "global", wantNext: ago(3 * time.Hour).Add(QuotaWindow)},
		{name: "per-day before pending before global", role: Inviter,
			usage:     Usage{Created: 2, CreatedOldest: []time.Time{ago(time.Hour)}, Pending: 9, GlobalCreated: 9},
			wantLimit: "per-day", wantNext: ago(time.Hour).Add(QuotaWindow)},
		{name: "admins unlimited", role: Admin,
			usage: Usage{Created: 3, Pending: 9, GlobalCreated: 100}, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := CheckQuota(tc.role, lim, tc.usage, now)
			if ok != tc.wantOK || r.Limit != tc.wantLimit || !r.Next.Equal(tc.wantNext) {
				t.Errorf("CheckQuota = %+v, %v; want limit %q next %v ok %v", r, ok, tc.wantLimit, tc.wantNext, tc.wantOK)
			}
			if !ok && (r.Max == 0 || r.Count < r.Max) {
				t.Errorf("refusal %+v does not say the limit and the count that reached it", r)
			}
		})
	}
}

func TestWithOverrides(t *testing.T) {
	base := Limits{PerDay: 5, MaxPending: 10, GlobalPerDay: 100}
	if got := base.WithOverrides(0, 0); got != base {
		t.Errorf("no overrides: %+v", got)
	}
	if got := base.WithOverrides(2, 3); got != (Limits{PerDay: 2, MaxPending: 3, GlobalPerDay: 100}) {
		t.Errorf("overrides: %+v", got)
	}
}

// TestCheckEventUse: only the global limit stops an event link's visitor;
// the creator's own per-day and pending counts do not.
func TestCheckEventUse(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	lim := Limits{PerDay: 1, MaxPending: 1, GlobalPerDay: 2}
	busy := Usage{Created: 2, CreatedOldest: []time.Time{now, now}, Pending: 2}
	if _, ok := CheckEventUse(lim, busy, now); !ok {
		t.Error("the creator's own usage refused an event visitor")
	}
	full := Usage{GlobalCreated: 2, GlobalOldest: []time.Time{now.Add(-2 * time.Hour), now.Add(-time.Hour)}}
	r, ok := CheckEventUse(lim, full, now)
	if ok || r.Limit != LimitGlobal || r.Max != 2 || r.Count != 2 || !r.Next.Equal(now.Add(-2*time.Hour).Add(QuotaWindow)) {
		t.Errorf("global limit reached: %+v, %v", r, ok)
	}
}
