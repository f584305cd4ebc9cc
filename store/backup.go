package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// Backup file names: a fixed prefix and the UTC time, so that names sort in
// time order and pruning can tell backups from anything else in the folder.
const (
	backupPrefix = "invitebot-"
	backupSuffix = ".db"
	backupLayout = "20060102T150405.000Z"
)

// WriteBackup writes a consistent copy of the database into dir and returns
// the file's path. It copies inside one read transaction: writers go on
// meanwhile, and the copy is the database as of the transaction's start. The
// file appears under its final name only once complete (written beside it,
// synced, renamed), owner-only like the database, since it holds live
// tokens.
func (s *Store) WriteBackup(ctx context.Context, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	name := backupPrefix + s.now().UTC().Format(backupLayout) + backupSuffix
	final := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, ".partial-"+name+"-*")
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := tmp.Chmod(fileMode); err != nil {
		tmp.Close()
		return "", fmt.Errorf("backup: %w", err)
	}
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		_, err := tx.WriteTo(tmp)
		return err
	})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		return "", fmt.Errorf("backup to %s: %w", dir, err)
	}
	return final, nil
}

// PruneBackups removes all but the newest keep backups in dir and returns
// the paths removed. Files that are not backups are left alone.
func PruneBackups(dir string, keep int) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("prune backups: %w", err)
	}
	var backups []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, backupPrefix) || !strings.HasSuffix(name, backupSuffix) {
			continue
		}
		stamp := strings.TrimSuffix(strings.TrimPrefix(name, backupPrefix), backupSuffix)
		if _, err := time.Parse(backupLayout, stamp); err != nil {
			continue
		}
		backups = append(backups, name)
	}
	slices.Sort(backups) // oldest first: the names are times
	var removed []string
	for len(backups) > max(keep, 0) {
		path := filepath.Join(dir, backups[0])
		if err := os.Remove(path); err != nil {
			return removed, fmt.Errorf("prune backups: %w", err)
		}
		removed = append(removed, path)
		backups = backups[1:]
	}
	return removed, nil
}
