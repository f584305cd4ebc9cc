package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// updateFixture regenerates testdata/store-v1.db. It is a flag so the frozen
// file is only rewritten on purpose:
//
//	go test ./store -run TestGenerateV1Fixture -update-fixture
var updateFixture = flag.Bool("update-fixture", false, "rewrite testdata/store-v1.db from the v1 generator")

const v1FixturePath = "../testdata/store-v1.db"

// kv is one raw key/value pair as an old program wrote it.
type kv struct{ key, value string }

// v1Data is the content of a v1 database, as raw JSON exactly as the first
// release encoded it. It is spelled out as text rather than built from the
// current types so that changing Invite or Grant cannot change what "v1"
// means.
type v1Data struct {
	invites []kv     // id -> invite JSON
	grants  []kv     // jid -> grant JSON
	audit   []string // entry JSON, in sequence order; seq comes from NextSequence
}

// v1Fixture is what testdata/store-v1.db holds. The v1 program's "changed"
// field had omitempty, which does nothing for time.Time, so it wrote zero
// times out in full; the fixture keeps that quirk.
var v1Fixture = v1Data{
	invites: []kv{
		{"k7q3xw2mfa4ndz5p", `{"id":"k7q3xw2mfa4ndz5p","token":"v1-token-alice-1","uri":"xmpp:durare.org?register;preauth=v1-token-alice-1","landing_url":"https://durare.org/invite/?v1-token-alice-1","domain":"durare.org","inviter":"alice@example.org","created":"2024-11-02T10:00:00Z","expires":"2024-11-09T10:00:00Z","state":"used","note":"for Carol","used_by":"carol@durare.org","changed":"2024-11-03T08:30:00Z"}`},
		{"m2rt6yhe3bq7wxka", `{"id":"m2rt6yhe3bq7wxka","token":"v1-token-alice-2","uri":"xmpp:durare.org?register;preauth=v1-token-alice-2","domain":"durare.org","inviter":"alice@example.org","created":"2024-12-01T09:15:00Z","expires":"2024-12-08T09:15:00Z","state":"pending","changed":"0001-01-01T00:00:00Z"}`},
		{"c4vn5jdu7s2pezlq", `{"id":"c4vn5jdu7s2pezlq","token":"v1-token-bob-1","uri":"xmpp:durare.org?register;preauth=v1-token-bob-1","domain":"durare.org","inviter":"bob@other.net","created":"2024-11-20T18:45:30.123456789Z","expires":"2024-11-27T18:45:30.123456789Z","state":"pending","changed":"0001-01-01T00:00:00Z"}`},
	},
	grants: []kv{
		{"alice@example.org", `{"jid":"alice@example.org","granted_by":"admin@durare.org","granted_at":"2024-10-30T12:00:00Z","note":"community helper"}`},
		{"bob@other.net", `{"jid":"bob@other.net","granted_by":"admin@durare.org","granted_at":"2024-11-15T12:00:00Z"}`},
	},
	audit: []string{
		`{"seq":1,"time":"2024-10-30T12:00:00Z","actor":"admin@durare.org","action":"grant","subject":"alice@example.org"}`,
		`{"seq":2,"time":"2024-11-02T10:00:00Z","actor":"alice@example.org","action":"invite.create","subject":"k7q3xw2mfa4ndz5p"}`,
		`{"seq":3,"time":"2024-11-03T08:30:00Z","actor":"system","action":"invite.use","subject":"k7q3xw2mfa4ndz5p","detail":"carol@durare.org"}`,
		`{"seq":4,"time":"2024-11-15T12:00:00Z","actor":"admin@durare.org","action":"grant","subject":"bob@other.net"}`,
		`{"seq":5,"time":"2024-11-20T18:45:30.123456789Z","actor":"bob@other.net","action":"invite.create","subject":"c4vn5jdu7s2pezlq"}`,
		`{"seq":6,"time":"2024-12-01T09:15:00Z","actor":"alice@example.org","action":"invite.create","subject":"m2rt6yhe3bq7wxka"}`,
	},
}

