package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// ActionBackup is the audit action of a backup an admin asked for.
const ActionBackup = "backup"

// ErrNoBackupDir means backups were asked for but store.backup_dir is not
// set.
var ErrNoBackupDir = errors.New("no backup directory configured")

// BackupOptions say where and how many backups the service keeps.
type BackupOptions struct {
	// Dir is where backups go; empty turns backups off.
	Dir string
	// Keep is how many backups to keep; older ones are removed.
	Keep int
}

// backups writes copies of the database, when an admin asks and on a
// schedule.
type backups struct {
	*core
	opts BackupOptions
}

// Backup writes a consistent copy of the database now, for an admin, and
// returns its path.
func (b *backups) Backup(ctx context.Context, a Actor) (string, error) {
	if err := a.may(policy.TakeBackups); err != nil {
		return "", err
	}
	path, err := b.writeBackup(ctx)
	if err != nil {
		return "", err
	}
	b.audit(ctx, a.jid, ActionBackup, path, "")
	return path, nil
}

// writeBackup writes one backup and prunes the old ones.
func (b *backups) writeBackup(ctx context.Context) (string, error) {
	if b.opts.Dir == "" {
		return "", ErrNoBackupDir
	}
	path, err := b.store.WriteBackup(ctx, b.opts.Dir)
	if err != nil {
		return "", err
	}
	removed, err := store.PruneBackups(b.opts.Dir, b.opts.Keep)
	if err != nil {
		// The new backup is there; only the old ones pile up.
		b.log.WarnContext(ctx, "old backups not removed", slog.Any("err", err))
	}
	b.log.InfoContext(ctx, "backup written", slog.String("path", path), slog.Int("pruned", len(removed)))
	return path, nil
}

// backupRetry is how long the schedule waits after a failed backup before
// it tries again (the interval, if that is shorter).
const backupRetry = time.Hour

// RunBackups writes a backup whenever the newest one in the folder is
// interval old, until ctx ends. It counts from the newest backup on disk,
// not from its own start, so a service restarted more often than interval
// still backs up: with no backup in the folder, or only older ones, it
// writes one at once; otherwise it waits for the rest of the interval. A
// backup an admin asked for counts too. A failed backup is logged and tried
// again after backupRetry, or interval if shorter. Without a folder or with
// an interval that is not positive it does nothing.
func (b *backups) RunBackups(ctx context.Context, interval time.Duration) {
	if b.opts.Dir == "" || interval <= 0 {
		return
	}
	for {
		wait := b.untilDue(ctx, interval)
		if wait <= 0 {
			_, err := b.writeBackup(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				b.log.ErrorContext(ctx, "scheduled backup failed", slog.Any("err", fmt.Errorf("backup: %w", err)))
				wait = min(interval, backupRetry)
			default:
				wait = b.untilDue(ctx, interval)
				if wait <= 0 {
					// The new backup is not seen as the newest (the
					// folder could not be listed): wait a whole
					// interval rather than write one after another.
					wait = interval
				}
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// untilDue returns how long until the next scheduled backup: interval after
// the newest backup in the folder, by the time in its name. Zero or less
// means now: there is none, or the newest is interval old or older, or the
// folder cannot be read (then writing a backup will say why). Backups dated
// after now, by a clock that was ahead, do not count; they would put off
// every backup for as long as that clock was ahead.
func (b *backups) untilDue(ctx context.Context, interval time.Duration) time.Duration {
	files, err := store.ListBackups(b.opts.Dir)
	if err != nil {
		b.log.WarnContext(ctx, "backups not listed; backing up now", slog.Any("err", err))
		return 0
	}
	now := b.now()
	for _, f := range slices.Backward(files) {
		if !f.Time.After(now) {
			return f.Time.Add(interval).Sub(now)
		}
	}
	return 0
}
