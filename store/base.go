package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// base is what every table of the store shares: the open file, the source
// of fresh ids and the clock, and the transaction helpers built on them.
// The tables hold a pointer to one base, which Store embeds as well.
type base struct {
	db *bbolt.DB
	// newID and now are fields rather than package functions so tests can
	// force an ID collision or pin the clock without global state.
	newID func() string
	now   func() time.Time
}

// view runs fn in a read transaction unless ctx is already done. bbolt
// transactions cannot be interrupted, so checking before starting one is the
// only point where cancellation can take effect.
func (s *base) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// update is view for write transactions.
func (s *base) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

// freshID draws IDs until one is unused in b.
func (s *base) freshID(b *bbolt.Bucket) (string, error) {
	for range maxIDAttempts {
		id := s.newID()
		if b.Get([]byte(id)) == nil {
			return id, nil
		}
	}
	return "", fmt.Errorf("no unused id after %d attempts; random source broken?", maxIDAttempts)
}

// putJSON encodes v and stores it under key.
func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return b.Put(key, raw)
}

// readRecord is getRecord in a read transaction of its own, with the
// error naming what was asked for.
func readRecord[T any](ctx context.Context, s *base, bucket []byte, kind, id string) (T, error) {
	var rec T
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		rec, err = getRecord[T](tx, bucket, kind, id)
		return err
	})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("get %s %q: %w", kind, id, err)
	}
	return rec, nil
}

// addRecord stores a new record under a fresh id in b, together with its
// audit entry (about the new record unless the entry names a subject),
// and returns the id. withID gives the record to store once its id is
// known. Event links and account requests share it; invites have indexes
// of their own to write.
func (s *base) addRecord(tx *bbolt.Tx, b *bbolt.Bucket, entry AuditEntry, withID func(id string) any) (string, error) {
	id, err := s.freshID(b)
	if err != nil {
		return "", err
	}
	if err := putJSON(b, []byte(id), withID(id)); err != nil {
		return "", err
	}
	if entry.Subject == "" {
		entry.Subject = id
	}
	if _, err := s.appendAudit(tx, entry); err != nil {
		return "", err
	}
	return id, nil
}

// getRecord reads the JSON record id of kind from bucket inside tx, or
// ErrNotFound. bbolt has no empty keys: an empty id is simply not found.
func getRecord[T any](tx *bbolt.Tx, bucket []byte, kind, id string) (T, error) {
	var rec T
	if id == "" {
		return rec, ErrNotFound
	}
	raw := tx.Bucket(bucket).Get([]byte(id))
	if raw == nil {
		return rec, ErrNotFound
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		var zero T
		return zero, fmt.Errorf("decode %s %s: %w", kind, id, err)
	}
	return rec, nil
}
