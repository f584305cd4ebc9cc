package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"
)

// The indexes of schema v6 answer every question asked on a request path or
// a timer without reading more than the answer: quota counts, pending
// invites, cancelled invites whose token still works, who used an invite,
// and the audit entries about one JID or invite. Each is written in the
// transaction that writes the data it indexes, by the functions below and
// nowhere else, so an index can never disagree with the records.
//
// Two of them are ranked: each entry's value starts with its 1-based
// position among the entries that share its prefix (one inviter's, or all).
// Counting the entries from a key on is then the last rank minus the rank
// at that key, plus one: two seeks, however many invites a day brings.
// Invites are never deleted, and new ones are almost always the newest, so
// keeping the ranks right costs nothing but the rare out-of-order insert
// (two requests finishing in the other order), which moves the few later
// entries up by one.

// maxKeyPart bounds a string used in an index key (actor, subject, account).
// They are JIDs (at most 3071 bytes) or invite ids; bbolt keys end at 32 KiB.
const maxKeyPart = 4096

// noExpiry encodes an unknown expiry in an expiry-ordered key: last, since
// such a token never expires as far as the bot knows.
const noExpiry = math.MaxUint64

// appendFill is the fill factor of the buckets whose new keys land at the
// end: the audit log, the creation index and the expiry-ordered indexes
// (new invites expire last). bbolt splits a page half full by default,
// which for such keys leaves every page half empty for good, and doubles
// what reading them maps into memory.
const appendFill = 1.0

// putUint64 and getUint64 encode counts and ranks.
func putUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getUint64(b []byte) (uint64, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("index value %x shorter than 8 bytes", b)
	}
	return binary.BigEndian.Uint64(b), nil
}

// expiryBytes orders expiry times: unknown last, times outside the range of
// Unix nanoseconds clamped (their order among themselves does not matter,
// only against now).
func expiryBytes(t time.Time) []byte {
	switch {
	case t.IsZero():
		return putUint64(noExpiry)
	case t.Before(minCreated):
		return putUint64(0)
	case t.After(maxCreated):
		return putUint64(math.MaxInt64)
	}
	return putUint64(uint64(t.UnixNano()))
}

// expiryFrom decodes expiryBytes; times outside 1970..2262 come back as
// the end of that range they were clamped to.
func expiryFrom(b []byte) time.Time {
	n := binary.BigEndian.Uint64(b)
	if n == noExpiry {
		return time.Time{}
	}
	return time.Unix(0, int64(min(n, math.MaxInt64))).UTC()
}

// expiryKey is the key of the invites_pending and invites_unrevoked
// indexes.
func expiryKey(expires time.Time, id string) []byte {
	return append(expiryBytes(expires), id...)
}

// pendingInviterKey is the key of invites_pending_by_inviter.
func pendingInviterKey(inviter string, expires time.Time, id string) []byte {
	key := append(inviterPrefix(inviter), expiryBytes(expires)...)
	return append(key, id...)
}

// createdKey is the key of invites_by_created.
func createdKey(created time.Time, id string) []byte {
	return append(putUint64(uint64(created.UnixNano())), id...)
}

// lenPrefix starts a key with a string of any content: its length, then the
// string. No separator byte can then occur inside the string.
func lenPrefix(s string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(s))), s...)
}

// prefixEnd is the smallest key greater than every key starting with
// prefix, nil when there is none (an empty prefix, or one of 0xff bytes).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// lastWithPrefix positions c on the last key starting with prefix and
// returns it, or nil.
func lastWithPrefix(c *bbolt.Cursor, prefix []byte) ([]byte, []byte) {
	var k, v []byte
	if end := prefixEnd(prefix); end == nil {
		k, v = c.Last()
	} else if k, v = c.Seek(end); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	return k, v
}

