package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestBackupUnderLoad: backups taken while invites are being written open
// as databases that hold every invite committed before them, each one whole,
// and are private to their owner.
func TestBackupUnderLoad(t *testing.T) {
	s, _ := openTest(t)
	dir := filepath.Join(t.TempDir(), "backups")
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				inv := testInvite(fmt.Sprintf("inviter%d@example.org", w), fmt.Sprintf("tok-%d-%d", w, i), t0.Add(time.Duration(i)*time.Second))
				if _, err := s.AddInvite(t.Context(), inv, createEntry(inv.Inviter, t0)); err != nil {
					t.Errorf("AddInvite: %v", err)
					return
				}
			}
		})
	}
	var paths []string
	for range 3 {
		p, err := s.WriteBackup(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		time.Sleep(time.Millisecond) // distinct names
	}
	wg.Wait()
	last, err := s.WriteBackup(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, last)

	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
		b, err := Open(t.Context(), p)
		if err != nil {
			t.Fatalf("backup %d does not open: %v", i, err)
		}
		total := 0
		for w := range writers {
			invs, err := b.InvitesByInviter(t.Context(), fmt.Sprintf("inviter%d@example.org", w))
			if err != nil {
				t.Fatal(err)
			}
			for _, inv := range invs {
				if inv.Token == "" || inv.URI == "" {
					t.Errorf("backup %d holds a partial invite %+v", i, inv)
				}
			}
			total += len(invs)
		}
		// Each invite's audit entry is written in the same transaction.
		entries, err := b.Audit(t.Context(), "", 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != total {
			t.Errorf("backup %d: %d invites but %d audit entries", i, total, len(entries))
		}
		if i == len(paths)-1 && total != writers*each {
			t.Errorf("the last backup holds %d invites, want %d", total, writers*each)
		}
		b.Close()
	}
}

func TestPruneBackups(t *testing.T) {
	dir := t.TempDir()
	names := []string{
		"invitebot-20261101T000000.000Z.db", "invitebot-20261102T000000.000Z.db",
		"invitebot-20261103T000000.000Z.db", "notes.txt", "invitebot-garbage.db",
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := PruneBackups(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || filepath.Base(removed[0]) != names[0] {
		t.Errorf("removed %v, want the oldest backup only", removed)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 4 {
		t.Errorf("%d files left, want the two newest backups and the two other files", len(left))
	}
}

// TestListBackups: the backups of a folder, oldest first, with the times
// in their names; other files left out; a folder not made yet holds none.
// The backup schedule counts from the newest.
func TestListBackups(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{
		"invitebot-20261103T000000.000Z.db", "notes.txt", "invitebot-garbage.db",
		"invitebot-20261101T120000.250Z.db", ".partial-invitebot-20261104T000000.000Z.db-123",
	} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ListBackups(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []BackupFile{
		{Path: filepath.Join(dir, "invitebot-20261101T120000.250Z.db"), Time: time.Date(2026, 11, 1, 12, 0, 0, 250e6, time.UTC)},
		{Path: filepath.Join(dir, "invitebot-20261103T000000.000Z.db"), Time: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)},
	}
	if len(got) != len(want) {
		t.Fatalf("ListBackups = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Path != want[i].Path || !got[i].Time.Equal(want[i].Time) {
			t.Errorf("backup %d = %v, want %v", i, got[i], want[i])
		}
	}

	none, err := ListBackups(filepath.Join(dir, "not-made-yet"))
	if err != nil || len(none) != 0 {
		t.Errorf("a folder that does not exist: %v, %v; want no backups and no error", none, err)
	}
}
