package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// The check schedule says when usage tracking next asks the server about
// each pending invite's token. It lives in the file, so that what was
// checked when survives a restart, and it is ordered by when a check is
// due, so that a sweep reads a page of what is due instead of every
// pending invite. Two buckets, written in the transaction that writes the
// invite (indexState), like the indexes:
//
//   - check_due: tier (1 byte), due time (8 bytes), id -> created (8),
//     expiry (8), the token with its length, the inviter. Lower tiers come
//     first: the tracker puts young invites, the ones likely to be used
//     now, in low tiers and old ones in high tiers, so that a backlog of
//     old invites never holds up a new one.
//   - check_due_by_id: id -> tier and due time, to find an invite's entry.
//
// Both were added without a schema version: Open creates them when missing
// and usage tracking fills them from the pending index (FillSchedule), so
// an older program that opens the file later simply ignores them, and a
// newer one opening a file an older one wrote meanwhile fills them again.
var (
	bucketCheckDue     = []byte("check_due")
	bucketCheckDueByID = []byte("check_due_by_id")
	// keyScheduleFilled marks in the settings bucket that check_due was
	// filled with every pending invite (see FillSchedule).
	keyScheduleFilled = []byte("check_schedule_filled")
)

// TierFill is the tier of the entries Open makes for invites that were
// pending before the file had a schedule: after every tier the tracker
// uses, oldest invite first, until each has been checked once.
const TierFill = 200

// fillBatch is how many invites one transaction of the fill enters: bbolt
// keeps every page a transaction touches in memory until it commits.
const fillBatch = 5000

// Check is one entry of the check schedule: a pending invite, what a token
// check needs of it, and when it is due.
type Check struct {
	PendingRef
	// Created is when the invite was made.
	Created time.Time
	// Tier orders entries before Due does: lower first.
	Tier uint8
	// Due is when the invite's token should be checked next.
	Due time.Time
}

// checkKey is an entry's key in check_due.
func checkKey(tier uint8, due time.Time, id string) []byte {
	key := append([]byte{tier}, expiryBytes(due)...)
	return append(key, id...)
}

// checkValue is an entry's value in check_due.
func checkValue(created, expires time.Time, token, inviter string) []byte {
	v := append(expiryBytes(created), expiryBytes(expires)...)
	return append(v, pendingValue(token, inviter)...)
}

// decodeCheck reads a check_due entry.
func decodeCheck(k, v []byte) (Check, error) {
	if len(k) < 9 || len(v) < 16 {
		return Check{}, fmt.Errorf("malformed check schedule entry %q", k)
	}
	ref, err := pendingRef(append(bytes.Clone(v[8:16]), k[9:]...), v[16:])
	if err != nil {
		return Check{}, err
	}
	return Check{PendingRef: ref, Created: expiryFrom(v[:8]), Tier: k[0], Due: expiryFrom(k[1:9])}, nil
}

// scheduleState adds a pending invite to the schedule, due at once in the
// first tier (add), or takes it out (the invite left the pending state).
// It is part of indexState. Before Open made the buckets (during a
// migration) it does nothing: the fill that follows enters every pending
// invite.
func scheduleState(tx *bbolt.Tx, inv Invite, add bool) error {
	due, byID := tx.Bucket(bucketCheckDue), tx.Bucket(bucketCheckDueByID)
	if due == nil || byID == nil {
		return nil
	}
	id := []byte(inv.ID)
	if old := byID.Get(id); old != nil {
		if err := due.Delete(append(bytes.Clone(old), id...)); err != nil {
			return fmt.Errorf("unschedule invite %s: %w", inv.ID, err)
		}
		if err := byID.Delete(id); err != nil {
			return fmt.Errorf("unschedule invite %s: %w", inv.ID, err)
		}
	}
	if !add {
		return nil
	}
	return putCheck(due, byID, Check{
		PendingRef: PendingRef{ID: inv.ID, Token: inv.Token, Inviter: inv.Inviter, Expires: inv.Expires},
		Created:    inv.Created, Due: inv.Created,
	})
}