// putRanked adds key to b as the entry of its rank among the keys starting
// with prefix; its value is the rank followed by extra.
func putRanked(b *bbolt.Bucket, prefix, key, extra []byte) error {
	c := b.Cursor()
	k, _ := c.Seek(key)
	if bytes.Equal(k, key) {
		return fmt.Errorf("index entry %q exists already; the file is damaged", key)
	}
	var pk, pv []byte
	if k == nil {
		pk, pv = c.Last()
	} else {
		pk, pv = c.Prev()
	}
	rank := uint64(1)
	if pk != nil && bytes.HasPrefix(pk, prefix) {
		prev, err := getUint64(pv)
		if err != nil {
			return err
		}
		rank = prev + 1
	}
	// Entries after the new one (an out-of-order insert) move up one.
	// Collected first: bbolt cursors do not survive writes.
	type entry struct{ k, v []byte }
	var later []entry
	for k, v := c.Seek(key); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		later = append(later, entry{bytes.Clone(k), bytes.Clone(v)})
	}
	for _, e := range later {
		r, err := getUint64(e.v)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint64(e.v, r+1)
		if err := b.Put(e.k, e.v); err != nil {
			return err
		}
	}
	return b.Put(key, append(putUint64(rank), extra...))
}

// countFrom counts the ranked entries of b that start with prefix and sort
// at or after from.
func countFrom(b *bbolt.Bucket, prefix, from []byte) (int, error) {
	c := b.Cursor()
	k, v := c.Seek(from)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return 0, nil
	}
	first, err := getUint64(v)
	if err != nil {
		return 0, err
	}
	_, lv := lastWithPrefix(c, prefix)
	last, err := getUint64(lv)
	if err != nil {
		return 0, err
	}
	if last < first {
		return 0, fmt.Errorf("index ranks out of order under %q; the file is damaged", prefix)
	}
	return int(last - first + 1), nil
}

// indexCreated adds a new invite to the ranked indexes. Only the immutable
// fields (inviter, created, id) are indexed there, so nothing else ever
// changes them.
func indexCreated(tx *bbolt.Tx, inv Invite) error {
	key, err := inviterKey(inv.Inviter, inv.Created, inv.ID)
	if err != nil {
		return err
	}
	var mark []byte
	if inv.Event != "" {
		mark = eventMark
	}
	if err := putRanked(tx.Bucket(bucketInvitesByInviter), inviterPrefix(inv.Inviter), key, mark); err != nil {
		return fmt.Errorf("index invite %s by inviter: %w", inv.ID, err)
	}
	if inv.Event != "" {
		// Event link invites are counted apart: they count toward the
		// global limit whoever made the link, and not toward the
		// creator's own per-day limit.
		if err := putRanked(tx.Bucket(bucketEventByInviter), inviterPrefix(inv.Inviter), key, nil); err != nil {
			return fmt.Errorf("index event invite %s by inviter: %w", inv.ID, err)
		}
	}
	byCreated := tx.Bucket(bucketInvitesByCreated)
	byCreated.FillPercent = appendFill
	if err := putRanked(byCreated, nil, createdKey(inv.Created, inv.ID), append(mark, inv.Inviter...)); err != nil {
		return fmt.Errorf("index invite %s by creation: %w", inv.ID, err)
	}
	return nil
}

// eventMark follows the rank in the values of invites_by_inviter and
// precedes the inviter in those of invites_by_created for an invite handed
// out by an event link. No inviter contains a 0x00 byte.
var eventMark = []byte{0}

// isEventEntry says whether the part of an index value after the rank
// carries eventMark.
func isEventEntry(rest []byte) bool { return len(rest) > 0 && rest[0] == 0 }

// PendingRef is what usage tracking needs of a pending invite. The pending
// index carries it, so a sweep reads that small index alone instead of
// records scattered over the whole file.
type PendingRef struct {
	ID      string
	Token   string
	Inviter string
	// Expires is zero when the server did not say; a time outside
	// 1970..2262 reads as the end of that range.
	Expires time.Time
}

// pendingValue is the value of an invites_pending entry: the token with
// its length, then the inviter. Binary rather than JSON because a sweep
// reads every entry, so their size is what a sweep maps into memory.
func pendingValue(token, inviter string) []byte {
	return append(lenPrefix(token), inviter...)
}