// writeV1 creates a v1 database at path with raw bbolt calls: the v1 bucket
// set, schema_version "1", and data. It deliberately does not use the store,
// whose code will keep moving on while v1 stays what it was.
func writeV1(path string, data v1Data) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		buckets := map[string]*bbolt.Bucket{}
		for _, name := range []string{"meta", "invites", "grants", "audit"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			buckets[name] = b
		}
		if err := buckets["meta"].Put([]byte("schema_version"), []byte("1")); err != nil {
			return err
		}
		for _, p := range data.invites {
			if err := buckets["invites"].Put([]byte(p.key), []byte(p.value)); err != nil {
				return err
			}
		}
		for _, p := range data.grants {
			if err := buckets["grants"].Put([]byte(p.key), []byte(p.value)); err != nil {
				return err
			}
		}
		for _, e := range data.audit {
			seq, err := buckets["audit"].NextSequence()
			if err != nil {
				return err
			}
			if err := buckets["audit"].Put(binary.BigEndian.AppendUint64(nil, seq), []byte(e)); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestGenerateV1Fixture regenerates the fixture with -update-fixture. Without
// it, it checks that the committed file is exactly what the generator writes,
// so the fixture and its description in v1Fixture cannot drift apart.
func TestGenerateV1Fixture(t *testing.T) {
	if *updateFixture {
		tmp := v1FixturePath + ".tmp"
		os.Remove(tmp)
		if err := writeV1(tmp, v1Fixture); err != nil {
			t.Fatalf("write v1 fixture: %v", err)
		}
		if err := os.Rename(tmp, v1FixturePath); err != nil {
			t.Fatalf("install fixture: %v", err)
		}
		return
	}
	fresh := filepath.Join(t.TempDir(), "v1.db")
	if err := writeV1(fresh, v1Fixture); err != nil {
		t.Fatalf("write v1 database: %v", err)
	}
	want, err := os.ReadFile(v1FixturePath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the v1 generator writes; regenerate with -update-fixture if v1Fixture changed on purpose", v1FixturePath)
	}
}

// copyFile copies src into dir and returns the new path, so tests never
// open, and so never upgrade, the committed fixture itself.
func copyFile(t *testing.T, src, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("read %s: %v", src, err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, raw, 0o600); err != nil {
		t.Fatalf("write %s: %v", dst, err)
	}
	return dst
}

// rawVersion reads meta/schema_version without the store.
func rawVersion(t *testing.T, path string) string {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("raw open %s: %v", path, err)
	}
	defer db.Close()
	var v string
	db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte("meta")); b != nil {
			v = string(b.Get([]byte("schema_version")))
		}
		return nil
	})
	return v
}

// TestFixtureIsV1 guards the fixture itself: if it were ever replaced by a
// current database, TestMigrateV1 would pass without testing any migration.
func TestFixtureIsV1(t *testing.T) {
	if v := rawVersion(t, v1FixturePath); v != "1" {
		t.Errorf("fixture schema_version = %q, want \"1\"", v)
	}
	want := []string{"audit", "grants", "invites", "meta"}
	if got := bucketNames(t, v1FixturePath); !reflect.DeepEqual(got, want) {
		t.Errorf("fixture buckets = %q, want %q", got, want)
	}
}

