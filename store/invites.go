package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
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
	return s.addInvite(ctx, inv, entry, nil)
}

// addInvite is AddInvite that also runs then, when not nil, in the same
// transaction with the invite as stored: an error from it undoes
// everything, so a decision that the invite depends on (an account
// request still open) is made together with recording it.
func (s *Store) addInvite(ctx context.Context, inv Invite, entry AuditEntry, then func(*bbolt.Tx, Invite) error) (Invite, error) {
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
		if inv, err = s.addInviteTx(tx, inv, entry); err != nil || then == nil {
			return err
		}
		return then(tx, inv)
	})
	if err != nil {
		return Invite{}, fmt.Errorf("add invite: %w", err)
	}
	return inv, nil
}

// addInviteTx is AddInvite inside tx, for callers that batch many writes in
// one transaction (Generate) and for addInvite's hook. inv and entry are
// already validated.
func (s *Store) addInviteTx(tx *bbolt.Tx, inv Invite, entry AuditEntry) (Invite, error) {
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
	if err := putJSON(invites, []byte(id), inv); err != nil {
		return Invite{}, err
	}
	if err := byToken.Put([]byte(inv.Token), []byte(id)); err != nil {
		return Invite{}, err
	}
	if err := indexCreated(tx, inv); err != nil {
		return Invite{}, err
	}
	if err := indexState(tx, inv, true); err != nil {
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
	if len(inv.UsedBy) > maxKeyPart {
		return fmt.Errorf("account of %d bytes: %w", len(inv.UsedBy), ErrInvalid)
	}
	// inviterKey checks the inviter and the range of Created.
	_, err := inviterKey(inv.Inviter, inv.Created, "")
	return err
}

// freshID draws IDs until one is unused in b.
func (s *Store) freshID(b *bbolt.Bucket) (string, error) {
	for range maxIDAttempts {
		id := s.newID()
		if b.Get([]byte(id)) == nil {
			return id, nil
		}
	}
	return "", fmt.Errorf("no unused id after %d attempts; random source broken?", maxIDAttempts)
}

// Invite returns the invite with the given ID, or ErrNotFound.
func (s *Store) Invite(ctx context.Context, id string) (Invite, error) {
	return readRecord[Invite](ctx, s, bucketInvites, "invite", id)
}

// getInvite reads one invite inside tx.
func getInvite(tx *bbolt.Tx, id string) (Invite, error) {
	return getRecord[Invite](tx, bucketInvites, "invite", id)
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

// PendingInvites returns every pending invite, oldest first. It reads the
// pending index and the records it points at, nothing else; usage
// tracking, which must not hold them all at once, pages through
// PendingPage instead.
func (s *Store) PendingInvites(ctx context.Context) ([]Invite, error) {
	out := []Invite{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketInvitesPending).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) < 8 {
				return fmt.Errorf("malformed pending index key %q", k)
			}
			inv, err := indexedInvite(tx, k[8:], "pending index")
			if err != nil {
				return err
			}
			out = append(out, inv)
		}
		return nil
	})
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

// indexedInvite reads the invite an index entry names. The index and the
// invites are written in one transaction, so a miss means the file was
// damaged.
func indexedInvite(tx *bbolt.Tx, id []byte, index string) (Invite, error) {
	inv, err := getInvite(tx, string(id))
	if err != nil {
		return Invite{}, fmt.Errorf("%s points at invite %s: %w", index, id, err)
	}
	return inv, nil
}

