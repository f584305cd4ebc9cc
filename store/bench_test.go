package store

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The store benchmarks of issue 14: every operation on a request path or a
// timer, against databases seeded by Generate at several sizes. Generation
// happens once per size and process (1M takes about three minutes), so run the
// large size on its own:
//
//	go test ./store -run '^$' -bench . -sizes 1k,100k,1M
var benchSizes = flag.String("sizes", "1k,100k", "comma-separated database sizes for the benchmarks (1k, 100k, 1M)")

// benchInvites maps the size names to invite counts.
var benchInvites = map[string]int{"1k": 1_000, "10k": 10_000, "100k": 100_000, "1M": 1_000_000}

// benchDB is one generated database, opened once and shared by all
// benchmarks of the process (bbolt allows one open handle per file).
type benchDB struct {
	once   sync.Once
	s      *Store
	sample Sample
	err    error
}

var (
	benchMu  sync.Mutex
	benchDBs = map[string]*benchDB{}
	benchDir string
)

// TestMain removes the generated databases once the benchmarks are done.
func TestMain(m *testing.M) {
	code := m.Run()
	benchMu.Lock()
	for _, db := range benchDBs {
		if db.s != nil {
			db.s.Close()
		}
	}
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	benchMu.Unlock()
	os.Exit(code)
}

// eachSize runs fn as a sub-benchmark per size in -sizes, with the store
// of that size.
func eachSize(b *testing.B, fn func(b *testing.B, s *Store, smp Sample)) {
	for _, name := range strings.Split(*benchSizes, ",") {
		n, ok := benchInvites[name]
		if !ok {
			b.Fatalf("unknown size %q in -sizes", name)
		}
		b.Run(name, func(b *testing.B) {
			s, smp := benchStore(b, name, n)
			b.ResetTimer()
			fn(b, s, smp)
		})
	}
}

func benchStore(b *testing.B, name string, n int) (*Store, Sample) {
	benchMu.Lock()
	db := benchDBs[name]
	if db == nil {
		db = &benchDB{}
		benchDBs[name] = db
	}
	if benchDir == "" {
		dir, err := os.MkdirTemp("", "invitebot-bench-")
		if err != nil {
			benchMu.Unlock()
			b.Fatal(err)
		}
		benchDir = dir
	}
	dir := benchDir
	benchMu.Unlock()
	db.once.Do(func() {
		ctx := context.Background()
		path := filepath.Join(dir, name+".db")
		start := time.Now()
		db.sample, db.err = Generate(ctx, path, Profile{Invites: n})
		if db.err != nil {
			return
		}
		b.Logf("generated %s (%d invites) in %s", path, n, time.Since(start).Round(time.Millisecond))
		db.s, db.err = Open(ctx, path)
	})
	if db.err != nil {
		b.Fatal(db.err)
	}
	return db.s, db.sample
}

// pick cycles through list, so repeated calls ask about different records
// without the benchmark loop doing more than an index.
func pick(list []string, i int) string { return list[i%len(list)] }

func BenchmarkGlobalQuota(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := globalQuota(ctx, s, smp, smp.Now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkInviterQuota(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if err := inviterQuota(ctx, s, smp, pick(smp.Inviters, i), smp.Now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPendingInvites(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		var n int
		for b.Loop() {
			var err error
			if n, err = pendingSweep(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n), "invites")
	})
}

// BenchmarkPendingPage is one page of a sweep: what usage tracking holds in
// memory at a time.
func BenchmarkPendingPage(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := s.PendingPage(ctx, PendingRef{}, sweepPageSize); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUnrevokedCancelled(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		var n int
		for b.Loop() {
			var err error
			if n, err = unrevokedSweep(ctx, s, smp.Now); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n), "invites")
	})
}

func BenchmarkInvitesUsedBy(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			invs, err := s.InvitesUsedBy(ctx, pick(smp.UsedBy, i))
			if err != nil || len(invs) != 1 {
				b.Fatalf("InvitesUsedBy = %d invites, %v; want 1", len(invs), err)
			}
		}
	})
}

func BenchmarkAuditAboutJID(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Audit(ctx, pick(smp.Inviters, i), 20); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAuditAboutInvite(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Audit(ctx, pick(smp.InviteIDs, i), 20); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The point operations, for comparison: they were flat before the indexes
// and must stay so.

func BenchmarkInvite(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Invite(ctx, pick(smp.InviteIDs, i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkInvitesByInviter(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := s.InvitesByInviter(ctx, pick(smp.Inviters, i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchTokens numbers the tokens BenchmarkAddInvite adds, unique across
// its runs against one database.
var benchTokens atomic.Int64

func BenchmarkAddInvite(b *testing.B) {
	eachSize(b, func(b *testing.B, s *Store, smp Sample) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			inviter := pick(smp.Inviters, i)
			// Always the newest, as a real new invite is.
			n := benchTokens.Add(1)
			at := smp.Now.Add(time.Duration(n) * time.Millisecond)
			inv := Invite{Token: fmt.Sprintf("bench-add-%d", n), Inviter: inviter, Created: at, Expires: at.Add(7 * 24 * time.Hour)}
			if _, err := s.AddInvite(ctx, inv, AuditEntry{Time: at, Actor: inviter, Action: "invite.create"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// What follows is the store work behind the rows of the table, as
// the service does it.

// globalQuota counts the invites non-admins created in the quota window.
func globalQuota(ctx context.Context, s *Store, smp Sample, now time.Time) (int, error) {
	q, err := s.QuotaCounts(ctx, "", now.Add(-24*time.Hour), smp.Admins)
	return q.GlobalCreated, err
}

// inviterQuota reads what counts against one inviter's limits.
func inviterQuota(ctx context.Context, s *Store, smp Sample, inviter string, now time.Time) error {
	_, err := s.QuotaCounts(ctx, inviter, now.Add(-24*time.Hour), smp.Admins)
	return err
}

// sweepPageSize mirrors invites.sweepPage.
const sweepPageSize = 256

// pendingSweep reads what one usage-tracking sweep goes through, page by
// page as the sweep does.
func pendingSweep(ctx context.Context, s *Store) (int, error) {
	n := 0
	var after PendingRef
	for {
		page, err := s.PendingPage(ctx, after, sweepPageSize)
		if err != nil {
			return n, err
		}
		n += len(page)
		if len(page) < sweepPageSize {
			return n, nil
		}
		after = page[len(page)-1]
	}
}

// unrevokedSweep reads the cancelled invites whose revocation the sweep
// retries (those not yet expired).
func unrevokedSweep(ctx context.Context, s *Store, now time.Time) (int, error) {
	invs, err := s.UnrevokedCancelled(ctx, now)
	return len(invs), err
}
