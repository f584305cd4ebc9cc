package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// quotaIndex answers the questions of the invite limits from the ranked
// creation indexes and the pending counts, reading a few index entries
// whatever the number of invites.
type quotaIndex struct{ *base }

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
func (s quotaIndex) QuotaCounts(ctx context.Context, inviter string, since time.Time, exclude []string) (QuotaCounts, error) {
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
func (s quotaIndex) OldestCreatedSince(ctx context.Context, inviter string, since time.Time, exclude []string, n int) ([]time.Time, error) {
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
func (s quotaIndex) NextPendingExpiry(ctx context.Context, inviter string, now time.Time) (time.Time, error) {
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
