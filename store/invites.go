package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// Invite ID shape: 10 random bytes (80 bits, unguessable) in lowercase
// base32 without padding, which is 16 characters that survive URLs, chat
// clients and being read aloud (no 0/O or 1/l confusion).
const (
	idBytes    = 10
	idLen      = 16
	idAlphabet = "abcdefghijklmnopqrstuvwxyz234567" // RFC 4648 base32, lowercased
)

// maxIDAttempts bounds the retry on an ID collision. With 80 random bits a
// single collision is already astronomically unlikely; hitting the bound
// means the random source is broken and retrying forever would hide that.
const maxIDAttempts = 8

var idEncoding = base32.NewEncoding(idAlphabet).WithPadding(base32.NoPadding)

// newID returns a fresh random invite ID.
func newID() string {
	var b [idBytes]byte
	// Since Go 1.24 crypto/rand.Read never returns an error: it crashes the
	// program instead, which is right when there is no entropy to be had.
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// ValidID reports whether s has the shape of an invite ID, so callers can
// reject garbage typed in chat before asking the store.
func ValidID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(idAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// minCreated and maxCreated bound Invite.Created to what fits the inviter
// index key: unsigned big-endian Unix nanoseconds sort correctly only from
// 1970 on, and int64 nanoseconds end in 2262.
var (
	minCreated = time.Unix(0, 0)
	maxCreated = time.Unix(0, 1<<63-1)
)

// inviterKey builds the invites_by_inviter key. The 0x00 separator keeps
// "alice@a.org" from matching "alice@a.org.evil" in a prefix scan, and the
// big-endian timestamp makes byte order equal time order.
func inviterKey(inviter string, created time.Time, id string) ([]byte, error) {
	if inviter == "" || strings.IndexByte(inviter, 0) >= 0 {
		return nil, fmt.Errorf("inviter %q unusable as index key: %w", inviter, ErrInvalid)
	}
	if created.Before(minCreated) || created.After(maxCreated) {
		return nil, fmt.Errorf("created time %s outside 1970..2262: %w", created, ErrInvalid)
	}
	key := make([]byte, 0, len(inviter)+1+8+len(id))
	key = append(key, inviter...)
	key = append(key, 0)
	key = binary.BigEndian.AppendUint64(key, uint64(created.UnixNano()))
	key = append(key, id...)
	return key, nil
}

// inviterPrefix is the part of inviterKey shared by all of one inviter's
// entries.
func inviterPrefix(inviter string) []byte {
	return append([]byte(inviter), 0)
}

// AddInvite stores inv under a fresh ID, indexes it by token and inviter and
// appends entry to the audit log, all in one transaction. Any ID already in
// inv is replaced: IDs are the store's to hand out. An empty State means
// StatePending. entry.Subject defaults to the new ID and entry.Time to now.
// The returned copy carries the ID and times as stored (UTC).
//
// It returns ErrExists if the token is already stored (the server minted a
// token twice, or the caller recorded the same invite twice), and ErrInvalid
// for an invite without token, inviter or creation time.
func (s *Store) AddInvite(ctx context.Context, inv Invite, entry AuditEntry) (Invite, error) {
	if inv.State == "" {
		inv.State = StatePending
	}
	if err := validateInvite(inv); err != nil {
		return Invite{}, fmt.Errorf("add invite: %w", err)
	}
	if err := validateAudit(entry); err != nil {
		return Invite{}, fmt.Errorf("add invite: %w", err)
	}
	// UTC so the copy we return is identical to what a later read decodes.
	inv.Created = inv.Created.UTC()
	inv.Expires = inv.Expires.UTC()
	inv.Changed = inv.Changed.UTC()

	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		inv, err = s.addInvite(tx, inv, entry)
		return err
	})
	if err != nil {
		return Invite{}, fmt.Errorf("add invite: %w", err)
	}
	return inv, nil
}

// addInvite is AddInvite inside tx, for callers that batch many writes in
// one transaction (Generate). inv and entry are already validated.
func (s *Store) addInvite(tx *bbolt.Tx, inv Invite, entry AuditEntry) (Invite, error) {
	invites := tx.Bucket(bucketInvites)
	byToken := tx.Bucket(bucketInvitesByToken)
	// The token is a secret: name the invite holding it, never the token.
	if other := byToken.Get([]byte(inv.Token)); other != nil {
		return Invite{}, fmt.Errorf("token already recorded for invite %s: %w", other, ErrExists)
	}
	id, err := s.freshID(invites)
	if err != nil {
		return Invite{}, err
	}
	inv.ID = id
	key, err := inviterKey(inv.Inviter, inv.Created, id)
	if err != nil {
		return Invite{}, err
	}
	if err := putJSON(invites, []byte(id), inv); err != nil {
		return Invite{}, err
	}
	if err := byToken.Put([]byte(inv.Token), []byte(id)); err != nil {
		return Invite{}, err
	}
	if err := tx.Bucket(bucketInvitesByInviter).Put(key, []byte{}); err != nil {
		return Invite{}, err
	}
	if entry.Subject == "" {
		entry.Subject = id
	}
	if _, err := s.appendAudit(tx, entry); err != nil {
		return Invite{}, err
	}
	return inv, nil
}

// validateInvite rejects what would corrupt the indexes or make the record
// useless for later questions ("who invited this account?").
func validateInvite(inv Invite) error {
	if inv.Token == "" {
		return fmt.Errorf("empty token: %w", ErrInvalid)
	}
	if !validState(inv.State) {
		return fmt.Errorf("unknown state %q: %w", inv.State, ErrInvalid)
	}
	if inv.Created.IsZero() {
		return fmt.Errorf("zero created time: %w", ErrInvalid)
	}
	// inviterKey checks the inviter and the range of Created.
	_, err := inviterKey(inv.Inviter, inv.Created, "")
	return err
}

