package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// AppendAudit appends entry to the audit log, for decisions that change no
// other data (a refused invite, a pause). The store assigns Seq; a zero Time
// becomes now. Actor and Action are required (ErrInvalid): a line that does
// not say who did what answers no admin's question.
func (s *Store) AppendAudit(ctx context.Context, entry AuditEntry) error {
	if err := validateAudit(entry); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		_, err := s.appendAudit(tx, entry)
		return err
	})
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// Audit returns up to n entries, newest first. When about is not empty only
// entries whose Actor or Subject equals it are returned, which answers both
// "what did this person do?" and "what was done to this invite or JID?".
// n must be positive (ErrInvalid): the log only grows, so an unbounded read
// is never what a chat reply wants. The result is empty, not nil, when
// nothing matches.
func (s *Store) Audit(ctx context.Context, about string, n int) ([]AuditEntry, error) {
	if n <= 0 {
		return nil, fmt.Errorf("read audit: limit %d: %w", n, ErrInvalid)
	}
	out := []AuditEntry{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			// A filtered read may walk the whole log; let a caller that
			// gave up stop it.
			if err := ctx.Err(); err != nil {
				return err
			}
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit entry %x: %w", k, err)
			}
			if about == "" || e.Actor == about || e.Subject == about {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	return out, nil
}

// validateAudit is checked before any transaction starts, so a bad entry
// never costs a write lock.
func validateAudit(e AuditEntry) error {
	if e.Actor == "" {
		return fmt.Errorf("audit entry without actor: %w", ErrInvalid)
	}
	if e.Action == "" {
		return fmt.Errorf("audit entry without action: %w", ErrInvalid)
	}
	return nil
}

// appendAudit writes e inside tx and returns it as stored (Seq assigned,
// Time filled and in UTC). The sequence comes from the bucket so numbers stay
// unique and increasing even across deletions and restarts.
func (s *Store) appendAudit(tx *bbolt.Tx, e AuditEntry) (AuditEntry, error) {
	b := tx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return AuditEntry{}, fmt.Errorf("audit sequence: %w", err)
	}
	e.Seq = seq
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Time = e.Time.UTC()
	if err := putJSON(b, binary.BigEndian.AppendUint64(nil, seq), e); err != nil {
		return AuditEntry{}, fmt.Errorf("write audit entry: %w", err)
	}
	return e, nil
}
