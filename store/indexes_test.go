package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// indexBuckets are the buckets derived from the invites and the audit log.
var indexBuckets = []string{
	"invites_by_token", "invites_by_inviter", "invites_by_created", "invites_pending",
	"invites_pending_by_inviter", "pending_counts", "invites_unrevoked", "invites_by_used_by",
	"audit_by_about", "event_invites_by_inviter",
}

// checkIndexes rebuilds every index from the invites and the audit log, with
// encodings spelled out here rather than taken from the code under test,
// and reports where the file differs.
func checkIndexes(t testing.TB, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		want, err := expectedIndexes(tx)
		if err != nil {
			return err
		}
		for _, name := range indexBuckets {
			reportDiff(t, name, dumpBucket(tx, name), want[name])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func reportDiff(t testing.TB, name string, got, want map[string]string) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %q -> %q", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%q -> %q, want %q", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %q -> %q", k, g))
		}
	}
	sort.Strings(diffs)
	t.Errorf("index %s: %d differences, first: %s", name, len(diffs), strings.Join(diffs[:min(5, len(diffs))], "; "))
}

func dumpBucket(tx *bbolt.Tx, name string) map[string]string {
	out := map[string]string{}
	if b := tx.Bucket([]byte(name)); b != nil {
		b.ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	}
	return out
}

// expectedIndexes derives the indexes from the records.
func expectedIndexes(tx *bbolt.Tx) (map[string]map[string]string, error) {
	want := map[string]map[string]string{}
	for _, name := range indexBuckets {
		want[name] = map[string]string{}
	}
	be := func(n uint64) string { return string(binary.BigEndian.AppendUint64(nil, n)) }
	expiry := func(t time.Time) string {
		if t.IsZero() {
			return be(math.MaxUint64)
		}
		return be(uint64(t.UnixNano()))
	}
	str := func(s string) string { return string(binary.AppendUvarint(nil, uint64(len(s)))) + s }
	var byInviter, byCreated, byEvent []string
	inviterOf := map[string]string{}
	isEvent := map[string]bool{}
	pending := map[string]uint64{}
	err := tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
		var inv Invite
		if err := json.Unmarshal(v, &inv); err != nil {
			return err
		}
		id := string(k)
		want["invites_by_token"][inv.Token] = id
		ik := inv.Inviter + "\x00" + be(uint64(inv.Created.UnixNano())) + id
		byInviter = append(byInviter, ik)
		ck := be(uint64(inv.Created.UnixNano())) + id
		byCreated = append(byCreated, ck)
		inviterOf[ck] = inv.Inviter
		if inv.Event != "" {
			// Event link invites: marked, and counted apart.
			inviterOf[ck] = "\x00" + inv.Inviter
			isEvent[ik] = true
			byEvent = append(byEvent, ik)
		}
		if inv.State == StatePending {
			want["invites_pending"][expiry(inv.Expires)+id] = str(inv.Token) + inv.Inviter
			want["invites_pending_by_inviter"][inv.Inviter+"\x00"+expiry(inv.Expires)+id] = ""
			if inv.Event == "" {
				pending[inv.Inviter]++
			}
		}
		if inv.State == StateCancelled && !inv.Revoked {
			want["invites_unrevoked"][expiry(inv.Expires)+id] = ""
		}
		if inv.UsedBy != "" {
			want["invites_by_used_by"][str(inv.UsedBy)+id] = ""
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for inviter, n := range pending {
		want["pending_counts"][inviter] = be(n)
	}
	slices.Sort(byInviter)
	rank, last := uint64(0), ""
	for _, k := range byInviter {
		inviter := k[:strings.IndexByte(k, 0)]
		if inviter != last {
			rank, last = 0, inviter
		}
		rank++
		want["invites_by_inviter"][k] = be(rank)
		if isEvent[k] {
			want["invites_by_inviter"][k] += "\x00"
		}
	}
	slices.Sort(byEvent)
	rank, last = 0, ""
	for _, k := range byEvent {
		inviter := k[:strings.IndexByte(k, 0)]
		if inviter != last {
			rank, last = 0, inviter
		}
		rank++
		want["event_invites_by_inviter"][k] = be(rank)
	}
	slices.Sort(byCreated)
	for i, k := range byCreated {
		want["invites_by_created"][k] = be(uint64(i+1)) + inviterOf[k]
	}
	err = tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
		var e AuditEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		for _, about := range []string{e.Actor, e.Subject} {
			if about != "" {
				want["audit_by_about"][str(about)+string(k)] = ""
			}
		}
		return nil
	})
	return want, err
}

