package invites

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Service benchmarks of issue 14 against databases seeded by
// store.Generate: Create for an inviter and for an admin, many inviters at
// once, and the peak memory of a process doing the bot's work. Generation
// happens once per size and process:
//
//	go test ./invites -run '^$' -bench . -sizes 1k,100k,1M
var benchSizes = flag.String("sizes", "1k,100k", "comma-separated database sizes for the benchmarks (1k, 100k, 1M)")

// benchParent is where the generated databases go; a tmpfs (/dev/shm)
// takes fsync out of the measurement and leaves the CPU work.
var benchParent = flag.String("benchdir", "", "directory for the generated databases (default: the system's temporary directory)")

var benchInvites = map[string]int{"1k": 1_000, "10k": 10_000, "100k": 100_000, "1M": 1_000_000}

// rssChildEnv names the database a child process of BenchmarkPeakRSS
// works on; see TestMain. rssWorkEnv passes the size of its work.
const (
	rssChildEnv = "INVITEBOT_RSS_CHILD_DB"
	rssWorkEnv  = "INVITEBOT_RSS_WORK"
)

// The child's work: this many inviters (and every eighth time an admin)
// create an invite, read the audit log about themselves and ask who
// invited an account, and a sweep follows, this many rounds. Before the
// indexes every one of these scanned the file, so at 1M make it smaller.
var (
	rssInviters = flag.Int("rss-inviters", 64, "inviters per round in BenchmarkPeakRSS's child")
	rssRounds   = flag.Int("rss-rounds", 3, "rounds in BenchmarkPeakRSS's child")
	// rssCold evicts the file from the page cache before the child starts,
	// as after a restart of the machine. With the file cached (it was just
	// generated), each page the child touches maps its cached neighbours
	// too (the kernel's fault-around, 64 KiB, which MADV_RANDOM does not
	// stop), so the warm figure counts far more than the pages read.
	rssCold = flag.Bool("rss-cold", false, "evict the database from the page cache before BenchmarkPeakRSS's child")
)

// TestMain doubles as the child process of BenchmarkPeakRSS, which needs a
// process of its own: the benchmark process has generated the database and
// its memory says nothing about the bot's.
func TestMain(m *testing.M) {
	if path := os.Getenv(rssChildEnv); path != "" {
		os.Exit(rssChild(path))
	}
	code := m.Run()
	benchMu.Lock()
	for _, db := range benchDBs {
		if db.svc != nil {
			db.svc.store.Close()
		}
	}
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	benchMu.Unlock()
	os.Exit(code)
}

// benchIssuer mints unique tokens without a server.
type benchIssuer struct {
	n   atomic.Uint64
	now func() time.Time
}

// benchRun tells this process's tokens from those earlier processes left
// in the same file.
var benchRun = strconv.FormatInt(time.Now().UnixNano(), 36)

func (f *benchIssuer) Mint(context.Context) (Minted, error) {
	tok := fmt.Sprintf("bench%s-%019d", benchRun, f.n.Add(1))
	return Minted{URI: "xmpp:durare.org?register;preauth=" + tok, Token: tok, Expires: f.now().Add(7 * 24 * time.Hour)}, nil
}

// benchClock starts at the end of the generated history and moves on a
// microsecond per reading, so new invites are always the newest.
func benchClock(start time.Time) func() time.Time {
	var ticks atomic.Int64
	return func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * time.Microsecond) }
}

// newBenchService wires a Service to st with limits no benchmark reaches:
// the cost measured is the check, not a refusal.
func newBenchService(st *store.Store, smp store.Sample) *Service {
	admins := map[string]bool{}
	for _, a := range smp.Admins {
		admins[a] = true
	}
	clock := benchClock(smp.Now)
	return NewService(Options{
		Store: st, Issuer: &benchIssuer{now: clock}, Domain: "durare.org", Admins: admins, Now: clock,
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Limits: policy.Limits{PerDay: 1 << 30, MaxPending: 1 << 30, GlobalPerDay: 1 << 30},
	})
}

type benchDB struct {
	once   sync.Once
	path   string
	svc    *Service
	sample store.Sample
	err    error
}

var (
	benchMu  sync.Mutex
	benchDBs = map[string]*benchDB{}
	benchDir string
)

// benchDatabase generates the database of size name once per process.
func benchDatabase(b *testing.B, name string) *benchDB {
	n, ok := benchInvites[name]
	if !ok {
		b.Fatalf("unknown size %q in -sizes", name)
	}
	benchMu.Lock()
	db := benchDBs[name]
	if db == nil {
		db = &benchDB{}
		benchDBs[name] = db
	}
	if benchDir == "" {
		dir, err := os.MkdirTemp(*benchParent, "invitebot-bench-")
		if err != nil {
			benchMu.Unlock()
			b.Fatal(err)
		}
		benchDir = dir
	}
	dir := benchDir
	benchMu.Unlock()
	db.once.Do(func() {
		db.path = filepath.Join(dir, name+".db")
		start := time.Now()
		db.sample, db.err = store.Generate(context.Background(), db.path, store.Profile{Invites: n})
		if db.err == nil {
			b.Logf("generated %s (%d invites) in %s", db.path, n, time.Since(start).Round(time.Millisecond))
		}
	})
	if db.err != nil {
		b.Fatal(db.err)
	}
	return db
}

