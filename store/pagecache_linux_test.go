package store

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// These tests count the pages of the database file that an operation
// reads, as the pages of the file in the page cache after evicting it:
// bbolt maps the file with MADV_RANDOM, so a read fault brings in the one
// page it needs and no readahead. (The kernel's fault-around maps cached
// neighbours into the process too, which inflates its RSS, but never reads
// a page into the cache; see docs/PERFORMANCE.md.) The counts are exact and
// the bounds far from what a scan of a bucket would read, so nothing here
// depends on timing.

// cachedPages returns how many pages of the file at path are in the page
// cache.
func cachedPages(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	// x/sys/unix has no Mincore.
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// evictFile drops the file's clean pages that no process maps from the page
// cache.
func evictFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

// evictableDir returns a directory whose files the page cache can drop.
// The temporary directory can be a tmpfs (Debian 13's /tmp is), where the
// page cache is the file's only copy; the package's own directory is on a
// disk wherever the source is checked out.
func evictableDir(t *testing.T) string {
	t.Helper()
	for _, parent := range []string{"", "."} {
		dir, err := os.MkdirTemp(parent, ".pagecache-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		probe := filepath.Join(dir, "probe")
		if err := os.WriteFile(probe, make([]byte, 64<<10), 0o600); err != nil {
			t.Fatal(err)
		}
		evictFile(t, probe)
		if cachedPages(t, probe) == 0 {
			return dir
		}
	}
	t.Fatal("neither the temporary directory nor the package directory lets the page cache drop a file; " +
		"these tests need a disk-backed file system for one of them")
	return ""
}

// bucketPages is how many pages the named buckets occupy.
func bucketPages(t *testing.T, s *Store, names ...[]byte) int {
	t.Helper()
	n := 0
	err := s.view(t.Context(), func(tx *bbolt.Tx) error {
		for _, name := range names {
			st := tx.Bucket(name).Stats()
			n += st.BranchPageN + st.BranchOverflowN + st.LeafPageN + st.LeafOverflowN
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStartupAndTimersReadLittle: opening a database with a history and
// the reads of a usage-tracking sweep touch a handful of pages, not the
// buckets of the history. A check at open or on a timer that scans the
// invites or the audit log would read thousands here.
func TestStartupAndTimersReadLittle(t *testing.T) {
	path := filepath.Join(evictableDir(t), "history.db")
	const invites = 5000
	smp, err := Generate(t.Context(), path, Profile{Invites: invites})
	if err != nil {
		t.Fatal(err)
	}
	evictFile(t, path)
	if n := cachedPages(t, path); n != 0 {
		t.Fatalf("%d pages still cached after eviction", n)
	}

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Open reads the meta pages, the root and the schema version.
	const openMax = 8
	opened := cachedPages(t, path)
	if opened > openMax {
		t.Errorf("Open read %d pages of the file, want at most %d", opened, openMax)
	}

	// A sweep reads the pending and unrevoked indexes whole, as it must,
	// plus the path to them; nothing else.
	if _, err := pendingSweep(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if _, err := unrevokedSweep(t.Context(), s, smp.Now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	indexes := bucketPages(t, s, bucketInvitesPending, bucketInvitesUnrevoked)
	swept := cachedPages(t, path) - opened
	if want := indexes + openMax; swept > want {
		t.Errorf("a sweep read %d pages of the file, want at most %d (the pending and unrevoked indexes hold %d)", swept, want, indexes)
	}
	history := bucketPages(t, s, bucketInvites, bucketAudit)
	t.Logf("%d invites: open read %d pages, a sweep %d; the pending and unrevoked indexes hold %d pages, the invites and the audit log %d",
		invites, opened, swept, indexes, history)
	if history < 10*(indexes+openMax) {
		t.Fatalf("the history (%d pages) is too small to tell a scan from the indexes (%d pages)", history, indexes)
	}
}

// TestBackupLeavesPageCache: a backup reads the database past the page
// cache, so it does not leave the whole file cached in large folios, which
// the kernel's fault-around would then map into the bot a folio at a time
// on its next random reads; and it drops its own copy from the cache.
func TestBackupLeavesPageCache(t *testing.T) {
	dir := evictableDir(t)
	path := filepath.Join(dir, "invitebot.db")
	if _, err := Generate(t.Context(), path, Profile{Invites: 2000}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evictFile(t, path) // the pages the store maps stay
	before := cachedPages(t, path)
	backup, err := s.WriteBackup(t.Context(), filepath.Join(dir, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	after := cachedPages(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	total := int(fi.Size()) / os.Getpagesize()
	if after != before {
		t.Errorf("the backup brought %d of the database's %d pages into the page cache (%d before), want none", after-before, total, before)
	}
	if n := cachedPages(t, backup); n != 0 {
		t.Errorf("%d pages of the backup stay in the page cache, want none", n)
	}
	b, err := Open(t.Context(), backup)
	if err != nil {
		t.Fatalf("backup does not open: %v", err)
	}
	defer b.Close()
	if _, err := b.Invite(t.Context(), mustFirstID(t, s)); err != nil {
		t.Errorf("backup lacks an invite: %v", err)
	}
}

// mustFirstID returns the id of some invite in s.
func mustFirstID(t *testing.T, s *Store) string {
	t.Helper()
	var id string
	err := s.view(t.Context(), func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketInvites).Cursor().First()
		id = string(k)
		return nil
	})
	if err != nil || id == "" {
		t.Fatalf("no invite in the store: %v", err)
	}
	return id
}
