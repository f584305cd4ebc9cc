package invites_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// Scheduled backups count from the newest backup in the folder, not from the
// start of the process: a service restarted more often than the interval
// still backs up. The interval is long (an hour), so a backup that appears
// within backupWithin can only be one the schedule wrote because of what it
// found on disk, never one a timer started with the process ran into.

const (
	backupInterval = time.Hour
	// backupWithin is how long a test waits for a backup that is due.
	backupWithin = 15 * time.Second
	// backupStamp is how backup files are named (store/backup.go).
	backupStamp = "20060102T150405.000Z"
)

// backupService returns a service that keeps its backups in dir.
func backupService(t *testing.T, dir string) *invites.Service {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return invites.NewService(invites.Options{
		Store: st, Domain: "durare.test", Now: time.Now,
		Backups: invites.BackupOptions{Dir: dir, Keep: 10},
		Log:     slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
}

// placeBackup puts a file named and dated as a backup written at when into
// dir, as one a previous run of the service left there.
func placeBackup(t *testing.T, dir string, when time.Time) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "invitebot-"+when.UTC().Format(backupStamp)+".db")
	if err := os.WriteFile(path, []byte("an earlier backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
	return path
}

// backupsIn returns the names of the backup files in dir, oldest first.
func backupsIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "invitebot-") && strings.HasSuffix(e.Name(), ".db") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// stampOf returns the time in a backup file's name.
func stampOf(t *testing.T, name string) time.Time {
	t.Helper()
	at, err := time.Parse(backupStamp, strings.TrimSuffix(strings.TrimPrefix(name, "invitebot-"), ".db"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return at
}

// runBackups starts the schedule and returns a function that stops it and
// waits until it has returned.
func runBackups(t *testing.T, svc *invites.Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.RunBackups(ctx, backupInterval)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(backupWithin):
			t.Fatal("RunBackups did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitForBackups waits until dir holds n backups, for at most backupWithin,
// looking every few milliseconds, and returns their names.
func waitForBackups(t *testing.T, dir string, n int, started time.Time) []string {
	t.Helper()
	deadline := time.After(backupWithin)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if names := backupsIn(t, dir); len(names) >= n {
			return names
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%v after start, %s holds %v; want %d backups (interval %v)",
				time.Since(started).Round(time.Millisecond), dir, backupsIn(t, dir), n, backupInterval)
		}
	}
}

// TestScheduledBackupRightAfterStart: with no backup in the folder, or only
// one older than the interval, the schedule backs up as soon as it starts,
// and then waits: one backup, not one after the other.
func TestScheduledBackupRightAfterStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		older time.Duration // age of the backup placed first; 0: none
	}{
		{name: "no backup yet"},
		{name: "backup older than the interval", older: backupInterval + time.Minute},
		{name: "backup days old", older: 3 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "backups")
			want := 1
			if tc.older > 0 {
				placeBackup(t, dir, time.Now().Add(-tc.older))
				want = 2
			}
			started := time.Now()
			stop := runBackups(t, backupService(t, dir))
			waitForBackups(t, dir, want, started)
			stop()
			if got := backupsIn(t, dir); len(got) != want {
				t.Errorf("after start the folder holds %v; want %d backups", got, want)
			}
		})
	}
}

// TestScheduledBackupCountsFromNewestOnDisk: a backup that is the interval
// minus a little old when the service starts is followed by the next when
// that little has passed: not at once, and not a whole interval after the
// start.
func TestScheduledBackupCountsFromNewestOnDisk(t *testing.T) {
	const rest = 1500 * time.Millisecond
	dir := filepath.Join(t.TempDir(), "backups")
	// Millisecond times, as backups are named.
	prev := time.Now().Add(rest - backupInterval).Truncate(time.Millisecond)
	placeBackup(t, dir, prev)
	// And one from a clock that was ahead: it does not put the schedule
	// off.
	ahead := placeBackup(t, dir, time.Now().Add(30*24*time.Hour))

	started := time.Now()
	stop := runBackups(t, backupService(t, dir))
	names := waitForBackups(t, dir, 3, started)
	stop()
	var next time.Time
	for _, n := range names {
		if at := stampOf(t, n); at.After(prev) && n != filepath.Base(ahead) {
			next = at
		}
	}
	if next.IsZero() {
		t.Fatalf("no new backup among %v", names)
	}
	if due := prev.Add(backupInterval); next.Before(due) {
		t.Errorf("the next backup is dated %v, %v before it was due (an interval after %v)",
			next, due.Sub(next), prev)
	}
	if got := backupsIn(t, dir); len(got) != 3 {
		t.Errorf("the folder holds %v; want the two placed backups and one new", got)
	}
}