// TestIndexesFollowWrites runs random writes, out-of-order creation times
// included, and checks after each batch that the indexes are what the
// records say and that every index-backed question gets the answer a scan
// of the records gives.
func TestIndexesFollowWrites(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(14, 14))
	inviters := []string{"a@x.org", "a@x.org.evil", "b@y.org", "admin@durare.org"}
	accounts := []string{"", "", "new1@durare.org", "new2@durare.org"}
	base := t0
	var ids []string
	at := func() time.Time { return base.Add(time.Duration(rng.Int64N(int64(96*time.Hour))) - 48*time.Hour) }
	for step := range 400 {
		switch r := rng.IntN(10); {
		case r < 4 || len(ids) == 0:
			inv := testInvite(inviters[rng.IntN(len(inviters))], fmt.Sprintf("tok-%d", step), at())
			switch rng.IntN(8) {
			case 0:
				inv.Expires = time.Time{}
			case 1:
				inv.State, inv.UsedBy = StateUsed, accounts[rng.IntN(len(accounts))]
			case 2:
				inv.State, inv.Revoked = StateCancelled, rng.IntN(2) == 0
			}
			if rng.IntN(4) == 0 {
				inv.Event = "ev1" // an event link's invite, counted apart
			}
			got, err := s.AddInvite(ctx, inv, createEntry(inv.Inviter, inv.Created))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, got.ID)
		case r < 7 && rng.IntN(4) == 0:
			_, _, err := s.MarkUsedBy(ctx, ids[rng.IntN(len(ids))], accounts[2+rng.IntN(2)],
				AuditEntry{Actor: "system", Action: "invite.use"})
			if err != nil && !errors.Is(err, ErrNotPending) {
				t.Fatal(err)
			}
		case r < 7:
			to := []State{StateUsed, StateCancelled, StateExpired}[rng.IntN(3)]
			_, err := s.SetInviteState(ctx, ids[rng.IntN(len(ids))], to, accounts[rng.IntN(len(accounts))],
				AuditEntry{Actor: "system", Action: "invite." + string(to)})
			if err != nil && !errors.Is(err, ErrNotPending) {
				t.Fatal(err)
			}
		case r < 8:
			if err := s.MarkRevoked(ctx, ids[rng.IntN(len(ids))], AuditEntry{Actor: "system", Action: "invite.token-revoked"}); err != nil {
				t.Fatal(err)
			}
		default:
			actor := inviters[rng.IntN(len(inviters))]
			subject := []string{"", actor, ids[rng.IntN(len(ids))], "invites"}[rng.IntN(4)]
			if err := s.AppendAudit(ctx, AuditEntry{Actor: actor, Action: "x", Subject: subject}); err != nil {
				t.Fatal(err)
			}
		}
		if step%40 == 39 {
			checkIndexes(t, s)
			checkAnswers(t, s, rng, inviters, accounts)
			if t.Failed() {
				t.Fatalf("after step %d", step)
			}
		}
	}
}