func TestMigrateV1(t *testing.T) {
	ctx := t.Context()
	orig, err := os.ReadFile(v1FixturePath)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	path := copyFile(t, v1FixturePath, t.TempDir())
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open v1 fixture: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	if v, err := s.SchemaVersion(ctx); err != nil || v != latestVersion() {
		t.Fatalf("SchemaVersion after upgrade = %d, %v; want %d", v, err, latestVersion())
	}

	// Expected values are written out independently of v1Fixture so the
	// test checks the committed file, not the generator's input.
	ts := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	aliceUsed := Invite{
		ID: "k7q3xw2mfa4ndz5p", Token: "v1-token-alice-1",
		URI:        "xmpp:durare.org?register;preauth=v1-token-alice-1",
		LandingURL: "https://durare.org/invite/?v1-token-alice-1",
		Domain:     "durare.org", Inviter: "alice@example.org",
		Created: ts("2024-11-02T10:00:00Z"), Expires: ts("2024-11-09T10:00:00Z"),
		State: StateUsed, Note: "for Carol", UsedBy: "carol@durare.org",
		Changed: ts("2024-11-03T08:30:00Z"),
	}
	alicePending := Invite{
		ID: "m2rt6yhe3bq7wxka", Token: "v1-token-alice-2",
		URI:    "xmpp:durare.org?register;preauth=v1-token-alice-2",
		Domain: "durare.org", Inviter: "alice@example.org",
		Created: ts("2024-12-01T09:15:00Z"), Expires: ts("2024-12-08T09:15:00Z"),
		State: StatePending,
	}
	bobPending := Invite{
		ID: "c4vn5jdu7s2pezlq", Token: "v1-token-bob-1",
		URI:    "xmpp:durare.org?register;preauth=v1-token-bob-1",
		Domain: "durare.org", Inviter: "bob@other.net",
		Created: ts("2024-11-20T18:45:30.123456789Z"), Expires: ts("2024-11-27T18:45:30.123456789Z"),
		State: StatePending,
	}

	byInviter := []struct {
		inviter string
		want    []Invite
	}{
		{"alice@example.org", []Invite{alicePending, aliceUsed}},
		{"bob@other.net", []Invite{bobPending}},
	}
	for _, tt := range byInviter {
		got, err := s.InvitesByInviter(ctx, tt.inviter)
		if err != nil {
			t.Fatalf("InvitesByInviter(%s): %v", tt.inviter, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("InvitesByInviter(%s) =\n %+v\nwant %+v", tt.inviter, got, tt.want)
		}
	}
	pending, err := s.PendingInvites(ctx)
	if err != nil || !reflect.DeepEqual(pending, []Invite{bobPending, alicePending}) {
		t.Errorf("PendingInvites = %v, %v; want [bob alice-2]", tokens(pending), err)
	}

	// The v4 indexes were built from the v1 records.
	checkIndexes(t, s)
	q, err := s.QuotaCounts(ctx, "alice@example.org", ts("2024-11-01T00:00:00Z"), []string{"admin@durare.org"})
	if want := (QuotaCounts{Created: 2, Pending: 1, GlobalCreated: 3}); err != nil || q != want {
		t.Errorf("QuotaCounts(alice) = %+v, %v; want %+v", q, err, want)
	}
	if next, err := s.NextPendingExpiry(ctx, "bob@other.net", ts("2024-11-21T00:00:00Z")); err != nil || !next.Equal(bobPending.Expires) {
		t.Errorf("NextPendingExpiry(bob) = %v, %v; want %v", next, err, bobPending.Expires)
	}
	if used, err := s.InvitesUsedBy(ctx, "carol@durare.org"); err != nil || !reflect.DeepEqual(used, []Invite{aliceUsed}) {
		t.Errorf("InvitesUsedBy(carol) = %v, %v; want alice's first", tokens(used), err)
	}
	refs, err := s.PendingPage(ctx, PendingRef{}, 10)
	wantRefs := []PendingRef{
		{ID: bobPending.ID, Token: bobPending.Token, Inviter: bobPending.Inviter, Expires: bobPending.Expires},
		{ID: alicePending.ID, Token: alicePending.Token, Inviter: alicePending.Inviter, Expires: alicePending.Expires},
	}
	if err != nil || !reflect.DeepEqual(refs, wantRefs) {
		t.Errorf("PendingPage = %+v, %v; want %+v", refs, err, wantRefs)
	}
	if about, err := s.Audit(ctx, "k7q3xw2mfa4ndz5p", 10); err != nil || len(about) != 2 || about[0].Seq != 3 || about[1].Seq != 2 {
		t.Errorf("Audit about alice's used invite = %+v, %v; want seqs 3 and 2", about, err)
	}
	if about, err := s.Audit(ctx, "admin@durare.org", 1); err != nil || len(about) != 1 || about[0].Seq != 4 {
		t.Errorf("Audit about admin, 1 = %+v, %v; want seq 4", about, err)
	}

	wantGrants := []Grant{
		{JID: "alice@example.org", GrantedBy: "admin@durare.org", GrantedAt: ts("2024-10-30T12:00:00Z"), Note: "community helper"},
		{JID: "bob@other.net", GrantedBy: "admin@durare.org", GrantedAt: ts("2024-11-15T12:00:00Z")},
	}
	if gs, err := s.Grants(ctx); err != nil || !reflect.DeepEqual(gs, wantGrants) {
		t.Errorf("Grants = %+v, %v; want %+v", gs, err, wantGrants)
	}

	wantAudit := []AuditEntry{
		{Seq: 6, Time: ts("2024-12-01T09:15:00Z"), Actor: "alice@example.org", Action: "invite.create", Subject: "m2rt6yhe3bq7wxka"},
		{Seq: 5, Time: ts("2024-11-20T18:45:30.123456789Z"), Actor: "bob@other.net", Action: "invite.create", Subject: "c4vn5jdu7s2pezlq"},
		{Seq: 4, Time: ts("2024-11-15T12:00:00Z"), Actor: "admin@durare.org", Action: "grant", Subject: "bob@other.net"},
		{Seq: 3, Time: ts("2024-11-03T08:30:00Z"), Actor: "system", Action: "invite.use", Subject: "k7q3xw2mfa4ndz5p", Detail: "carol@durare.org"},
		{Seq: 2, Time: ts("2024-11-02T10:00:00Z"), Actor: "alice@example.org", Action: "invite.create", Subject: "k7q3xw2mfa4ndz5p"},
		{Seq: 1, Time: ts("2024-10-30T12:00:00Z"), Actor: "admin@durare.org", Action: "grant", Subject: "alice@example.org"},
	}
	if got, err := s.Audit(ctx, "", 100); err != nil || !reflect.DeepEqual(got, wantAudit) {
		t.Errorf("Audit =\n %+v, %v\nwant %+v", got, err, wantAudit)
	}

	// The token index was filled from the old invites.
	for _, tok := range []string{"v1-token-alice-1", "v1-token-alice-2", "v1-token-bob-1"} {
		_, err := s.AddInvite(ctx, testInvite("mallory@evil.example", tok, t0), createEntry("mallory@evil.example", t0))
		if !errors.Is(err, ErrExists) {
			t.Errorf("AddInvite with fixture token %s: err = %v, want ErrExists", tok, err)
		}
	}
	// New writes work alongside the old data and the audit sequence carries on.
	fresh := mustAdd(t, s, testInvite("alice@example.org", "v2-token", t0))
	if list, _ := s.InvitesByInviter(ctx, "alice@example.org"); len(list) != 3 || list[0].ID != fresh.ID {
		t.Errorf("alice's invites after add = %v, want v2-token first of 3", tokens(list))
	}
	if last, _ := s.Audit(ctx, "", 1); len(last) != 1 || last[0].Seq != 7 || last[0].Subject != fresh.ID {
		t.Errorf("last audit entry = %+v, want seq 7 for the new invite", last)
	}

	// Upgrading twice is a no-op, and the upgraded file has exactly the
	// layout of a fresh one.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen upgraded file: %v", err)
	}
	if v, err := s2.SchemaVersion(ctx); err != nil || v != latestVersion() {
		t.Errorf("SchemaVersion after reopen = %d, %v", v, err)
	}
	if err := s2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	freshPath := filepath.Join(t.TempDir(), "fresh.db")
	s3, err := Open(ctx, freshPath)
	if err != nil {
		t.Fatalf("Open fresh: %v", err)
	}
	if err := s3.Close(); err != nil {
		t.Fatalf("Close fresh: %v", err)
	}
	if got, want := bucketNames(t, path), bucketNames(t, freshPath); !reflect.DeepEqual(got, want) {
		t.Errorf("upgraded buckets = %q, fresh buckets = %q", got, want)
	}

	if now, err := os.ReadFile(v1FixturePath); err != nil || !bytes.Equal(now, orig) {
		t.Errorf("the committed fixture was modified by the test")
	}
}