// pendingRef decodes an invites_pending entry.
func pendingRef(k, v []byte) (PendingRef, error) {
	n, w := binary.Uvarint(v)
	if len(k) < 8 || w <= 0 || uint64(len(v)-w) < n {
		return PendingRef{}, fmt.Errorf("malformed pending index entry %q", k)
	}
	return PendingRef{
		ID:      string(k[8:]),
		Token:   string(v[w : w+int(n)]),
		Inviter: string(v[w+int(n):]),
		Expires: expiryFrom(k[:8]),
	}, nil
}

// indexState adds (add true) or removes the index entries that depend on
// inv's mutable fields: state, Revoked and UsedBy. A change to an invite
// removes the entries of the old record and adds those of the new one,
// which keeps the rule in this one place.
func indexState(tx *bbolt.Tx, inv Invite, add bool) error {
	set := func(b *bbolt.Bucket, key, value []byte) error {
		if add {
			return b.Put(key, value)
		}
		return b.Delete(key)
	}
	if inv.State == StatePending {
		pending := tx.Bucket(bucketInvitesPending)
		pending.FillPercent = appendFill
		if err := set(pending, expiryKey(inv.Expires, inv.ID), pendingValue(inv.Token, inv.Inviter)); err != nil {
			return fmt.Errorf("index pending invite %s: %w", inv.ID, err)
		}
		if err := set(tx.Bucket(bucketPendingByInviter), pendingInviterKey(inv.Inviter, inv.Expires, inv.ID), []byte{}); err != nil {
			return fmt.Errorf("index pending invite %s by inviter: %w", inv.ID, err)
		}
		if err := scheduleState(tx, inv, add); err != nil {
			return err
		}
		// An event link's invites do not count toward the creator's
		// pending limit; the link's own cap bounds them.
		if inv.Event == "" {
			if err := addPendingCount(tx, inv.Inviter, add); err != nil {
				return fmt.Errorf("count pending invite %s: %w", inv.ID, err)
			}
		}
	}
	if inv.State == StateCancelled && !inv.Revoked {
		unrevoked := tx.Bucket(bucketInvitesUnrevoked)
		unrevoked.FillPercent = appendFill
		if err := set(unrevoked, expiryKey(inv.Expires, inv.ID), []byte{}); err != nil {
			return fmt.Errorf("index unrevoked invite %s: %w", inv.ID, err)
		}
	}
	if inv.UsedBy != "" {
		if err := set(tx.Bucket(bucketInvitesByUsedBy), append(lenPrefix(inv.UsedBy), inv.ID...), []byte{}); err != nil {
			return fmt.Errorf("index invite %s by account: %w", inv.ID, err)
		}
	}
	return nil
}

// addPendingCount moves inviter's pending counter up or down by one. A
// counter at zero is deleted, so the bucket holds only inviters with
// pending invites.
func addPendingCount(tx *bbolt.Tx, inviter string, up bool) error {
	b := tx.Bucket(bucketPendingCounts)
	var n uint64
	if raw := b.Get([]byte(inviter)); raw != nil {
		var err error
		if n, err = getUint64(raw); err != nil {
			return err
		}
	}
	switch {
	case up:
		n++
	case n == 0:
		return errors.New("pending counter below zero; the file is damaged")
	default:
		n--
	}
	if n == 0 {
		return b.Delete([]byte(inviter))
	}
	return b.Put([]byte(inviter), putUint64(n))
}

// indexAudit indexes entry e (stored under seq) by its actor and subject.
func indexAudit(tx *bbolt.Tx, seq uint64, e AuditEntry) error {
	b := tx.Bucket(bucketAuditByAbout)
	for i, about := range []string{e.Actor, e.Subject} {
		if about == "" || (i == 1 && about == e.Actor) {
			continue
		}
		if err := b.Put(binary.BigEndian.AppendUint64(lenPrefix(about), seq), []byte{}); err != nil {
			return fmt.Errorf("index audit entry %d: %w", seq, err)
		}
	}
	return nil
}