// putCheck writes c's entry in both buckets.
func putCheck(due, byID *bbolt.Bucket, c Check) error {
	key := checkKey(c.Tier, c.Due, c.ID)
	if err := due.Put(key, checkValue(c.Created, c.Expires, c.Token, c.Inviter)); err != nil {
		return fmt.Errorf("schedule invite %s: %w", c.ID, err)
	}
	if err := byID.Put([]byte(c.ID), key[:9]); err != nil {
		return fmt.Errorf("schedule invite %s: %w", c.ID, err)
	}
	return nil
}

// DueChecks returns up to limit entries of the schedule due at now, lowest
// tier first and within a tier soonest due first, starting after the entry
// after names (from the beginning when after.ID is empty). Pass the last of
// a page to get the next; a page shorter than limit is the last. limit must
// be positive (ErrInvalid).
func (s usageTable) DueChecks(ctx context.Context, now time.Time, after Check, limit int) ([]Check, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("due checks: limit %d: %w", limit, ErrInvalid)
	}
	out := []Check{}
	nowKey := expiryBytes(now)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketCheckDue).Cursor()
		k, v := c.First()
		if after.ID != "" {
			from := checkKey(after.Tier, after.Due, after.ID)
			if k, v = c.Seek(from); bytes.Equal(k, from) {
				k, v = c.Next()
			}
		}
		for k != nil && len(out) < limit {
			if len(k) < 9 {
				return fmt.Errorf("malformed check schedule key %q", k)
			}
			if bytes.Compare(k[1:9], nowKey) > 0 {
				// Nothing more is due in this tier: on to the next.
				if k[0] == 0xff {
					break
				}
				k, v = c.Seek([]byte{k[0] + 1})
				continue
			}
			chk, err := decodeCheck(k, v)
			if err != nil {
				return err
			}
			out = append(out, chk)
			k, v = c.Next()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("due checks: %w", err)
	}
	return out, nil
}

// Reschedule moves the entries of checks to their Tier and Due, in one
// transaction. An invite no longer in the schedule (settled meanwhile) is
// left out.
func (s usageTable) Reschedule(ctx context.Context, checks []Check) error {
	if len(checks) == 0 {
		return nil
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		due, byID := tx.Bucket(bucketCheckDue), tx.Bucket(bucketCheckDueByID)
		for _, c := range checks {
			id := []byte(c.ID)
			old := byID.Get(id)
			if old == nil {
				continue
			}
			oldKey := append(bytes.Clone(old), id...)
			v := due.Get(oldKey)
			if v == nil {
				return fmt.Errorf("check schedule of %s points at a missing entry", c.ID)
			}
			stored, err := decodeCheck(oldKey, v)
			if err != nil {
				return err
			}
			if err := due.Delete(oldKey); err != nil {
				return err
			}
			stored.Tier, stored.Due = c.Tier, c.Due
			if err := putCheck(due, byID, stored); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reschedule checks: %w", err)
	}
	return nil
}

// ScheduledCheck returns invite id's entry in the schedule, or ErrNotFound
// when it has none (it is not pending).
func (s usageTable) ScheduledCheck(ctx context.Context, id string) (Check, error) {
	var out Check
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		old := tx.Bucket(bucketCheckDueByID).Get([]byte(id))
		if old == nil || id == "" {
			return ErrNotFound
		}
		key := append(bytes.Clone(old), id...)
		var err error
		out, err = decodeCheck(key, tx.Bucket(bucketCheckDue).Get(key))
		return err
	})
	if err != nil {
		return Check{}, fmt.Errorf("scheduled check of %s: %w", id, err)
	}
	return out, nil
}

