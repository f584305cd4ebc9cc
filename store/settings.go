package store

import (
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// Pause returns the pause switch; the zero Pause when never set.
func (s *Store) Pause(ctx context.Context) (Pause, error) {
	var p Pause
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketSettings).Get(keyPause)
		if raw == nil {
			return nil
		}
		return json.Unmarshal(raw, &p)
	})
	if err != nil {
		return Pause{}, fmt.Errorf("read pause: %w", err)
	}
	return p, nil
}

// SetPause stores the pause switch and its audit entry in one transaction.
func (s *Store) SetPause(ctx context.Context, p Pause, entry AuditEntry) error {
	if err := validateAudit(entry); err != nil {
		return fmt.Errorf("set pause: %w", err)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if _, err := s.appendAudit(tx, entry); err != nil {
			return err
		}
		p.Since = p.Since.UTC()
		return putJSON(tx.Bucket(bucketSettings), keyPause, p)
	})
	if err != nil {
		return fmt.Errorf("set pause: %w", err)
	}
	return nil
}
