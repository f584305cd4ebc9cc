package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

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

// scanInvites calls keep for every invite and returns those it accepts. It
// reads the whole bucket: fine for a community's few thousand invites, and
// the questions asked this way (quotas, who created an account) are rare.
func (s *Store) scanInvites(ctx context.Context, keep func(Invite) bool) ([]Invite, error) {
	out := []Invite{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
			var inv Invite
			if err := json.Unmarshal(v, &inv); err != nil {
				return fmt.Errorf("decode invite %s: %w", k, err)
			}
			if keep(inv) {
				out = append(out, inv)
			}
			return nil
		})
	})
	return out, err
}

// InvitesCreatedSince returns every invite created at or after since, in
// no particular order.
func (s *Store) InvitesCreatedSince(ctx context.Context, since time.Time) ([]Invite, error) {
	invs, err := s.scanInvites(ctx, func(inv Invite) bool { return !inv.Created.Before(since) })
	if err != nil {
		return nil, fmt.Errorf("invites created since %s: %w", since, err)
	}
	return invs, nil
}

// InvitesUsedBy returns the invites that created account (normally one).
func (s *Store) InvitesUsedBy(ctx context.Context, account string) ([]Invite, error) {
	invs, err := s.scanInvites(ctx, func(inv Invite) bool { return inv.UsedBy == account })
	if err != nil {
		return nil, fmt.Errorf("invites used by %s: %w", account, err)
	}
	return invs, nil
}

// UnrevokedCancelled returns cancelled invites whose token the server may
// still accept.
func (s *Store) UnrevokedCancelled(ctx context.Context) ([]Invite, error) {
	invs, err := s.scanInvites(ctx, func(inv Invite) bool { return inv.State == StateCancelled && !inv.Revoked })
	if err != nil {
		return nil, fmt.Errorf("unrevoked cancelled invites: %w", err)
	}
	return invs, nil
}

// MarkRevoked records that the server no longer accepts a cancelled
// invite's token, with its audit entry.
func (s *Store) MarkRevoked(ctx context.Context, id string, entry AuditEntry) error {
	if err := validateAudit(entry); err != nil {
		return fmt.Errorf("mark %q revoked: %w", id, err)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		inv, err := getInvite(tx, id)
		if err != nil {
			return err
		}
		if entry.Subject == "" {
			entry.Subject = id
		}
		if _, err := s.appendAudit(tx, entry); err != nil {
			return err
		}
		inv.Revoked = true
		return putJSON(tx.Bucket(bucketInvites), []byte(id), inv)
	})
	if err != nil {
		return fmt.Errorf("mark %q revoked: %w", id, err)
	}
	return nil
}