// makeSchedule creates the schedule's buckets when they are missing. It
// runs at Open, which must stay cheap (a few pages): filling them is
// FillSchedule's, on the tracker's first sweep.
func (s usageTable) makeSchedule(ctx context.Context) error {
	missing := false
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		missing = tx.Bucket(bucketCheckDue) == nil || tx.Bucket(bucketCheckDueByID) == nil
		return nil
	})
	if err != nil || !missing {
		return err
	}
	return s.update(ctx, func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketCheckDue, bucketCheckDueByID} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
}

// FillSchedule enters into the check schedule each pending invite that
// has no entry yet (tier TierFill, due at its creation), unless the
// schedule is known to hold them all, in batches, then marks the schedule
// filled. It returns how many it entered. Usage tracking runs it once per
// start; invites made or settled meanwhile keep the schedule right by
// themselves (indexState), so it may run beside them, and an interrupted
// fill is done again next time, skipping what it entered before.
func (s usageTable) FillSchedule(ctx context.Context) (int, error) {
	complete := false
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		complete, err = scheduleComplete(tx)
		return err
	})
	if err != nil || complete {
		return 0, err
	}
	entered := 0
	var after []byte
	for done := false; !done; {
		err := s.update(ctx, func(tx *bbolt.Tx) error {
			n, last, err := fillBatchFrom(tx, after)
			if err != nil {
				return err
			}
			entered += n
			after, done = last, last == nil
			if done {
				return tx.Bucket(bucketSettings).Put(keyScheduleFilled, []byte{1})
			}
			return nil
		})
		if err != nil {
			return entered, fmt.Errorf("fill the check schedule: %w", err)
		}
	}
	return entered, nil
}

// scheduleComplete reports whether the schedule holds every pending
// invite: it was filled once, and the newest invite, when pending, has its
// entry. The second test catches a file that a program without the
// schedule (an older version, run after this one) added invites to: the
// schedule needs no schema version, so such a program opens the file.
func scheduleComplete(tx *bbolt.Tx) (bool, error) {
	if tx.Bucket(bucketSettings).Get(keyScheduleFilled) == nil {
		return false, nil
	}
	k, _ := tx.Bucket(bucketInvitesByCreated).Cursor().Last()
	if k == nil || len(k) < 8 {
		return true, nil
	}
	inv, err := getInvite(tx, string(k[8:]))
	if err != nil {
		return false, fmt.Errorf("newest invite %s: %w", k[8:], err)
	}
	return inv.State != StatePending || tx.Bucket(bucketCheckDueByID).Get(k[8:]) != nil, nil
}

// fillBatchFrom enters up to fillBatch pending invites after the pending
// index key after; it returns how many it entered and the last key it
// read, nil when the index ended.
func fillBatchFrom(tx *bbolt.Tx, after []byte) (int, []byte, error) {
	due, byID := tx.Bucket(bucketCheckDue), tx.Bucket(bucketCheckDueByID)
	c := tx.Bucket(bucketInvitesPending).Cursor()
	k, _ := c.First()
	if after != nil {
		if k, _ = c.Seek(after); bytes.Equal(k, after) {
			k, _ = c.Next()
		}
	}
	n := 0
	for read := 0; k != nil; k, _ = c.Next() {
		if len(k) < 8 {
			return n, nil, fmt.Errorf("malformed pending index key %q", k)
		}
		read++
		if byID.Get(k[8:]) == nil {
			inv, err := getInvite(tx, string(k[8:]))
			if err != nil {
				return n, nil, fmt.Errorf("pending index points at invite %s: %w", k[8:], err)
			}
			err = putCheck(due, byID, Check{
				PendingRef: PendingRef{ID: inv.ID, Token: inv.Token, Inviter: inv.Inviter, Expires: inv.Expires},
				Created:    inv.Created, Tier: TierFill, Due: inv.Created,
			})
			if err != nil {
				return n, nil, err
			}
			n++
		}
		if read == fillBatch {
			return n, bytes.Clone(k), nil
		}
	}
	return n, nil, nil
}