// benchService returns the service over the database of size name, opened
// once and shared (bbolt allows one open handle per file).
func benchService(b *testing.B, name string) (*Service, store.Sample) {
	db := benchDatabase(b, name)
	benchMu.Lock()
	defer benchMu.Unlock()
	if db.svc == nil {
		st, err := store.Open(context.Background(), db.path)
		if err != nil {
			b.Fatal(err)
		}
		db.svc = newBenchService(st, db.sample)
	}
	return db.svc, db.sample
}

// releaseService closes the shared store so another process can open the
// file.
func releaseService(b *testing.B, name string) string {
	db := benchDatabase(b, name)
	benchMu.Lock()
	defer benchMu.Unlock()
	if db.svc != nil {
		if err := db.svc.store.Close(); err != nil {
			b.Fatal(err)
		}
		db.svc = nil
	}
	return db.path
}

func eachSize(b *testing.B, fn func(b *testing.B, name string)) {
	for _, name := range strings.Split(*benchSizes, ",") {
		b.Run(name, func(b *testing.B) { fn(b, name) })
	}
}

// actors looks up the Actors of jids once, outside the timed loop.
func actors(b *testing.B, svc *Service, jids []string) []Actor {
	out := make([]Actor, len(jids))
	for i, j := range jids {
		a, err := svc.Actor(context.Background(), j)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = a
	}
	return out
}

