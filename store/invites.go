package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// inviteTable is the invites bucket with its token, inviter, creation and
// state indexes: recording an invite, reading it back, listing an
// inviter's or the pending ones, and its moves out of pending (a final
// state, the revocation of a cancelled token).
type inviteTable struct{ *base }

// State is the lifecycle state of an Invite.
type State string

// Invite states. Every invite starts pending and leaves that state at most
// once; the store refuses any other transition (see SetInviteState).
const (
	StatePending   State = "pending"
	StateCancelled State = "cancelled"
	StateUsed      State = "used"
	StateExpired   State = "expired"
)

// validState reports whether s is one of the known states, so garbage from a
// caller never reaches the file.
func validState(s State) bool {
	switch s {
	case StatePending, StateCancelled, StateUsed, StateExpired:
		return true
	}
	return false
}

// Invite is one account invitation handed out by the bot.
type Invite struct {
	ID         string    `json:"id"`
	Token      string    `json:"token"`
	URI        string    `json:"uri"`
	LandingURL string    `json:"landing_url,omitempty"`
	Domain     string    `json:"domain"`
	Inviter    string    `json:"inviter"` // bare JID
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	State      State     `json:"state"`
	Note       string    `json:"note,omitempty"`
	UsedBy     string    `json:"used_by,omitempty"` // account created with it, when known
	Changed    time.Time `json:"changed,omitzero"`  // when State last changed
	// Revoked records that the server was made to refuse the token of a
	// cancelled invite. A cancelled invite without it still works at the
	// server, and revocation is retried.
	Revoked bool `json:"revoked,omitempty"`
	// Unrevocable records that the server refused to make the token of a
	// cancelled invite unusable in the one way it offered then (Prosody
	// 13.0.8 will not let a password reset token be used up by another
	// account): the token works there until it expires. Such an invite
	// stays in the unrevoked index, so that a server which later learns to
	// delete tokens (mod_invitebot loaded) can still revoke it.
	Unrevocable bool `json:"unrevocable,omitempty"`
	// ResetFor, when set, makes this a password reset link for that
	// account (bare JID) rather than an invite for a new account.
	ResetFor string `json:"reset_for,omitempty"`
	// Request, when set, is the account request whose approval minted
	// this invite.
	Request string `json:"request,omitempty"`
	// Event, when set, is the id of the event link that handed this
	// invite to one of its visitors.
	Event string `json:"event,omitempty"`
}

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
func (s inviteTable) AddInvite(ctx context.Context, inv Invite, entry AuditEntry) (Invite, error) {
	return s.addInvite(ctx, inv, entry, nil)
}

// addInvite is AddInvite that also runs then, when not nil, in the same
// transaction with the invite as stored: an error from it undoes
// everything, so a decision that the invite depends on (an account
// request still open) is made together with recording it.
func (s inviteTable) addInvite(ctx context.Context, inv Invite, entry AuditEntry, then func(*bbolt.Tx, Invite) error) (Invite, error) {
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
func (s inviteTable) addInviteTx(tx *bbolt.Tx, inv Invite, entry AuditEntry) (Invite, error) {
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

// Invite returns the invite with the given ID, or ErrNotFound.
func (s inviteTable) Invite(ctx context.Context, id string) (Invite, error) {
	return readRecord[Invite](ctx, s.base, bucketInvites, "invite", id)
}

// getInvite reads one invite inside tx.
func getInvite(tx *bbolt.Tx, id string) (Invite, error) {
	return getRecord[Invite](tx, bucketInvites, "invite", id)
}

// InvitesByInviter returns the invites handed out by inviter (a bare JID,
// compared exactly), newest first. It returns an empty slice, not nil, when
// there are none.
func (s inviteTable) InvitesByInviter(ctx context.Context, inviter string) ([]Invite, error) {
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
func (s inviteTable) PendingInvites(ctx context.Context) ([]Invite, error) {
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

// SetInviteState moves a pending invite to state to, records usedBy when it
// is not empty, sets Changed to the audit entry's time and appends the entry,
// all in one transaction. entry.Subject defaults to id and entry.Time to now.
//
// Only pending invites move, and only once: that is what makes "used" and
// "cancelled" final, even when the expiry sweep and a cancel race each other.
// It returns ErrNotFound for an unknown id, ErrNotPending for an invite that
// already left pending (nothing is written then, not even the audit entry),
// and ErrInvalid when to is not a final state.
func (s inviteTable) SetInviteState(ctx context.Context, id string, to State, usedBy string, entry AuditEntry) (Invite, error) {
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
func (s inviteTable) setInviteState(tx *bbolt.Tx, id string, to State, usedBy string, entry AuditEntry) (Invite, error) {
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

// UnrevokedCancelled returns the cancelled invites whose token the server
// may still accept at now: not revoked, and not expired by then (an expiry
// the server did not tell counts as never). Cancelled invites that expired
// unrevoked stay in the index but are not read again.
func (s inviteTable) UnrevokedCancelled(ctx context.Context, now time.Time) ([]Invite, error) {
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
func (s inviteTable) MarkRevoked(ctx context.Context, id string, entry AuditEntry) error {
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
func (s inviteTable) markRevoked(tx *bbolt.Tx, id string, entry AuditEntry) error {
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
	inv.Revoked, inv.Unrevocable = true, false
	if err := putJSON(tx.Bucket(bucketInvites), []byte(id), inv); err != nil {
		return err
	}
	return indexState(tx, inv, true)
}

// MarkUnrevocable records that the server refused to revoke a cancelled
// invite's token in the way it offers (see Invite.Unrevocable), with its
// audit entry, and returns the invite as stored. Only a cancelled invite
// whose token is not revoked can be marked.
func (s inviteTable) MarkUnrevocable(ctx context.Context, id string, entry AuditEntry) (Invite, error) {
	if err := validateAudit(entry); err != nil {
		return Invite{}, fmt.Errorf("mark %q unrevocable: %w", id, err)
	}
	var out Invite
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		inv, err := getInvite(tx, id)
		if err != nil {
			return err
		}
		if inv.State != StateCancelled || inv.Revoked {
			return fmt.Errorf("%w: only a cancelled invite whose token is not revoked: it is %s (revoked: %v)", ErrInvalid, inv.State, inv.Revoked)
		}
		if entry.Subject == "" {
			entry.Subject = id
		}
		if _, err := s.appendAudit(tx, entry); err != nil {
			return err
		}
		// The unrevoked index keys on state, revocation and expiry, none of
		// which changes here.
		inv.Unrevocable = true
		out = inv
		return putJSON(tx.Bucket(bucketInvites), []byte(id), inv)
	})
	if err != nil {
		return Invite{}, fmt.Errorf("mark %q unrevocable: %w", id, err)
	}
	return out, nil
}