func TestSchemaTooNew(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "future.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mustAdd(t, s, testInvite("alice@example.org", "tok", t0))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	future := latestVersion() + 1
	setRawVersion(t, path, strconv.Itoa(future))
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	for range 2 { // refusing once must not change the answer the next time
		s, err = Open(ctx, path)
		if !errors.Is(err, ErrSchemaTooNew) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("Open future file: err = %v, want ErrSchemaTooNew", err)
		}
		if s != nil {
			t.Errorf("Open returned a store alongside ErrSchemaTooNew")
		}
		msg := err.Error()
		if !strings.Contains(msg, "version "+strconv.Itoa(future)) || !strings.Contains(msg, "up to "+strconv.Itoa(latestVersion())) {
			t.Errorf("error %q does not name both versions", msg)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("Open modified a file whose schema is too new")
	}
}

// setRawVersion overwrites meta/schema_version without the store.
func setRawVersion(t *testing.T, path, v string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("raw open: %v", err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("schema_version"), []byte(v))
	})
	if err != nil {
		t.Fatalf("set version: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenBadFiles(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		wantErr string
		wantV   string // raw schema_version afterwards
	}{
		{
			// Two v1 invites with one token: the v2 migration must fail
			// as a whole rather than index one and lose the other.
			name: "v1 with duplicate token",
			setup: func(t *testing.T, path string) {
				data := v1Data{invites: []kv{
					{"aaaaaaaaaaaaaaaa", `{"token":"dup","inviter":"a@x","created":"2024-01-01T00:00:00Z","state":"pending"}`},
					{"bbbbbbbbbbbbbbbb", `{"token":"dup","inviter":"b@x","created":"2024-01-02T00:00:00Z","state":"pending"}`},
				}}
				if err := writeV1(path, data); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "share a token",
			wantV:   "1",
		},
		{
			name: "v1 with undecodable invite",
			setup: func(t *testing.T, path string) {
				data := v1Data{invites: []kv{
					{"aaaaaaaaaaaaaaaa", `{"token":"ok","inviter":"a@x","created":"2024-01-01T00:00:00Z"}`},
					{"bbbbbbbbbbbbbbbb", `{"token":`},
				}}
				if err := writeV1(path, data); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "decode invite bbbbbbbbbbbbbbbb",
			wantV:   "1",
		},
		{
			name: "v1 invite without inviter",
			setup: func(t *testing.T, path string) {
				data := v1Data{invites: []kv{{"aaaaaaaaaaaaaaaa", `{"token":"t","created":"2024-01-01T00:00:00Z"}`}}}
				if err := writeV1(path, data); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "invite aaaaaaaaaaaaaaaa",
			wantV:   "1",
		},
		{
			name: "corrupt version",
			setup: func(t *testing.T, path string) {
				setRawVersion(t, path, "02")
			},
			wantErr: "corrupt schema version",
			wantV:   "02",
		},
		{
			// A wrong path in the config must not graft our buckets onto
			// another program's database.
			name: "foreign database",
			setup: func(t *testing.T, path string) {
				db, err := bbolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = db.Update(func(tx *bbolt.Tx) error {
					b, err := tx.CreateBucket([]byte("sessions"))
					if err != nil {
						return err
					}
					return b.Put([]byte("k"), []byte("v"))
				})
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
			},
			wantErr: "not an invitebot database",
			wantV:   "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.db")
			tt.setup(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(t.Context(), path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrSchemaTooNew) {
				t.Errorf("err = %v, must not claim the schema is too new", err)
			}
			if v := rawVersion(t, path); v != tt.wantV {
				t.Errorf("schema_version after failed Open = %q, want %q", v, tt.wantV)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("failed Open modified the file")
			}
		})
	}
}

// TestOpenReportsUpgrade: Open says from which schema version to which it
// upgraded the file, with its record counts, so the bot can log it; a
// current file reports no upgrade, a new one an upgrade from 0.
func TestOpenReportsUpgrade(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v1.db")
	src, err := os.ReadFile(v1FixturePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	up := s.Upgrade()
	if up.From != 1 || up.To != latestVersion() || up.Invites == 0 || up.AuditEntries == 0 || up.Took <= 0 {
		t.Errorf("upgrade of the v1 fixture: %+v", up)
	}
	s.Close()
	if s, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	if up := s.Upgrade(); up.From != up.To || up.To != latestVersion() {
		t.Errorf("current file: %+v", up)
	}
	s.Close()
	s, err = Open(ctx, filepath.Join(t.TempDir(), "new.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if up := s.Upgrade(); up.From != 0 || up.To != latestVersion() || up.Invites != 0 {
		t.Errorf("new file: %+v", up)
	}
}
