package invites

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"durare.org/invitebot/store"
)

// fakeClock is usage tracking's clock in these tests: a check advances it
// by what the server takes, waiting for the pace advances it by the wait.
// Nothing here sleeps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// slowServer is a server whose token check takes cost on the fake clock:
// Prosody holding thousands of tokens. It refuses the tokens in used.
type slowServer struct {
	noRegistrar
	clock *fakeClock
	cost  time.Duration

	mu      sync.Mutex
	used    map[string]bool
	checked []string
	busy    time.Duration
}

func (s *slowServer) DialChecker(context.Context) (TokenChecker, error) { return s, nil }

func (s *slowServer) Check(ctx context.Context, token string) error {
	_ = s.clock.sleep(ctx, s.cost)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checked = append(s.checked, token)
	s.busy += s.cost
	if s.used[token] {
		return fmt.Errorf("token refused: %w", ErrTokenRejected)
	}
	return nil
}

func (s *slowServer) Close() error { return nil }

// stats returns the checks made so far and the server time they took.
func (s *slowServer) stats() (int, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.checked), s.busy
}

// trackingFixture is a service over a store of pending invites whose
// tracking runs on a fake clock against a slow server.
type trackingFixture struct {
	st       *store.Store
	svc      *Service
	clock    *fakeClock
	server   *slowServer
	interval time.Duration
}

