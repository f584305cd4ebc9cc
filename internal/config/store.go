package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Defaults for the store keys an admin may leave out: the database in the
// working directory, and a daily backup, a week of them.
const (
	DefaultStorePath      = "invitebot.db"
	DefaultBackupInterval = 24 * time.Hour
	DefaultBackupKeep     = 7
)

// minBackupInterval keeps scheduled backups from filling the disk.
const minBackupInterval = time.Minute

// StoreConfig locates the bbolt database and its backups.
type StoreConfig struct {
	Path string `mapstructure:"path"`
	// BackupDir, when set, is where consistent copies of the database are
	// written every BackupInterval and when an admin sends backup.
	BackupDir string `mapstructure:"backup_dir"`
	// BackupInterval is how often a backup is written.
	BackupInterval time.Duration `mapstructure:"backup_interval"`
	// BackupKeep is how many backups are kept; older ones are removed.
	BackupKeep int `mapstructure:"backup_keep"`
}

func (s *StoreConfig) validate() []error {
	var errs []error
	if s.Path == "" {
		errs = append(errs, errors.New("store.path: must not be empty"))
	}
	if s.BackupInterval < minBackupInterval {
		errs = append(errs, fmt.Errorf("store.backup_interval: %s is shorter than %s", s.BackupInterval, minBackupInterval))
	}
	if s.BackupKeep < 1 {
		errs = append(errs, fmt.Errorf("store.backup_keep: %d must be at least 1", s.BackupKeep))
	}
	if s.BackupDir != "" && s.Path != "" && filepath.Clean(s.BackupDir) == filepath.Dir(filepath.Clean(s.Path)) {
		errs = append(errs, errors.New("store.backup_dir: must not be the database's own folder; use a folder of its own, ideally on another disk"))
	}
	return errs
}