// PendingPage returns up to limit pending invites as usage tracking needs
// them, soonest expiry first and unknown expiry last, starting after the
// invite after names (from the beginning when after.ID is empty). Pass
// the last of a page to get the next; a page shorter than limit is the
// last. Invites settled in between simply no longer appear. limit must be
// positive (ErrInvalid).
func (s *Store) PendingPage(ctx context.Context, after PendingRef, limit int) ([]PendingRef, error) {
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
	if len(usedBy) > maxKeyPart {
		return Invite{}, fmt.Errorf("set invite %q state: account of %d bytes: %w", id, len(usedBy), ErrInvalid)
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
	if err := indexState(tx, inv, false); err != nil {
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
	if err := indexState(tx, inv, true); err != nil {
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

// QuotaCounts is what the store counts against one inviter's limits.
type QuotaCounts struct {
	// Created counts the inviter's invites created at or after the time
	// asked about.
	Created int
	// Pending counts the inviter's pending invites.
	Pending int
	// GlobalCreated counts everyone's invites created at or after that
	// time, except those of the inviters excluded.
	GlobalCreated int
}

// QuotaCounts counts inviter's invites created at or after since, inviter's
// pending invites, and everyone's invites created at or after since except
// those of the inviters in exclude (admins, whom the global limit does not
// count). It reads a few index entries per inviter involved, however many
// invites there are.
func (s *Store) QuotaCounts(ctx context.Context, inviter string, since time.Time, exclude []string) (QuotaCounts, error) {
	var q QuotaCounts
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		if q.Created, err = countOwnCreated(tx, inviter, since); err != nil {
			return err
		}
		if raw := tx.Bucket(bucketPendingCounts).Get([]byte(inviter)); raw != nil && inviter != "" {
			n, err := getUint64(raw)
			if err != nil {
				return fmt.Errorf("pending count of %q: %w", inviter, err)
			}
			q.Pending = int(n)
		}
		all, err := countFrom(tx.Bucket(bucketInvitesByCreated), nil, createdFrom(since))
		if err != nil {
			return err
		}
		for _, x := range dedup(exclude) {
			// An excluded inviter's event link invites still count.
			n, err := countOwnCreated(tx, x, since)
			if err != nil {
				return err
			}
			all -= n
		}
		q.GlobalCreated = all
		return nil
	})
	if err != nil {
		return QuotaCounts{}, fmt.Errorf("count invites of %q since %s: %w", inviter, since, err)
	}
	return q, nil
}

// createdFrom is the first key of invites_by_created at or after since.
func createdFrom(since time.Time) []byte {
	if since.Before(minCreated) {
		since = minCreated
	}
	if since.After(maxCreated) {
		// Nothing is created after maxCreated; an empty range.
		return putUint64(math.MaxUint64)
	}
	return putUint64(uint64(since.UnixNano()))
}

// inviterFrom is the first key of inviter's entries in invites_by_inviter
// at or after since.
func inviterFrom(inviter string, since time.Time) []byte {
	return append(inviterPrefix(inviter), createdFrom(since)...)
}

// validInviter says whether inviter can be in the inviter indexes; a prefix
// scan with any other would match other inviters.
func validInviter(inviter string) bool {
	return inviter != "" && strings.IndexByte(inviter, 0) < 0
}

// countCreated counts inviter's invites created at or after since.
func countCreated(tx *bbolt.Tx, inviter string, since time.Time) (int, error) {
	if !validInviter(inviter) {
		return 0, nil
	}
	return countFrom(tx.Bucket(bucketInvitesByInviter), inviterPrefix(inviter), inviterFrom(inviter, since))
}

// countOwnCreated counts inviter's invites created at or after since that
// did not come from an event link: the ones the inviter's own quota and the
// admins' exemption from the global limit apply to.
func countOwnCreated(tx *bbolt.Tx, inviter string, since time.Time) (int, error) {
	all, err := countCreated(tx, inviter, since)
	if err != nil || all == 0 {
		return all, err
	}
	ev, err := countFrom(tx.Bucket(bucketEventByInviter), inviterPrefix(inviter), inviterFrom(inviter, since))
	if err != nil {
		return 0, err
	}
	return all - ev, nil
}

// dedup drops repeated strings, so that an inviter excluded twice is not
// subtracted twice.
func dedup(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := list[:0:0]
	for _, x := range list {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// OldestCreatedSince returns the creation times of the n oldest invites
// created at or after since, oldest first: inviter's own, or when inviter
// is empty everyone's except those of the inviters in exclude. A quota
// refusal needs them to say when the next invite is possible, so they are
// only read then; it walks n entries (and the excluded ones among them).
func (s *Store) OldestCreatedSince(ctx context.Context, inviter string, since time.Time, exclude []string, n int) ([]time.Time, error) {
	out := []time.Time{}
	skip := make(map[string]bool, len(exclude))
	for _, x := range exclude {
		skip[x] = true
	}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if inviter != "" {
			if !validInviter(inviter) {
				return nil
			}
			prefix := inviterPrefix(inviter)
			c := tx.Bucket(bucketInvitesByInviter).Cursor()
			for k, v := c.Seek(inviterFrom(inviter, since)); k != nil && bytes.HasPrefix(k, prefix) && len(out) < n; k, v = c.Next() {
				if len(k) < len(prefix)+8 || len(v) < 8 {
					return fmt.Errorf("malformed inviter index entry %q", k)
				}
				if isEventEntry(v[8:]) {
					continue // not on the inviter's own quota
				}
				out = append(out, time.Unix(0, int64(binary.BigEndian.Uint64(k[len(prefix):]))).UTC())
			}
			return nil
		}
		c := tx.Bucket(bucketInvitesByCreated).Cursor()
		for k, v := c.Seek(createdFrom(since)); k != nil && len(out) < n; k, v = c.Next() {
			if len(k) < 8 || len(v) < 8 {
				return fmt.Errorf("malformed creation index entry %q", k)
			}
			if !isEventEntry(v[8:]) && skip[string(v[8:])] {
				continue
			}
			out = append(out, time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("oldest invites of %q since %s: %w", inviter, since, err)
	}
	return out, nil
}

// NextPendingExpiry returns the earliest expiry after now among inviter's
// pending invites, or the zero time when none has a known expiry after now.
// It is when a slot under the pending limit frees up at the latest.
func (s *Store) NextPendingExpiry(ctx context.Context, inviter string, now time.Time) (time.Time, error) {
	var next time.Time
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if !validInviter(inviter) {
			return nil
		}
		prefix := inviterPrefix(inviter)
		c := tx.Bucket(bucketPendingByInviter).Cursor()
		for k, _ := c.Seek(append(bytes.Clone(prefix), expiryBytes(now.Add(1))...)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) < len(prefix)+8 {
				return fmt.Errorf("malformed pending inviter index key %q", k)
			}
			inv, err := indexedInvite(tx, k[len(prefix)+8:], "pending inviter index")
			if err != nil {
				return err
			}
			if inv.Event != "" {
				continue // not on the inviter's pending limit
			}
			next = inv.Expires
			return nil
		}
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("next pending expiry of %q: %w", inviter, err)
	}
	return next, nil
}

// InvitesUsedBy returns the invites that created account (normally one).
// It returns an empty slice, not nil, when there are none.
func (s *Store) InvitesUsedBy(ctx context.Context, account string) ([]Invite, error) {
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

// UnrevokedCancelled returns the cancelled invites whose token the server
// may still accept at now: not revoked, and not expired by then (an expiry
// the server did not tell counts as never). Cancelled invites that expired
// unrevoked stay in the index but are not read again.
func (s *Store) UnrevokedCancelled(ctx context.Context, now time.Time) ([]Invite, error) {
	out := []Invite{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketInvitesUnrevoked).Cursor()
		for k, _ := c.Seek(expiryBytes(now.Add(1))); k != nil; k, _ = c.Next() {
			if len(k) < 8 {
				return fmt.Errorf("malformed unrevoked index key %q", k)
			}
			inv, err := indexedInvite(tx, k[8:], "unrevoked index")
			if err != nil {
				return err
			}
			out = append(out, inv)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("unrevoked cancelled invites: %w", err)
	}
	return out, nil
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
	if err := indexState(tx, inv, false); err != nil {
		return err
	}
	inv.Revoked = true
	if err := putJSON(tx.Bucket(bucketInvites), []byte(id), inv); err != nil {
		return err
	}
	return indexState(tx, inv, true)
}

// readRecord is getRecord in a read transaction of its own, with the
// error naming what was asked for.
func readRecord[T any](ctx context.Context, s *Store, bucket []byte, kind, id string) (T, error) {
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
func (s *Store) addRecord(tx *bbolt.Tx, b *bbolt.Bucket, entry AuditEntry, withID func(id string) any) (string, error) {
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
