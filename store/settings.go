package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// settingsTable is the settings bucket, which holds the pause switch.
type settingsTable struct{ *base }

// Pause is the global pause switch: while Paused, nobody creates invites.
type Pause struct {
	Paused bool      `json:"paused"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// Pause returns the pause switch; the zero Pause when never set.
func (s settingsTable) Pause(ctx context.Context) (Pause, error) {
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
func (s settingsTable) SetPause(ctx context.Context, p Pause, entry AuditEntry) error {
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
