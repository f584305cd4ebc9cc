package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// grantTable is the grants bucket: who may invite, and within what limits.
type grantTable struct{ *base }

// Grant is the right to invite given by an admin.
type Grant struct {
	JID       string    `json:"jid"`
	GrantedBy string    `json:"granted_by"`
	GrantedAt time.Time `json:"granted_at"`
	Note      string    `json:"note,omitempty"`
	// PerDay and MaxPending override the configured per-inviter limits
	// when non-zero.
	PerDay     int `json:"per_day,omitempty"`
	MaxPending int `json:"max_pending,omitempty"`
	// Requests lets the holder answer account requests too.
	Requests bool `json:"requests,omitempty"`
	// Events is the largest cap the grantee may give an event link; zero
	// means they may make none.
	Events int `json:"events,omitempty"`
}

// PutGrant records g, replacing any grant for the same JID, and appends
// entry to the audit log in the same transaction. Replacing rather than
// refusing lets an admin re-grant to update the note without a revoke first.
// entry.Subject defaults to g.JID and entry.Time to now.
func (s grantTable) PutGrant(ctx context.Context, g Grant, entry AuditEntry) error {
	if g.JID == "" {
		return fmt.Errorf("put grant: empty jid: %w", ErrInvalid)
	}
	if err := validateAudit(entry); err != nil {
		return fmt.Errorf("put grant %q: %w", g.JID, err)
	}
	g.GrantedAt = g.GrantedAt.UTC()
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		return s.putGrant(tx, g, entry)
	})
	if err != nil {
		return fmt.Errorf("put grant %q: %w", g.JID, err)
	}
	return nil
}

// putGrant is PutGrant inside tx; g and entry are already validated.
func (s grantTable) putGrant(tx *bbolt.Tx, g Grant, entry AuditEntry) error {
	if err := putJSON(tx.Bucket(bucketGrants), []byte(g.JID), g); err != nil {
		return err
	}
	if entry.Subject == "" {
		entry.Subject = g.JID
	}
	_, err := s.appendAudit(tx, entry)
	return err
}

// Grant returns the grant for jid, or ErrNotFound.
func (s grantTable) Grant(ctx context.Context, jid string) (Grant, error) {
	var g Grant
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if jid == "" {
			return ErrNotFound
		}
		raw := tx.Bucket(bucketGrants).Get([]byte(jid))
		if raw == nil {
			return ErrNotFound
		}
		return json.Unmarshal(raw, &g)
	})
	if err != nil {
		return Grant{}, fmt.Errorf("get grant %q: %w", jid, err)
	}
	return g, nil
}

// DeleteGrant removes the grant for jid and appends entry to the audit log
// in the same transaction. It returns ErrNotFound, and writes no audit
// entry, when there is no such grant, so the log never claims a revocation
// that changed nothing. entry.Subject defaults to jid and entry.Time to now.
func (s grantTable) DeleteGrant(ctx context.Context, jid string, entry AuditEntry) error {
	if err := validateAudit(entry); err != nil {
		return fmt.Errorf("delete grant %q: %w", jid, err)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		grants := tx.Bucket(bucketGrants)
		if jid == "" || grants.Get([]byte(jid)) == nil {
			return ErrNotFound
		}
		if err := grants.Delete([]byte(jid)); err != nil {
			return err
		}
		if entry.Subject == "" {
			entry.Subject = jid
		}
		_, err := s.appendAudit(tx, entry)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete grant %q: %w", jid, err)
	}
	return nil
}

// Grants returns every grant sorted by JID (bbolt key order, which is byte
// order). It returns an empty slice, not nil, when there are none.
func (s grantTable) Grants(ctx context.Context) ([]Grant, error) {
	out := []Grant{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketGrants).ForEach(func(k, v []byte) error {
			var g Grant
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("decode grant %q: %w", k, err)
			}
			out = append(out, g)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	return out, nil
}
