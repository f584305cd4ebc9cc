package store

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// usageTable is what usage tracking reads and writes: invites found by
// the token or the account the server names, pending invites a page at a
// time, and the record that an invite created an account.
type usageTable struct{ *base }

// InviteByToken returns the invite holding token, or ErrNotFound. The
// server names the token when it reports which account an invite created.
func (s usageTable) InviteByToken(ctx context.Context, token string) (Invite, error) {
	var inv Invite
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if token == "" {
			return ErrNotFound // bbolt has no empty keys
		}
		id := tx.Bucket(bucketInvitesByToken).Get([]byte(token))
		if id == nil {
			return ErrNotFound
		}
		var err error
		inv, err = getInvite(tx, string(id))
		if err != nil {
			// Index and invite are written in one transaction: a miss
			// means a damaged file.
			return fmt.Errorf("token index points at invite %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		// The token is a secret: the error does not repeat it.
		return Invite{}, fmt.Errorf("invite by token: %w", err)
	}
	return inv, nil
}

// MarkUsedBy records that invite id created account, which the server
// said itself: a pending invite becomes used by account; an expired one
// too, because the expiry sweep guessed and the server knows; a used invite
// whose account was not known (usage tracking saw the token refused) gets
// it. Changed is set and entry appended as SetInviteState does. It returns
// the invite as stored and the state it had before.
//
// Nothing is written, and ErrNotPending returned, for a cancelled invite or
// one that already names an account; ErrNotFound for an unknown id.
func (s usageTable) MarkUsedBy(ctx context.Context, id, account string, entry AuditEntry) (Invite, State, error) {
	if account == "" {
		return Invite{}, "", fmt.Errorf("mark %q used: empty account: %w", id, ErrInvalid)
	}
	if len(account) > maxKeyPart {
		return Invite{}, "", fmt.Errorf("mark %q used: account of %d bytes: %w", id, len(account), ErrInvalid)
	}
	if err := validateAudit(entry); err != nil {
		return Invite{}, "", fmt.Errorf("mark %q used: %w", id, err)
	}
	var (
		inv  Invite
		prev State
	)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		inv, err = getInvite(tx, id)
		if err != nil {
			return err
		}
		prev = inv.State
		switch {
		case inv.UsedBy != "":
			return fmt.Errorf("invite already records account %s: %w", inv.UsedBy, ErrNotPending)
		case inv.State == StateCancelled:
			return fmt.Errorf("invite is %s: %w", inv.State, ErrNotPending)
		}
		if entry.Subject == "" {
			entry.Subject = id
		}
		entry, err = s.appendAudit(tx, entry)
		if err != nil {
			return err
		}
		if inv.State != StateUsed {
			inv.Changed = entry.Time
		}
		// The indexes follow the record: out with the old, in with the new.
		if err := indexState(tx, inv, false); err != nil {
			return err
		}
		inv.State, inv.UsedBy = StateUsed, account
		if err := putJSON(tx.Bucket(bucketInvites), []byte(id), inv); err != nil {
			return err
		}
		return indexState(tx, inv, true)
	})
	if err != nil {
		return Invite{}, "", fmt.Errorf("mark %q used by %s: %w", id, account, err)
	}
	return inv, prev, nil
}

// PendingPage returns up to limit pending invites as usage tracking needs
// them, soonest expiry first and unknown expiry last, starting after the
// invite after names (from the beginning when after.ID is empty). Pass
// the last of a page to get the next; a page shorter than limit is the
// last. Invites settled in between simply no longer appear. limit must be
// positive (ErrInvalid).
func (s usageTable) PendingPage(ctx context.Context, after PendingRef, limit int) ([]PendingRef, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("page pending invites: limit %d: %w", limit, ErrInvalid)
	}
	out := []PendingRef{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketInvitesPending).Cursor()
		k, v := c.First()
		if after.ID != "" {
			from := expiryKey(after.Expires, after.ID)
			if k, v = c.Seek(from); bytes.Equal(k, from) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			ref, err := pendingRef(k, v)
			if err != nil {
				return err
			}
			out = append(out, ref)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("page pending invites: %w", err)
	}
	return out, nil
}

// InvitesUsedBy returns the invites that created account (normally one).
// It returns an empty slice, not nil, when there are none.
func (s usageTable) InvitesUsedBy(ctx context.Context, account string) ([]Invite, error) {
	out := []Invite{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if account == "" {
			return nil // no invite records an empty account
		}
		prefix := lenPrefix(account)
		c := tx.Bucket(bucketInvitesByUsedBy).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			inv, err := indexedInvite(tx, k[len(prefix):], "account index")
			if err != nil {
				return err
			}
			out = append(out, inv)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("invites used by %s: %w", account, err)
	}
	return out, nil
}