// checkAnswers compares the index-backed reads with answers computed from
// all records.
func checkAnswers(t *testing.T, s *Store, rng *rand.Rand, inviters, accounts []string) {
	t.Helper()
	ctx := t.Context()
	var all []Invite
	s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketInvites).ForEach(func(_, v []byte) error {
			var inv Invite
			json.Unmarshal(v, &inv)
			all = append(all, inv)
			return nil
		})
	})
	since := t0.Add(time.Duration(rng.Int64N(int64(96*time.Hour))) - 48*time.Hour)
	exclude := []string{"admin@durare.org"}
	for _, inviter := range inviters {
		var want QuotaCounts
		var mine, global []time.Time
		var next time.Time
		for _, inv := range all {
			// Event link invites count toward the global limit whoever
			// made the link, and not toward the inviter's own.
			if !inv.Created.Before(since) {
				if inv.Inviter == inviter && inv.Event == "" {
					want.Created++
					mine = append(mine, inv.Created)
				}
				if !slices.Contains(exclude, inv.Inviter) || inv.Event != "" {
					want.GlobalCreated++
					global = append(global, inv.Created)
				}
			}
			if inv.Inviter == inviter && inv.State == StatePending && inv.Event == "" {
				want.Pending++
				if inv.Expires.After(since) && (next.IsZero() || inv.Expires.Before(next)) {
					next = inv.Expires
				}
			}
		}
		if got, err := s.QuotaCounts(ctx, inviter, since, exclude); err != nil || got != want {
			t.Errorf("QuotaCounts(%s) = %+v, %v; scan says %+v", inviter, got, err, want)
		}
		sortTimes := func(ts []time.Time) []time.Time {
			slices.SortFunc(ts, time.Time.Compare)
			return ts[:min(3, len(ts))]
		}
		if got, _ := s.OldestCreatedSince(ctx, inviter, since, nil, 3); !slices.EqualFunc(got, sortTimes(mine), time.Time.Equal) {
			t.Errorf("OldestCreatedSince(%s) = %v; scan says %v", inviter, got, sortTimes(mine))
		}
		if got, _ := s.OldestCreatedSince(ctx, "", since, exclude, 3); !slices.EqualFunc(got, sortTimes(global), time.Time.Equal) {
			t.Errorf("OldestCreatedSince(everyone) = %v; scan says %v", got, sortTimes(global))
		}
		if got, _ := s.NextPendingExpiry(ctx, inviter, since); !got.Equal(next) {
			t.Errorf("NextPendingExpiry(%s) = %v; scan says %v", inviter, got, next)
		}
	}
	var pending, unrevoked []string
	for _, inv := range all {
		if inv.State == StatePending {
			pending = append(pending, inv.ID)
		}
		if inv.State == StateCancelled && !inv.Revoked && (inv.Expires.IsZero() || inv.Expires.After(since)) {
			unrevoked = append(unrevoked, inv.ID)
		}
	}
	var paged []string
	for after := (PendingRef{}); ; {
		page, err := s.PendingPage(ctx, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			paged = append(paged, r.ID)
		}
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1]
	}
	got, _ := s.UnrevokedCancelled(ctx, since)
	for _, pair := range [][2][]string{{paged, pending}, {ids(got), unrevoked}} {
		slices.Sort(pair[0])
		slices.Sort(pair[1])
		if !slices.Equal(pair[0], pair[1]) {
			t.Errorf("index read %v; scan says %v", pair[0], pair[1])
		}
	}
	for _, account := range accounts[2:] {
		var want []string
		for _, inv := range all {
			if inv.UsedBy == account {
				want = append(want, inv.ID)
			}
		}
		got, _ := s.InvitesUsedBy(ctx, account)
		if g := ids(got); !slices.Equal(slices.Sorted(slices.Values(g)), slices.Sorted(slices.Values(want))) {
			t.Errorf("InvitesUsedBy(%s) = %v; scan says %v", account, g, want)
		}
	}
	log, _ := s.Audit(ctx, "", 1<<30)
	for _, about := range append(inviters, "invites", all[0].ID) {
		var want []AuditEntry
		for _, e := range log {
			if (e.Actor == about || e.Subject == about) && len(want) < 5 {
				want = append(want, e)
			}
		}
		if got, err := s.Audit(ctx, about, 5); err != nil || !reflect.DeepEqual(got, append([]AuditEntry{}, want...)) {
			t.Errorf("Audit(%s, 5) = %v, %v; scan says %v", about, got, err, want)
		}
	}
}