func BenchmarkCreate(b *testing.B) {
	for _, role := range []string{"inviter", "admin"} {
		b.Run(role, func(b *testing.B) {
			eachSize(b, func(b *testing.B, name string) {
				svc, smp := benchService(b, name)
				who := actors(b, svc, smp.Inviters)
				if role == "admin" {
					who = actors(b, svc, smp.Admins)
				}
				ctx := context.Background()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if _, err := svc.Create(ctx, who[i%len(who)]); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkCreateInviterVsAdmin alternates an inviter's Create with an
// admin's, so that both see the same file and the same disk: the target
// is an inviter's request within 1.2× of an admin's, which skips the
// quotas. It reports each side's time per Create and their ratio.
func BenchmarkCreateInviterVsAdmin(b *testing.B) {
	eachSize(b, func(b *testing.B, name string) {
		svc, smp := benchService(b, name)
		inviters, admins := actors(b, svc, smp.Inviters), actors(b, svc, smp.Admins)
		ctx := context.Background()
		var inviter, admin time.Duration
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			if _, err := svc.Create(ctx, inviters[i%len(inviters)]); err != nil {
				b.Fatal(err)
			}
			mid := time.Now()
			if _, err := svc.Create(ctx, admins[i%len(admins)]); err != nil {
				b.Fatal(err)
			}
			inviter += mid.Sub(start)
			admin += time.Since(mid)
		}
		b.ReportMetric(float64(inviter.Nanoseconds())/float64(b.N), "inviter-ns/op")
		b.ReportMetric(float64(admin.Nanoseconds())/float64(b.N), "admin-ns/op")
		b.ReportMetric(float64(inviter)/float64(admin), "inviter/admin")
	})
}

// concurrentInviters is how many inviters ask at once in
// BenchmarkCreateConcurrent, as in the measurement.
const concurrentInviters = 20

func BenchmarkCreateConcurrent(b *testing.B) {
	eachSize(b, func(b *testing.B, name string) {
		svc, smp := benchService(b, name)
		who := actors(b, svc, smp.Inviters)
		ctx := context.Background()
		var next, failed atomic.Int64
		var firstErr atomic.Value
		// RunParallel starts parallelism × GOMAXPROCS goroutines.
		b.SetParallelism(max(1, concurrentInviters/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			a := who[int(next.Add(1))%len(who)]
			for pb.Next() {
				// A failure under load is a result, not a broken benchmark:
				// it is counted and reported.
				if _, err := svc.Create(ctx, a); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
		if e := firstErr.Load(); e != nil {
			b.Logf("%d of %d creates failed, first: %s", failed.Load(), b.N, e)
		}
		b.ReportMetric(float64(int64(b.N)-failed.Load())/b.Elapsed().Seconds(), "creates/s")
		b.ReportMetric(float64(failed.Load())/float64(b.N), "failed/op")
	})
}

// BenchmarkPeakRSS runs the bot's store work on each database in a fresh
// process and reports that process's peak resident set, which includes
// the pages of the file it touched through bbolt's memory map.
func BenchmarkPeakRSS(b *testing.B) {
	eachSize(b, func(b *testing.B, name string) {
		path := releaseService(b, name)
		var open, peak float64
		for b.Loop() {
			if *rssCold {
				if err := evict(path); err != nil {
					b.Fatal(err)
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), rssChildEnv+"="+path, fmt.Sprintf("%s=%d,%d", rssWorkEnv, *rssInviters, *rssRounds))
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("child: %v\n%s", err, out)
			}
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 2 && f[0] == "open_kb" {
					open, _ = strconv.ParseFloat(f[1], 64)
				}
				if len(f) == 2 && f[0] == "peak_kb" {
					peak, _ = strconv.ParseFloat(f[1], 64)
				}
				if len(f) > 0 && f[0] == "phase" {
					b.Log(sc.Text())
				}
			}
			if peak == 0 {
				b.Fatalf("child reported no peak:\n%s", out)
			}
		}
		b.ReportMetric(open/1024, "open-MB")
		b.ReportMetric(peak/1024, "peak-MB")
	})
}

// evict drops the file's pages from the page cache.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// rssChild opens the database at path and does what the bot does over a
// while: inviters and admins create invites, usage tracking sweeps, admins
// ask who invited whom and read the audit log. It prints its peak resident
// set (VmHWM) after opening and at the end.
func rssChild(path string) int {
	ctx := context.Background()
	fail := func(err error) int { fmt.Println("error", err); return 1 }
	st, err := store.Open(ctx, path)
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	fmt.Println("open_kb", vmHWM())
	phase("open")
	// The sample is not stored in the file; it is recomputed from what a
	// generated database always holds.
	var smp store.Sample
	smp.Now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	smp.Admins = []string{"admin@durare.org", "ops@durare.org"}
	var inviters, rounds int
	if _, err := fmt.Sscanf(os.Getenv(rssWorkEnv), "%d,%d", &inviters, &rounds); err != nil || inviters <= 0 {
		return fail(fmt.Errorf("%s=%q: %v", rssWorkEnv, os.Getenv(rssWorkEnv), err))
	}
	grants, err := st.Grants(ctx)
	if err != nil {
		return fail(err)
	}
	for i, g := range grants {
		if i%max(1, len(grants)/inviters) == 0 && len(smp.Inviters) < inviters {
			smp.Inviters = append(smp.Inviters, g.JID)
		}
	}
	// An hour on, so that its invites come after any the benchmark
	// process added to the file, as new invites always do.
	smp.Now = smp.Now.Add(time.Hour)
	svc := newBenchService(st, smp)
	for round := range rounds {
		for i, j := range smp.Inviters {
			a, err := svc.Actor(ctx, j)
			if err != nil {
				return fail(err)
			}
			if _, err := svc.Create(ctx, a); err != nil {
				return fail(err)
			}
			if i%8 == round {
				admin, _ := svc.Actor(ctx, smp.Admins[0])
				if _, err := svc.Create(ctx, admin); err != nil {
					return fail(err)
				}
			}
		}
		phase("create")
		for _, j := range smp.Inviters {
			if _, err := svc.store.Audit(ctx, j, 20); err != nil {
				return fail(err)
			}
		}
		phase("audit")
		for i := range smp.Inviters {
			if _, err := svc.store.InvitesUsedBy(ctx, fmt.Sprintf("new%07d@durare.org", i*997)); err != nil {
				return fail(err)
			}
		}
		phase("whoinvited")
		if err := sweepReads(ctx, svc.store, svc.now()); err != nil {
			return fail(err)
		}
		phase("sweep")
	}
	fmt.Println("peak_kb", vmHWM())
	return 0
}

// phase prints the memory of the child after one kind of work, so a peak
// can be traced to it: the resident set split into the Go heap and the
// file's pages mapped through bbolt.
func phase(name string) {
	st := procStatus()
	fmt.Printf("phase %-10s peak %6d kB  rss %6d kB  anon %6d kB  file %6d kB\n", name, st["VmHWM"], st["VmRSS"], st["RssAnon"], st["RssFile"])
}

// procStatus reads the kB figures of /proc/self/status.
func procStatus() map[string]int {
	out := map[string]int{}
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(rest, " kB") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(rest, " kB")))
		if err == nil {
			out[name] = n
		}
	}
	return out
}

// sweepReads is the store work of one usage-tracking sweep, page by page
// as CheckPending reads it.
func sweepReads(ctx context.Context, st *store.Store, now time.Time) error {
	for after := (store.PendingRef{}); ; {
		page, err := st.PendingPage(ctx, after, sweepPage)
		if err != nil {
			return err
		}
		if len(page) < sweepPage {
			break
		}
		after = page[len(page)-1]
	}
	_, err := st.UnrevokedCancelled(ctx, now)
	return err
}

// vmHWM reads the process's peak resident set in kB.
func vmHWM() int {
	if n, ok := procStatus()["VmHWM"]; ok {
		return n
	}
	return -1
}
