package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// RunBackups writes a backup every interval until ctx ends. A failed backup
// is logged and tried again at the next tick.
func (b *backups) RunBackups(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		if _, err := b.writeBackup(ctx); err != nil && ctx.Err() == nil {
			b.log.ErrorContext(ctx, "scheduled backup failed", slog.Any("err", fmt.Errorf("backup: %w", err)))
		}
	})
}