func ids(invs []Invite) []string {
	out := []string{}
	for _, inv := range invs {
		out = append(out, inv.ID)
	}
	return out
}

// TestOutOfOrderCreation pins the ranked indexes' one costly case: an
// invite created before others already stored moves their ranks.
func TestOutOfOrderCreation(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	for i, h := range []int{5, 1, 3, 0, 4, 2} {
		mustAdd(t, s, testInvite("a@x.org", fmt.Sprintf("t%d", i), t0.Add(time.Duration(h)*time.Hour)))
		mustAdd(t, s, testInvite("b@y.org", fmt.Sprintf("u%d", i), t0.Add(time.Duration(h)*time.Hour)))
	}
	for h := range 7 {
		q, err := s.QuotaCounts(ctx, "a@x.org", t0.Add(time.Duration(h)*time.Hour), nil)
		if want := (QuotaCounts{Created: 6 - h, Pending: 6, GlobalCreated: 2 * (6 - h)}); err != nil || q != want {
			t.Errorf("QuotaCounts since +%dh = %+v, %v; want %+v", h, q, err, want)
		}
	}
	checkIndexes(t, s)
}

func TestAuditLongActor(t *testing.T) {
	s, _ := openTest(t)
	long := strings.Repeat("a", maxKeyPart+1)
	for _, e := range []AuditEntry{{Actor: long, Action: "x"}, {Actor: "a", Action: "x", Subject: long}} {
		if err := s.AppendAudit(t.Context(), e); !errors.Is(err, ErrInvalid) {
			t.Errorf("AppendAudit with %d-byte actor or subject: %v, want ErrInvalid", len(long), err)
		}
	}
	if got, err := s.Audit(t.Context(), long, 1); err != nil || len(got) != 0 {
		t.Errorf("Audit(long) = %v, %v", got, err)
	}
}

// migrateInvites sizes TestMigrateGenerated; run it once at a million to
// see what an upgrade of a large file costs:
//
//	go test ./store -run TestMigrateGenerated -migrate-invites 1000000 -v
//
// The default is small because the suite runs under -race on shared
// machines; the batch boundaries are covered by TestMigrateInterrupted.
var migrateInvites = flag.Int("migrate-invites", 10_000, "invites in the database TestMigrateGenerated upgrades")

