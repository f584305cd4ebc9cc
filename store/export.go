package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// exporter walks every invite or audit entry in one read transaction, for
// exporting a stopped bot's file or a backup.
type exporter struct{ *base }

// exportLockTimeout is how long OpenReadOnly waits for a running bot to let
// go of the file: not at all, in effect. Exporting must fail at once with a
// clear message, never hang behind a bot that runs for months.
const exportLockTimeout = 500 * time.Millisecond

// ErrSchemaOld means the file has an older schema, which a read-only open
// cannot upgrade.
var ErrSchemaOld = errors.New("store: database schema is older than this program")

// OpenReadOnly opens a database (a stopped bot's, or a backup) for reading
// only: nothing is written, not even a schema upgrade. A file a running bot
// holds gives ErrLocked at once.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{ReadOnly: true, Timeout: exportLockTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w: stop the bot, or read a backup of it", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := newStore(db, newID, time.Now)
	v, err := s.SchemaVersion(ctx)
	switch {
	case err != nil:
	case v > latestVersion():
		err = fmt.Errorf("schema v%d, this program knows v%d: %w", v, latestVersion(), ErrSchemaTooNew)
	case v < latestVersion():
		err = fmt.Errorf("schema v%d, this program reads v%d (open it once with the bot, which upgrades it): %w", v, latestVersion(), ErrSchemaOld)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// EachInvite calls fn for every invite, in id order, inside one read
// transaction (a consistent view), until fn returns an error.
func (s exporter) EachInvite(ctx context.Context, fn func(Invite) error) error {
	return s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
			var inv Invite
			if err := json.Unmarshal(v, &inv); err != nil {
				return fmt.Errorf("decode invite %s: %w", k, err)
			}
			return fn(inv)
		})
	})
}

// EachAuditEntry calls fn for every audit entry, oldest first, inside one
// read transaction, until fn returns an error.
func (s exporter) EachAuditEntry(ctx context.Context, fn func(AuditEntry) error) error {
	return s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit entry %x: %w", k, err)
			}
			return fn(e)
		})
	})
}
