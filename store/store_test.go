package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// t0 is a fixed instant so test data and expectations are reproducible.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// openTest opens a fresh store in t.TempDir and closes it at cleanup.
func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "invitebot.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// testInvite returns a valid invite; tests vary the fields they care about.
func testInvite(inviter, token string, created time.Time) Invite {
	return Invite{
		Token:   token,
		URI:     "xmpp:durare.org?register;preauth=" + token,
		Domain:  "durare.org",
		Inviter: inviter,
		Created: created,
		Expires: created.Add(7 * 24 * time.Hour),
		State:   StatePending,
	}
}

// createEntry is the audit entry an invite creation would carry.
func createEntry(actor string, at time.Time) AuditEntry {
	return AuditEntry{Time: at, Actor: actor, Action: "invite.create"}
}

// mustAdd adds an invite or fails the test.
func mustAdd(t *testing.T, s *Store, inv Invite) Invite {
	t.Helper()
	got, err := s.AddInvite(t.Context(), inv, createEntry(inv.Inviter, inv.Created))
	if err != nil {
		t.Fatalf("AddInvite(%s): %v", inv.Token, err)
	}
	return got
}

// auditLen returns how many audit entries the store holds.
func auditLen(t *testing.T, s *Store) int {
	t.Helper()
	all, err := s.Audit(t.Context(), "", 1<<30)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	return len(all)
}

// bucketNames lists the top-level buckets of the file at path, with the
// store closed so the raw open can take the lock.
func bucketNames(t *testing.T, path string) []string {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("raw open: %v", err)
	}
	defer db.Close()
	var names []string
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			names = append(names, string(name))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("list buckets: %v", err)
	}
	return names
}