// TestMigrateGenerated upgrades a large v5 file: a generated database
// stripped back to the v5 layout. Its indexes must come out byte for byte
// as the write path made them in the generated original.
func TestMigrateGenerated(t *testing.T) {
	ctx := t.Context()
	n := *migrateInvites
	if testing.Short() {
		n = 2_000
	}
	gen, old := generatedPair(t, n)
	start := time.Now()
	s, err := Open(ctx, old)
	if err != nil {
		t.Fatalf("Open v5 file: %v", err)
	}
	t.Logf("migrated %d invites in %s", n, time.Since(start).Round(time.Millisecond))
	checkIndexes(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range indexBuckets {
		reportDiff(t, name, rawDump(t, old, name), rawDump(t, gen, name))
	}
}

// TestMigrateInterrupted stops an upgrade at every point where the build
// looks at its context, one Open after another on the same file, with
// batches so small that every boundary of the build (reads, sorted runs,
// transactions, ranks carried across them) is crossed many times, and with
// event link invites among the records. Each stopped Open must leave the
// file at v5; the Open that finally gets through must produce the indexes
// the write path made, byte for byte.
func TestMigrateInterrupted(t *testing.T) {
	ctx := t.Context()
	for _, v := range []*int{&indexBuildMemory, &indexBuildPuts, &indexBuildReads} {
		old := *v
		t.Cleanup(func() { *v = old })
	}
	indexBuildMemory, indexBuildPuts, indexBuildReads = 20_000, 50, 61
	gen, old := generatedPair(t, 300, func(s *Store) {
		// Event link invites of four inviters, marked in the inviter
		// index and ranked in their own.
		for i := range 120 {
			who := fmt.Sprintf("ev%d@x.org", i%4)
			inv := testInvite(who, fmt.Sprintf("event-tok-%d", i), t0.Add(time.Duration(i)*time.Minute))
			inv.Event = fmt.Sprintf("ev%d", i%3)
			if _, err := s.AddInvite(ctx, inv, createEntry(who, inv.Created)); err != nil {
				t.Fatal(err)
			}
		}
	})

	stops := 0
	for budget := 1; ; budget++ {
		s, err := Open(&stopAfter{Context: ctx, left: budget}, old)
		if err == nil {
			checkIndexes(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Open stopped after %d context checks: %v", budget, err)
		}
		if v := rawVersion(t, old); v != "5" {
			t.Fatalf("Open stopped after %d context checks left version %q", budget, v)
		}
		stops++
	}
	t.Logf("stopped at %d points", stops)
	if stops < 100 {
		t.Errorf("the upgrade stopped at only %d points; the batches are not small enough to test it", stops)
	}
	if v := rawVersion(t, old); v != strconv.Itoa(latestVersion()) {
		t.Errorf("upgraded file has version %q", v)
	}
	for _, name := range indexBuckets {
		reportDiff(t, name, rawDump(t, old, name), rawDump(t, gen, name))
	}
}

// stopAfter is a context that reports itself cancelled from its left-th
// call of Err on.
type stopAfter struct {
	context.Context
	left int
}

func (c *stopAfter) Err() error {
	if c.left--; c.left < 0 {
		return context.Canceled
	}
	return c.Context.Err()
}

// generatedPair generates a database of n invites, lets each of more add
// to it, and returns its path and that of a copy taken back to schema v5.
func generatedPair(t *testing.T, n int, more ...func(*Store)) (gen, old string) {
	t.Helper()
	dir := t.TempDir()
	gen = filepath.Join(dir, "generated.db")
	start := time.Now()
	if _, err := Generate(t.Context(), gen, Profile{Invites: n}); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d invites in %s", n, time.Since(start).Round(time.Millisecond))
	if len(more) > 0 {
		s, err := Open(t.Context(), gen)
		if err != nil {
			t.Fatal(err)
		}
		for _, add := range more {
			add(s)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	old = filepath.Join(dir, "v5.db")
	copyTo(t, gen, old)
	downgradeBeforeIndexes(t, old)
	if v := rawVersion(t, old); v != "5" {
		t.Fatalf("downgraded file has version %q", v)
	}
	return gen, old
}

func copyTo(t *testing.T, src, dst string) {
	t.Helper()
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// downgradeBeforeIndexes turns a current file into what v5 wrote for the same
// records: no v6 buckets, empty inviter index values, version 5.
func downgradeBeforeIndexes(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"invites_by_created", "invites_pending", "invites_pending_by_inviter", "pending_counts",
			"invites_unrevoked", "invites_by_used_by", "audit_by_about", "event_invites_by_inviter"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return fmt.Errorf("delete %s: %w", name, err)
			}
		}
		b := tx.Bucket([]byte("invites_by_inviter"))
		var keys [][]byte
		b.ForEach(func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		})
		for _, k := range keys {
			if err := b.Put(k, []byte{}); err != nil {
				return err
			}
		}
		// v5: requests and events came before the indexes migration.
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("5"))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rawDump(t *testing.T, path, bucket string) map[string]string {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out map[string]string
	db.View(func(tx *bbolt.Tx) error {
		out = dumpBucket(tx, bucket)
		return nil
	})
	return out
}

// TestGenerate checks the generated history has the shape Profile asks for
// and that the same profile gives the same records.
func TestGenerate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := Profile{Invites: 3000, Inviters: 50}
	smp, err := Generate(ctx, filepath.Join(dir, "a.db"), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(ctx, filepath.Join(dir, "a.db"), p); err == nil {
		t.Error("Generate overwrote an existing file")
	}
	if _, err := Generate(ctx, filepath.Join(dir, "c.db"), Profile{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Generate without invites: %v, want ErrInvalid", err)
	}
	smp2, err := Generate(ctx, filepath.Join(dir, "b.db"), p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(smp, smp2) {
		t.Errorf("same profile, different samples")
	}
	for _, name := range []string{"invites", "audit", "grants"} {
		reportDiff(t, name, rawDump(t, filepath.Join(dir, "b.db"), name), rawDump(t, filepath.Join(dir, "a.db"), name))
	}

	s, err := Open(ctx, filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkIndexes(t, s)
	pending, _ := s.PendingInvites(ctx)
	if len(pending) != 300 {
		t.Errorf("%d pending, want 10%% of 3000", len(pending))
	}
	for _, inv := range pending {
		if !inv.Expires.After(smp.Now) {
			t.Errorf("pending invite %s expired at %s, before the end of the history", inv.ID, inv.Expires)
		}
	}
	if grants, _ := s.Grants(ctx); len(grants) != 50 {
		t.Errorf("%d grants, want 50", len(grants))
	}
	if len(smp.UsedBy) == 0 || len(smp.InviteIDs) == 0 || len(smp.Inviters) == 0 {
		t.Errorf("sample %+v lacks records", smp)
	}
	for _, account := range smp.UsedBy {
		if invs, err := s.InvitesUsedBy(ctx, account); err != nil || len(invs) != 1 {
			t.Errorf("sampled account %s: %d invites, %v", account, len(invs), err)
		}
	}
	if n := auditLen(t, s); n < 2*3000 {
		t.Errorf("%d audit entries, want about two per invite and more", n)
	}
}

// TestExpiryEncoding pins how expiry times read back from the
// expiry-ordered keys: exactly within 1970..2262, clamped outside, and an
// unknown expiry as unknown (and sorted last).
func TestExpiryEncoding(t *testing.T) {
	tests := []struct{ in, want time.Time }{
		{time.Time{}, time.Time{}},
		{t0, t0},
		{time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, 0).UTC()},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, math.MaxInt64).UTC()},
	}
	for _, tt := range tests {
		if got := expiryFrom(expiryBytes(tt.in)); !got.Equal(tt.want) || got.IsZero() != tt.want.IsZero() {
			t.Errorf("expiry %v reads back as %v, want %v", tt.in, got, tt.want)
		}
	}
	if bytes.Compare(expiryBytes(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)), expiryBytes(time.Time{})) >= 0 {
		t.Error("an unknown expiry does not sort after every known one")
	}
}

// TestMigrateEventInvites upgrades a v5 file holding event link invites
// (an admin's among them): the indexes migration marks and counts them
// apart exactly as the write path does.
func TestMigrateEventInvites(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.db")
	s, err := Open(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	for i, who := range []string{"a@x.org", "admin@durare.org", "a@x.org", "admin@durare.org"} {
		inv := testInvite(who, fmt.Sprintf("tok-%d", i), t0.Add(time.Duration(i)*time.Minute))
		if i >= 1 {
			inv.Event = "ev1"
		}
		if _, err := s.AddInvite(ctx, inv, createEntry(who, inv.Created)); err != nil {
			t.Fatal(err)
		}
	}
	want := QuotaCounts{Created: 1, Pending: 1, GlobalCreated: 4}
	if q, err := s.QuotaCounts(ctx, "a@x.org", t0, []string{"admin@durare.org"}); err != nil || q != want {
		t.Errorf("QuotaCounts = %+v, %v; want %+v", q, err, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "v5.db")
	copyTo(t, orig, old)
	downgradeBeforeIndexes(t, old)
	s, err = Open(ctx, old)
	if err != nil {
		t.Fatalf("Open v5 file: %v", err)
	}
	checkIndexes(t, s)
	if q, err := s.QuotaCounts(ctx, "a@x.org", t0, []string{"admin@durare.org"}); err != nil || q != want {
		t.Errorf("after the upgrade QuotaCounts = %+v, %v; want %+v", q, err, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range indexBuckets {
		reportDiff(t, name, rawDump(t, old, name), rawDump(t, orig, name))
	}
}