// freshID draws IDs until one is unused in invites.
func (s *Store) freshID(invites *bbolt.Bucket) (string, error) {
	for range maxIDAttempts {
		id := s.newID()
		if invites.Get([]byte(id)) == nil {
			return id, nil
		}
	}
	return "", fmt.Errorf("no unused invite id after %d attempts; random source broken?", maxIDAttempts)
}

// Invite returns the invite with the given ID, or ErrNotFound.
func (s *Store) Invite(ctx context.Context, id string) (Invite, error) {
	var inv Invite
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		inv, err = getInvite(tx, id)
		return err
	})
	if err != nil {
		return Invite{}, fmt.Errorf("get invite %q: %w", id, err)
	}
	return inv, nil
}

// getInvite reads one invite inside tx.
func getInvite(tx *bbolt.Tx, id string) (Invite, error) {
	if id == "" {
		// bbolt has no empty keys; answer the question instead of erroring.
		return Invite{}, ErrNotFound
	}
	raw := tx.Bucket(bucketInvites).Get([]byte(id))
	if raw == nil {
		return Invite{}, ErrNotFound
	}
	var inv Invite
	if err := json.Unmarshal(raw, &inv); err != nil {
		return Invite{}, fmt.Errorf("decode invite %s: %w", id, err)
	}
	return inv, nil
}

// InvitesByInviter returns the invites handed out by inviter (a bare JID,
// compared exactly), newest first. It returns an empty slice, not nil, when
// there are none.
func (s *Store) InvitesByInviter(ctx context.Context, inviter string) ([]Invite, error) {
	out := []Invite{}
	if inviter == "" || strings.IndexByte(inviter, 0) >= 0 {
		// Such an inviter cannot have been stored (AddInvite refuses it),
		// and a prefix scan with it would match other inviters.
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list invites of %q: %w", inviter, err)
		}
		return out, nil
	}
	prefix := inviterPrefix(inviter)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketInvitesByInviter).Cursor()
		// Walk backwards from just past the prefix (0x00 -> 0x01) so the
		// newest entries come first without buffering and reversing.
		end := append([]byte(inviter), 1)
		k, _ := c.Seek(end)
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			if len(k) < len(prefix)+8 {
				return fmt.Errorf("malformed inviter index key %q", k)
			}
			id := string(k[len(prefix)+8:])
			inv, err := getInvite(tx, id)
			if err != nil {
				// The index and the invites are written in one transaction,
				// so a miss here means the file was damaged.
				return fmt.Errorf("inviter index points at invite %s: %w", id, err)
			}
			out = append(out, inv)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list invites of %q: %w", inviter, err)
	}
	return out, nil
}

// PendingInvites returns every pending invite, oldest first, for the expiry
// sweep and for revoking an inviter. It scans all invites: there is no state
// index because the bot's whole history is small and the sweep is rare.
func (s *Store) PendingInvites(ctx context.Context) ([]Invite, error) {
	out, err := s.scanInvites(ctx, func(inv Invite) bool { return inv.State == StatePending })
	if err != nil {
		return nil, fmt.Errorf("list pending invites: %w", err)
	}
	slices.SortFunc(out, func(a, b Invite) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// SetInviteState moves a pending invite to state to, records usedBy when it
// is not empty, sets Changed to the audit entry's time and appends the entry,
// all in one transaction. entry.Subject defaults to id and entry.Time to now.
//
// Only pending invites move, and only once: that is what makes "used" and
// "cancelled" final, even when the expiry sweep and a cancel race each other.
// It returns ErrNotFound for an unknown id, ErrNotPending for an invite that
// already left pending (nothing is written then, not even the audit entry),
// and ErrInvalid when to is not a final state.
func (s *Store) SetInviteState(ctx context.Context, id string, to State, usedBy string, entry AuditEntry) (Invite, error) {
	if !validState(to) || to == StatePending {
		return Invite{}, fmt.Errorf("set invite %q state: target state %q: %w", id, to, ErrInvalid)
	}
	if err := validateAudit(entry); err != nil {
		return Invite{}, fmt.Errorf("set invite %q state: %w", id, err)
	}
	var inv Invite
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		inv, err = s.setInviteState(tx, id, to, usedBy, entry)
		return err
	})
	if err != nil {
		return Invite{}, fmt.Errorf("set invite %q state to %s: %w", id, to, err)
	}
	return inv, nil
}

// setInviteState is SetInviteState inside tx; to and entry are already
// validated.
func (s *Store) setInviteState(tx *bbolt.Tx, id string, to State, usedBy string, entry AuditEntry) (Invite, error) {
	inv, err := getInvite(tx, id)
	if err != nil {
		return Invite{}, err
	}
	if inv.State != StatePending {
		return Invite{}, fmt.Errorf("invite is %s: %w", inv.State, ErrNotPending)
	}
	if entry.Subject == "" {
		entry.Subject = id
	}
	entry, err = s.appendAudit(tx, entry)
	if err != nil {
		return Invite{}, err
	}
	inv.State = to
	if usedBy != "" {
		inv.UsedBy = usedBy
	}
	inv.Changed = entry.Time
	if err := putJSON(tx.Bucket(bucketInvites), []byte(id), inv); err != nil {
		return Invite{}, err
	}
	return inv, nil
}

// putJSON encodes v and stores it under key.
func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return b.Put(key, raw)
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
		return s.markRevoked(tx, id, entry)
	})
	if err != nil {
		return fmt.Errorf("mark %q revoked: %w", id, err)
	}
	return nil
}

// markRevoked is MarkRevoked inside tx; entry is already validated.
func (s *Store) markRevoked(tx *bbolt.Tx, id string, entry AuditEntry) error {
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
}
