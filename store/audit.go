package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// auditLog is the append-only audit log and its audit_by_about index. The
// writes inside other tables' transactions go through base.appendAudit,
// which lives here with the checks it relies on.
type auditLog struct{ *base }

// AuditEntry is one line of the append-only audit log.
type AuditEntry struct {
	Seq     uint64    `json:"seq"` // assigned by the store
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`   // bare JID or "system"
	Action  string    `json:"action"`  // e.g. "invite.create", "grant", "revoke", "invite.cancel"
	Subject string    `json:"subject"` // invite id or JID acted upon
	Detail  string    `json:"detail,omitempty"`
}

// AppendAudit appends entry to the audit log, for decisions that change no
// other data (a refused invite, a pause). The store assigns Seq; a zero Time
// becomes now. Actor and Action are required (ErrInvalid): a line that does
// not say who did what answers no admin's question.
func (s auditLog) AppendAudit(ctx context.Context, entry AuditEntry) error {
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
// "what did this person do?" and "what was done to this invite or JID?";
// those are read through the audit_by_about index, so the cost is that of
// the n entries, not of the log. n must be positive (ErrInvalid): the log
// only grows, so an unbounded read is never what a chat reply wants. The
// result is empty, not nil, when nothing matches.
func (s auditLog) Audit(ctx context.Context, about string, n int) ([]AuditEntry, error) {
	if n <= 0 {
		return nil, fmt.Errorf("read audit: limit %d: %w", n, ErrInvalid)
	}
	out := []AuditEntry{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		log := tx.Bucket(bucketAudit)
		decode := func(k, v []byte) error {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit entry %x: %w", k, err)
			}
			out = append(out, e)
			return nil
		}
		if about == "" {
			c := log.Cursor()
			for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
				if err := decode(k, v); err != nil {
					return err
				}
			}
			return nil
		}
		prefix := lenPrefix(about)
		c := tx.Bucket(bucketAuditByAbout).Cursor()
		for k, _ := lastWithPrefix(c, prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < n; k, _ = c.Prev() {
			seq := k[len(prefix):]
			v := log.Get(seq)
			if v == nil {
				// Written in one transaction with the entry: a miss means
				// the file was damaged.
				return fmt.Errorf("audit index points at missing entry %x", seq)
			}
			if err := decode(seq, v); err != nil {
				return err
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
	// Actor and subject are index keys; JIDs and invite ids are far
	// shorter than this.
	if len(e.Actor) > maxKeyPart || len(e.Subject) > maxKeyPart {
		return fmt.Errorf("audit entry actor or subject longer than %d bytes: %w", maxKeyPart, ErrInvalid)
	}
	return nil
}

// appendAudit writes e inside tx and returns it as stored (Seq assigned,
// Time filled and in UTC). The sequence comes from the bucket so numbers stay
// unique and increasing even across deletions and restarts.
func (s *base) appendAudit(tx *bbolt.Tx, e AuditEntry) (AuditEntry, error) {
	b := tx.Bucket(bucketAudit)
	b.FillPercent = appendFill
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
	if err := indexAudit(tx, seq, e); err != nil {
		return AuditEntry{}, err
	}
	return e, nil
}
