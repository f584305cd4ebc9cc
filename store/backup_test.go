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