// newTrackingFixture generates pending invites, made over the week
// before now and expiring long after it, and opens a service on them
// with tracking every interval.
func newTrackingFixture(t testing.TB, pending int, now time.Time, interval, cost time.Duration) *trackingFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "invitebot.db")
	if pending > 0 {
		_, err := store.Generate(context.Background(), path, store.Profile{
			Invites: pending, Inviters: 50, PendingFraction: 1, History: 7 * 24 * time.Hour,
			Expiry: 400 * 24 * time.Hour, Now: now,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.FillSchedule(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &trackingFixture{st: st, clock: &fakeClock{t: now}, interval: interval}
	f.server = &slowServer{clock: f.clock, cost: cost, used: map[string]bool{}}
	f.svc = NewService(Options{Store: st, Issuer: &countingIssuer{now: time.Now}, Domain: "durare.org",
		Registrar: f.server, Now: f.clock.now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.svc.pace.interval = interval
	f.svc.pace.budget = time.Duration(float64(interval) * sweepShare)
	f.svc.pace.now, f.svc.pace.sleep = f.clock.now, f.clock.sleep
	return f
}

// overdue makes every scheduled check overdue since before, each in the
// tier of its age: a bot that has been tracking a backlog it cannot keep
// up with, the worst line a new invite can join.
func (f *trackingFixture) overdue(t testing.TB, before time.Time) {
	t.Helper()
	ctx := context.Background()
	var all []store.Check
	for after := (store.Check{}); ; {
		page, err := f.st.DueChecks(ctx, before.Add(time.Hour), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1]
	}
	if len(all) == 0 {
		t.Fatal("no scheduled check to make overdue")
	}
	for i := range all {
		due := before.Add(-time.Duration(i) * time.Second)
		all[i] = nextCheck(all[i], before, f.interval)
		all[i].Due = due
	}
	if err := f.st.Reschedule(ctx, all); err != nil {
		t.Fatal(err)
	}
}

// sweepAt runs one sweep with the clock at at.
func (f *trackingFixture) sweepAt(t testing.TB, at time.Time) {
	t.Helper()
	f.clock.set(at)
	if err := f.svc.CheckPending(context.Background()); err != nil {
		t.Fatalf("sweep at %s: %v", at, err)
	}
}

// TestFreshInviteFirst: with 10,000 pending invites whose checks are all
// overdue, and a server that takes 0.4 s per check (Prosody 13 holding
// 10,000 tokens), an invite used right after it was made is found used
// within two intervals: it is checked before the backlog of old ones.
func TestFreshInviteFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 10,000 invites")
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f := newTrackingFixture(t, 10_000, now, time.Minute, 400*time.Millisecond)
	f.overdue(t, now)
	fresh, err := f.st.AddInvite(context.Background(), store.Invite{Token: "fresh-token", Inviter: "alice@x.org",
		Created: now, Expires: now.Add(7 * 24 * time.Hour), State: store.StatePending},
		store.AuditEntry{Time: now, Actor: "alice@x.org", Action: ActionInviteCreate})
	if err != nil {
		t.Fatal(err)
	}
	f.server.used["fresh-token"] = true
	for sweep := 1; sweep <= 2; sweep++ {
		f.sweepAt(t, now.Add(time.Duration(sweep)*f.interval))
		got, err := f.st.Invite(context.Background(), fresh.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == store.StateUsed {
			checks, _ := f.server.stats()
			t.Logf("found used in sweep %d, after %d checks", sweep, checks)
			return
		}
	}
	checks, _ := f.server.stats()
	t.Fatalf("a fresh invite's use was not found within two intervals (%d checks of the backlog made)", checks)
}

// TestTrackingPace: checks take no more than serverShare of the server's
// time, measured by its answer time, and one sweep ends within its share
// of the interval however slow the server is.
func TestTrackingPace(t *testing.T) {
	for _, cost := range []time.Duration{time.Millisecond, 400 * time.Millisecond, 20 * time.Second} {
		t.Run(cost.String(), func(t *testing.T) {
			now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			f := newTrackingFixture(t, 300, now, time.Minute, cost)
			start := now.Add(time.Minute)
			f.sweepAt(t, start)
			checks, busy := f.server.stats()
			elapsed := f.clock.now().Sub(start)
			if checks == 0 {
				t.Fatal("no check was made")
			}
			// The last check's idle time comes after the sweep: the span
			// ends when the next check may start.
			span := f.svc.pace.notBefore.Sub(start)
			// The documented share, not the constant: changing it must
			// change the documentation too.
			const documentedShare = 0.05
			if share := float64(busy) / float64(span); share > documentedShare*1.001 {
				t.Errorf("%d checks took %s of %s: %.1f%% of the server's time, want at most %.0f%%",
					checks, busy, span, 100*share, 100*documentedShare)
			}
			if limit := time.Duration(float64(f.interval)*sweepShare) + cost; elapsed > limit {
				t.Errorf("the sweep took %s, want at most %s", elapsed, limit)
			}
			if rate := float64(checks) / span.Seconds(); cost < time.Millisecond*10 && rate > maxChecksPerSecond*1.001 {
				t.Errorf("%.1f checks a second against a fast server, want at most %d", rate, maxChecksPerSecond)
			}
		})
	}
}

// TestScheduleSurvivesRestart: what was checked when is kept in the store,
// so a restarted bot does not check everything again from the start, and
// goes on with what was due.
func TestScheduleSurvivesRestart(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f := newTrackingFixture(t, 0, now, time.Minute, time.Millisecond)
	for i := range 5 {
		_, err := f.st.AddInvite(context.Background(), store.Invite{Token: fmt.Sprintf("tok-%d", i), Inviter: "alice@x.org",
			Created: now.Add(-time.Duration(i) * time.Hour), Expires: now.Add(7 * 24 * time.Hour), State: store.StatePending},
			store.AuditEntry{Time: now, Actor: "alice@x.org", Action: ActionInviteCreate})
		if err != nil {
			t.Fatal(err)
		}
	}
	f.sweepAt(t, now)
	if checks, _ := f.server.stats(); checks != 5 {
		t.Fatalf("first sweep made %d checks, want 5", checks)
	}
	// A new service on the same store: the bot restarted.
	g := &trackingFixture{st: f.st, clock: f.clock, server: &slowServer{clock: f.clock, cost: time.Millisecond}, interval: time.Minute}
	g.svc = NewService(Options{Store: f.st, Issuer: &countingIssuer{now: time.Now}, Domain: "durare.org",
		Registrar: g.server, Now: g.clock.now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	g.svc.pace.now, g.svc.pace.sleep = g.clock.now, g.clock.sleep
	g.sweepAt(t, now.Add(30*time.Second))
	if checks, _ := g.server.stats(); checks != 0 {
		t.Errorf("after a restart a sweep made %d checks of invites checked 30 s before, want none", checks)
	}
	g.sweepAt(t, now.Add(61*time.Second))
	if checks, _ := g.server.stats(); checks != 1 {
		// Only the newest is due again after an interval; the others, hours
		// old, after an eighth of their age.
		t.Errorf("an interval later a sweep made %d checks, want 1 (the newest)", checks)
	}
}

// BenchmarkSweep is one sweep of usage tracking at 1 k and 100 k pending
// invites, each sweep checking the same number of tokens (500: the
// budget of a 1-minute interval against a server answering in 4 ms): the
// bot's memory and work per sweep must not grow with the pending invites.
//
//	go test ./invites -run '^$' -bench Sweep -benchmem
func BenchmarkSweep(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			cost := 4 * time.Millisecond
			f := newTrackingFixture(b, n, now, time.Minute, cost)
			// 500 checks, each followed by 19 times its cost.
			f.svc.pace.budget = 500 * cost * 20
			at := now
			var peak uint64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				// Each sweep finds everything due again.
				at = at.Add(7 * time.Hour)
				f.sweepAt(b, at)
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			checks, _ := f.server.stats()
			b.ReportMetric(float64(checks)/float64(b.N), "checks/sweep")
			b.ReportMetric(float64(peak)/(1<<20), "heap-MiB")
		})
	}
}
