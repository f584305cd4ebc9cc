package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addUsed records an invite of inviter that created account (none when
// empty).
func addUsed(t *testing.T, s *Store, inviter, account string, at time.Time) Invite {
	t.Helper()
	inv, err := s.AddInvite(t.Context(), Invite{Token: fmt.Sprint(at.UnixNano()), URI: "xmpp:x", Domain: "d.org",
		Inviter: inviter, Created: at, Expires: at.Add(time.Hour)}, AuditEntry{Actor: inviter, Action: "invite.create"})
	if err != nil {
		t.Fatal(err)
	}
	if account != "" {
		if inv, _, err = s.MarkUsedBy(t.Context(), inv.ID, account, AuditEntry{Actor: account, Action: "invite.use"}); err != nil {
			t.Fatal(err)
		}
	}
	return inv
}

func TestBranchInvitesAndChain(t *testing.T) {
	s := openTestStore(t)
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	next := func() time.Time { at = at.Add(time.Minute); return at }
	addUsed(t, s, "root@x.org", "a@d.org", next())
	addUsed(t, s, "root@x.org", "", next()) // pending: not in the branch
	addUsed(t, s, "a@d.org", "b@d.org", next())
	addUsed(t, s, "b@d.org", "c@d.org", next())
	addUsed(t, s, "c@d.org", "a@d.org", next()) // a loop in damaged data
	addUsed(t, s, "rooted@x.org", "z@d.org", next())

	invs, truncated, err := s.BranchInvites(ctx, "root@x.org", 100)
	if err != nil || truncated {
		t.Fatalf("%v, truncated %v", err, truncated)
	}
	var got []string
	for _, inv := range invs {
		got = append(got, inv.Inviter+">"+inv.UsedBy)
	}
	want := "[root@x.org>a@d.org a@d.org>b@d.org b@d.org>c@d.org c@d.org>a@d.org]"
	if fmt.Sprint(got) != want {
		t.Errorf("branch = %v, want %s", got, want)
	}
	if _, truncated, _ := s.BranchInvites(ctx, "root@x.org", 2); !truncated {
		t.Error("a limit of 2 did not truncate")
	}
	up, err := s.ChainUp(ctx, "c@d.org", 10)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, inv := range up {
		got = append(got, inv.Inviter)
	}
	if fmt.Sprint(got) != "[b@d.org a@d.org root@x.org]" {
		t.Errorf("chain above c = %v", got)
	}
	if _, _, err := s.BranchInvites(ctx, "root@x.org", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("limit 0: %v", err)
	}
}

// TestSuspensionTables: the buckets appear with the first suspension (no
// schema change), and records round-trip with their audit entries.
func TestSuspensionTables(t *testing.T) {
	s := openTestStore(t)
	ctx := t.Context()
	if _, err := s.SuspendedAccount(ctx, "a@d.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before any suspension: %v", err)
	}
	if m, err := s.SuspendedAccounts(ctx, []string{"a@d.org"}); err != nil || len(m) != 0 {
		t.Fatalf("before any suspension: %v %v", m, err)
	}
	if err := s.PutSuspendedAccount(ctx, SuspendedAccount{Account: "a@d.org", By: "admin@d.org", How: "blocked"},
		AuditEntry{Actor: "admin@d.org", Action: "account.suspend", Subject: "a@d.org"}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.SuspendedAccounts(ctx, []string{"a@d.org", "b@d.org"}); err != nil || len(m) != 1 || m["a@d.org"].How != "blocked" {
		t.Errorf("suspended = %v, %v", m, err)
	}
	sp := Suspension{Target: "root@x.org", By: "admin@d.org", Accounts: []string{"a@d.org"},
		Grants: []Grant{{JID: "root@x.org", PerDay: 3}}}
	if err := s.PutSuspension(ctx, sp, AuditEntry{Actor: "admin@d.org", Action: "suspend"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Suspension(ctx, "root@x.org")
	if err != nil || got.Grants[0].PerDay != 3 || got.Accounts[0] != "a@d.org" {
		t.Errorf("suspension = %+v, %v", got, err)
	}
	if err := s.DeleteSuspension(ctx, "root@x.org", AuditEntry{Actor: "admin@d.org", Action: "unsuspend"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSuspension(ctx, "root@x.org", AuditEntry{Actor: "admin@d.org", Action: "unsuspend"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if err := s.DeleteSuspendedAccount(ctx, "a@d.org", AuditEntry{Actor: "admin@d.org", Action: "account.unsuspend"}); err != nil {
		t.Fatal(err)
	}
	entries, err := s.Audit(ctx, "a@d.org", 10)
	if err != nil || len(entries) != 2 {
		t.Errorf("audit about a: %v, %v", entries, err)
	}
	if v, _ := s.SchemaVersion(ctx); v != latestVersion() {
		t.Errorf("schema version %d, want %d unchanged", v, latestVersion())
	}
}