func TestOpenNewFile(t *testing.T) {
	s, path := openTest(t)
	ctx := t.Context()
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatalf("SchemaVersion: %v", err)
	}
	if v != 6 || v != latestVersion() {
		t.Errorf("SchemaVersion = %d, want 6 (latest %d)", v, latestVersion())
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := []string{"audit", "audit_by_about", "check_due", "check_due_by_id", "event_invites_by_inviter", "events", "grants", "invites", "invites_by_created",
		"invites_by_inviter", "invites_by_token", "invites_by_used_by", "invites_pending", "invites_pending_by_inviter",
		"invites_unrevoked", "mail_addresses", "mail_sends", "meta", "pending_counts", "requests", "settings"}
	if got := bucketNames(t, path); !reflect.DeepEqual(got, want) {
		t.Errorf("buckets = %q, want %q", got, want)
	}
	// After Close the store must say so rather than pretend to be healthy.
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

func TestOpenLocked(t *testing.T) {
	_, path := openTest(t)
	start := time.Now()
	_, err := openStore(t.Context(), path, 100*time.Millisecond)
	if !errors.Is(err, ErrLocked) || !errors.Is(err, bbolt.ErrTimeout) {
		t.Fatalf("second open: err = %v, want ErrLocked wrapping bbolt.ErrTimeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second open took %s, the lock timeout was not applied", d)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := Open(t.Context(), filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"))
	if err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
}

func TestReopenPersists(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "invitebot.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	a := mustAdd(t, s, testInvite("alice@example.org", "tok-a", t0))
	b := mustAdd(t, s, testInvite("alice@example.org", "tok-b", t0.Add(time.Minute)))
	b, err = s.SetInviteState(ctx, b.ID, StateUsed, "newbie@durare.org",
		AuditEntry{Time: t0.Add(time.Hour), Actor: "system", Action: "invite.use"})
	if err != nil {
		t.Fatalf("SetInviteState: %v", err)
	}
	g := Grant{JID: "alice@example.org", GrantedBy: "admin@durare.org", GrantedAt: t0, Note: "helper"}
	if err := s.PutGrant(ctx, g, AuditEntry{Time: t0, Actor: "admin@durare.org", Action: "grant"}); err != nil {
		t.Fatalf("PutGrant: %v", err)
	}
	audit, err := s.Audit(ctx, "", 100)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	for _, want := range []Invite{a, b} {
		got, err := s.Invite(ctx, want.ID)
		if err != nil {
			t.Fatalf("Invite(%s) after reopen: %v", want.ID, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Invite(%s) after reopen:\n got %+v\nwant %+v", want.ID, got, want)
		}
	}
	list, err := s.InvitesByInviter(ctx, "alice@example.org")
	if err != nil {
		t.Fatalf("InvitesByInviter: %v", err)
	}
	if !reflect.DeepEqual(list, []Invite{b, a}) {
		t.Errorf("InvitesByInviter after reopen = %+v, want [b a]", list)
	}
	if _, err := s.AddInvite(ctx, testInvite("bob@other.net", "tok-a", t0), createEntry("bob@other.net", t0)); !errors.Is(err, ErrExists) {
		t.Errorf("AddInvite with stored token after reopen: err = %v, want ErrExists", err)
	}
	gotG, err := s.Grant(ctx, g.JID)
	if err != nil || !reflect.DeepEqual(gotG, g) {
		t.Errorf("Grant after reopen = %+v, %v; want %+v", gotG, err, g)
	}
	gotAudit, err := s.Audit(ctx, "", 100)
	if err != nil || !reflect.DeepEqual(gotAudit, audit) {
		t.Errorf("Audit after reopen = %+v, %v; want %+v", gotAudit, err, audit)
	}
	// The sequence must carry on, not restart, or seq would stop being an id.
	if err := s.AppendAudit(ctx, AuditEntry{Actor: "system", Action: "restart"}); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	last, err := s.Audit(ctx, "", 1)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	if want := audit[0].Seq + 1; last[0].Seq != want {
		t.Errorf("seq after reopen = %d, want %d", last[0].Seq, want)
	}
}

func TestContextCancelled(t *testing.T) {
	s, _ := openTest(t)
	inv := mustAdd(t, s, testInvite("alice@example.org", "tok-a", t0))
	entry := AuditEntry{Actor: "admin@durare.org", Action: "x"}
	before := auditLen(t, s)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		call func() error
	}{
		{"Open", func() error { _, err := Open(ctx, filepath.Join(t.TempDir(), "other.db")); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"SchemaVersion", func() error { _, err := s.SchemaVersion(ctx); return err }},
		{"AddInvite", func() error {
			_, err := s.AddInvite(ctx, testInvite("alice@example.org", "tok-new", t0), createEntry("alice@example.org", t0))
			return err
		}},
		{"Invite", func() error { _, err := s.Invite(ctx, inv.ID); return err }},
		{"InvitesByInviter", func() error { _, err := s.InvitesByInviter(ctx, "alice@example.org"); return err }},
		{"InvitesByInviter/empty", func() error { _, err := s.InvitesByInviter(ctx, ""); return err }},
		{"PendingInvites", func() error { _, err := s.PendingInvites(ctx); return err }},
		{"PendingPage", func() error { _, err := s.PendingPage(ctx, PendingRef{}, 10); return err }},
		{"QuotaCounts", func() error { _, err := s.QuotaCounts(ctx, "alice@example.org", t0, nil); return err }},
		{"OldestCreatedSince", func() error {
			_, err := s.OldestCreatedSince(ctx, "", t0, nil, 1)
			return err
		}},
		{"NextPendingExpiry", func() error { _, err := s.NextPendingExpiry(ctx, "alice@example.org", t0); return err }},
		{"InvitesUsedBy", func() error { _, err := s.InvitesUsedBy(ctx, "x@durare.org"); return err }},
		{"UnrevokedCancelled", func() error { _, err := s.UnrevokedCancelled(ctx, t0); return err }},
		{"MarkRevoked", func() error { return s.MarkRevoked(ctx, inv.ID, entry) }},
		{"Audit/about", func() error { _, err := s.Audit(ctx, "alice@example.org", 10); return err }},
		{"SetInviteState", func() error { _, err := s.SetInviteState(ctx, inv.ID, StateCancelled, "", entry); return err }},
		{"PutGrant", func() error { return s.PutGrant(ctx, Grant{JID: "bob@other.net"}, entry) }},
		{"Grant", func() error { _, err := s.Grant(ctx, "bob@other.net"); return err }},
		{"DeleteGrant", func() error { return s.DeleteGrant(ctx, "bob@other.net", entry) }},
		{"Grants", func() error { _, err := s.Grants(ctx); return err }},
		{"AppendAudit", func() error { return s.AppendAudit(ctx, entry) }},
		{"Audit", func() error { _, err := s.Audit(ctx, "", 10); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		})
	}

	// None of the refused writes may have happened.
	if got, err := s.Invite(t.Context(), inv.ID); err != nil || got.State != StatePending {
		t.Errorf("invite after cancelled SetInviteState = %+v, %v; want still pending", got, err)
	}
	if list, _ := s.InvitesByInviter(t.Context(), "alice@example.org"); len(list) != 1 {
		t.Errorf("invites after cancelled AddInvite = %d, want 1", len(list))
	}
	if gs, _ := s.Grants(t.Context()); len(gs) != 0 {
		t.Errorf("grants after cancelled PutGrant = %+v, want none", gs)
	}
	if got := auditLen(t, s); got != before {
		t.Errorf("audit entries after cancelled calls = %d, want %d", got, before)
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"abcdefghijklmnop", true},
		{"k7q3xw2mfa4ndz5p", true},
		{"2345672345672345", true},
		{"", false},
		{"abcdefghijklmno", false},   // 15
		{"abcdefghijklmnopq", false}, // 17
		{"ABCDEFGHIJKLMNOP", false},  // we only hand out lowercase
		{"abcdefghijklmno0", false},  // 0 is not in base32
		{"abcdefghijklmno1", false},
		{"abcdefghijklmno8", false},
		{"abcdefghijklmno=", false},
		{"abcdefghijklmno\n", false},
		{"abcdefghijklmnö", false}, // 16 bytes but not ASCII
		{"../../etc/passwd", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.in); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := newID()
		if !ValidID(id) {
			t.Fatalf("newID() = %q, not a valid id", id)
		}
		if seen[id] {
			t.Fatalf("newID() repeated %q", id)
		}
		seen[id] = true
	}
}
