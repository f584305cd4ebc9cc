package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// The index build of schema v6 (migrateAddIndexes). A file that has run
// for years holds a million invites and several million audit entries, and
// the build has to stay within a small server's memory and finish in
// minutes. Two things matter for that with bbolt:
//
//   - A write transaction keeps every node it touches in memory until it
//     commits, and a node is only split at commit. Inserting a million keys
//     in random order into a new bucket in one transaction therefore
//     memmoves a growing slice on every put (a 1 M file did not finish in
//     18 minutes) and holds gigabytes.
//   - Keys written in ascending order are appended to the last node, so
//     they cost little, and a transaction of a bounded number of them holds
//     a bounded amount.
//
// So the build reads the records in batches, collects each index's entries
// up to a memory bound, sorts them and writes them in key order in
// transactions of a bounded size. Ranks, which need an index complete, are
// filled in afterwards the same way. The build is not one transaction: it
// starts by deleting whatever an interrupted earlier attempt left, so a
// crash or a cancelled Open is repaired by opening again, and the schema
// version only moves to 6 once the build is complete.
//
// Tunables, package variables so that the tests can force every batch
// boundary on a small file.
var (
	// indexBuildMemory bounds the bytes of index entries collected, over
	// all buckets, before the largest collection is sorted and written.
	// Past it, a bucket is written in several sorted runs, which costs
	// more writes but no more memory.
	indexBuildMemory = 32 << 20
	// indexBuildPuts bounds the puts of one write transaction, and with it
	// the nodes bbolt holds until the commit: upgrading a 1 M-invite file
	// peaked at 320 MB of anonymous memory with 50 k, 170 MB with 10 k and
	// 150 MB with 5 k, taking 24, 26 and 27 s.
	indexBuildPuts = 10_000
	// indexBuildReads bounds the records read in one read transaction.
	indexBuildReads = 10_000
)

// Index bucket names (schema v6), frozen with the migration that creates them.
var v6Buckets = []string{
	"invites_by_created", "invites_pending", "invites_pending_by_inviter", "pending_counts",
	"invites_unrevoked", "invites_by_used_by", "audit_by_about", "event_invites_by_inviter",
}

// v5Invite holds the fields migrateAddIndexes reads from an invite record,
// frozen like v1Invite.
type v5Invite struct {
	Token   string    `json:"token"`
	Inviter string    `json:"inviter"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	State   string    `json:"state"`
	UsedBy  string    `json:"used_by"`
	Revoked bool      `json:"revoked"`
	Event   string    `json:"event"`
}

// v5Audit holds the fields migrateAddIndexes reads from an audit entry.
type v5Audit struct {
	Actor   string `json:"actor"`
	Subject string `json:"subject"`
}

// v6MaxKeyPart bounds the strings v6 puts into index keys.
const v6MaxKeyPart = 4096

// v6Expiry encodes an expiry time in a v6 index key.
func v6Expiry(t time.Time) []byte {
	var n uint64
	switch {
	case t.IsZero():
		n = math.MaxUint64
	case t.Before(time.Unix(0, 0)):
		n = 0
	case t.After(time.Unix(0, math.MaxInt64)):
		n = math.MaxInt64
	default:
		n = uint64(t.UnixNano())
	}
	return binary.BigEndian.AppendUint64(nil, n)
}

// v6LenPrefix starts a v6 index key with a string and its length.
func v6LenPrefix(s string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(s))), s...)
}

// migrateAddIndexes builds the indexes of schema v6 from the invites and
// the audit log already stored, and ranks the inviter index. Like
// migrateV1toV2 it stops at a record it cannot index rather than leave it
// out of an answer.
func migrateAddIndexes(ctx context.Context, db *bbolt.DB) error {
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range v6Buckets {
			if tx.Bucket([]byte(name)) != nil {
				if err := tx.DeleteBucket([]byte(name)); err != nil {
					return fmt.Errorf("delete bucket %s left by an interrupted upgrade: %w", name, err)
				}
			}
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := indexInvitesV6(ctx, db); err != nil {
		return err
	}
	// Ranks: everyone's in one sequence, each inviter's in their own.
	inviterOf := func(k []byte) []byte { return k[:bytes.IndexByte(k, 0)+1] }
	for _, r := range []struct {
		bucket string
		group  func([]byte) []byte
	}{
		{"invites_by_created", func([]byte) []byte { return nil }},
		{"invites_by_inviter", inviterOf},
		{"event_invites_by_inviter", inviterOf},
	} {
		if err := rankV6(ctx, db, r.bucket, r.group); err != nil {
			return fmt.Errorf("rank %s: %w", r.bucket, err)
		}
	}
	return indexAuditV6(ctx, db)
}

// indexInvitesV6 fills every index of invites, with zero ranks.
func indexInvitesV6(ctx context.Context, db *bbolt.DB) error {
	out := map[string]*sortedWriter{}
	held := &heldEntries{}
	for _, name := range append([]string{"invites_by_inviter"}, v6Buckets...) {
		out[name] = held.writer(db, name)
	}
	pendingCounts := map[string]uint64{}
	err := eachRecord(ctx, db, "invites", func(k, v []byte) error {
		id := string(k)
		var inv v5Invite
		if err := json.Unmarshal(v, &inv); err != nil {
			return fmt.Errorf("decode invite %s: %w", id, err)
		}
		// migrateV1toV2 and AddInvite made sure of the inviter and the
		// creation time; the key below relies on them.
		if inv.Inviter == "" || strings.IndexByte(inv.Inviter, 0) >= 0 ||
			inv.Created.Before(time.Unix(0, 0)) || inv.Created.After(time.Unix(0, math.MaxInt64)) {
			return fmt.Errorf("invite %s has no usable inviter or creation time", id)
		}
		created := binary.BigEndian.AppendUint64(nil, uint64(inv.Created.UnixNano()))
		rest := []byte(inv.Inviter)
		if inv.Event != "" {
			// An event link's invite: marked in the inviter and creation
			// indexes, and counted apart (see indexCreated).
			rest = append([]byte{0}, rest...)
			key := append(append(append([]byte(inv.Inviter), 0), created...), id...)
			if err := out["invites_by_inviter"].put(ctx, key, make([]byte, 9)); err != nil {
				return fmt.Errorf("mark event invite %s: %w", id, err)
			}
			if err := out["event_invites_by_inviter"].put(ctx, key, make([]byte, 8)); err != nil {
				return fmt.Errorf("index event invite %s by inviter: %w", id, err)
			}
		}
		if err := out["invites_by_created"].put(ctx, append(created, id...), append(make([]byte, 8), rest...)); err != nil {
			return fmt.Errorf("index invite %s by creation: %w", id, err)
		}
		expiry := append(v6Expiry(inv.Expires), id...)
		switch {
		case inv.State == "pending":
			ref := append(v6LenPrefix(inv.Token), inv.Inviter...)
			if err := out["invites_pending"].put(ctx, expiry, ref); err != nil {
				return fmt.Errorf("index pending invite %s: %w", id, err)
			}
			key := append(append([]byte(inv.Inviter), 0), expiry...)
			if err := out["invites_pending_by_inviter"].put(ctx, key, []byte{}); err != nil {
				return fmt.Errorf("index pending invite %s by inviter: %w", id, err)
			}
			if inv.Event == "" {
				pendingCounts[inv.Inviter]++
			}
		case inv.State == "cancelled" && !inv.Revoked:
			if err := out["invites_unrevoked"].put(ctx, expiry, []byte{}); err != nil {
				return fmt.Errorf("index unrevoked invite %s: %w", id, err)
			}
		}
		if inv.UsedBy != "" {
			if len(inv.UsedBy) > v6MaxKeyPart {
				return fmt.Errorf("invite %s: account of %d bytes is too long to index", id, len(inv.UsedBy))
			}
			if err := out["invites_by_used_by"].put(ctx, append(v6LenPrefix(inv.UsedBy), id...), []byte{}); err != nil {
				return fmt.Errorf("index invite %s by account: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for inviter, n := range pendingCounts {
		if err := out["pending_counts"].put(ctx, []byte(inviter), binary.BigEndian.AppendUint64(nil, n)); err != nil {
			return fmt.Errorf("count pending invites of %s: %w", inviter, err)
		}
	}
	for name, w := range out {
		if err := w.flush(ctx); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// indexAuditV6 fills audit_by_about from the audit log.
func indexAuditV6(ctx context.Context, db *bbolt.DB) error {
	about := (&heldEntries{}).writer(db, "audit_by_about")
	err := eachRecord(ctx, db, "audit", func(k, v []byte) error {
		var e v5Audit
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decode audit entry %x: %w", k, err)
		}
		for i, s := range []string{e.Actor, e.Subject} {
			if s == "" || (i == 1 && s == e.Actor) {
				continue
			}
			if len(s) > v6MaxKeyPart {
				return fmt.Errorf("audit entry %x: actor or subject of %d bytes is too long to index", k, len(s))
			}
			if err := about.put(ctx, append(v6LenPrefix(s), k...), []byte{}); err != nil {
				return fmt.Errorf("index audit entry %x: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return about.flush(ctx)
}

// eachRecord calls fn for every key and value of bucket, in key order. It
// reads indexBuildReads records per read transaction and calls fn outside
// it, so fn may write: bbolt cannot grow its map for a write while the
// same goroutine holds a read transaction open.
func eachRecord(ctx context.Context, db *bbolt.DB, bucket string, fn func(k, v []byte) error) error {
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var keys, values [][]byte
		err := db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket([]byte(bucket)).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(keys) < indexBuildReads; k, v = c.Next() {
				keys, values = append(keys, bytes.Clone(k)), append(values, bytes.Clone(v))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return nil
		}
		for i := range keys {
			if err := fn(keys[i], values[i]); err != nil {
				return err
			}
		}
		after = keys[len(keys)-1]
	}
}

// heldEntries is the memory the sortedWriters of one pass share.
type heldEntries struct {
	writers []*sortedWriter
	size    int
}

// writer returns a new sortedWriter for bucket that counts against h.
func (h *heldEntries) writer(db *bbolt.DB, bucket string) *sortedWriter {
	w := &sortedWriter{db: db, bucket: bucket, held: h}
	h.writers = append(h.writers, w)
	return w
}

// sortedWriter collects the entries of one bucket and writes them in key
// order, indexBuildPuts per transaction, when the entries held by all
// writers of its pass reach indexBuildMemory (the largest collection goes
// first) and at flush. A key put twice keeps its last value.
type sortedWriter struct {
	db      *bbolt.DB
	bucket  string
	held    *heldEntries
	entries []entry
	size    int
}

// entry is one key and value waiting in a sortedWriter.
type entry struct{ k, v []byte }

// put queues k and v, writing the largest queue of the pass first if the
// pass holds too much.
func (w *sortedWriter) put(ctx context.Context, k, v []byte) error {
	w.entries = append(w.entries, entry{k, v})
	// 48: the slice headers of an entry, which cost as much as short keys.
	n := len(k) + len(v) + 48
	w.size += n
	w.held.size += n
	if w.held.size < indexBuildMemory {
		return nil
	}
	largest := slices.MaxFunc(w.held.writers, func(a, b *sortedWriter) int { return a.size - b.size })
	return largest.flush(ctx)
}

// flush writes the queued entries in key order and empties the queue.
func (w *sortedWriter) flush(ctx context.Context) error {
	// Stable, so that of two puts of one key the later is written last.
	slices.SortStableFunc(w.entries, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	for len(w.entries) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := w.entries[:min(indexBuildPuts, len(w.entries))]
		err := w.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte(w.bucket))
			// Keys come in ascending order, so pages can be filled: with
			// bbolt's default half of each page would stay empty (twice
			// the pages for the tracker's sweep to read). A bucket the
			// write path inserts into at random splits a full page the
			// first time it touches it, as it would a half-full one.
			b.FillPercent = appendFill
			for _, e := range batch {
				if err := b.Put(e.k, e.v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		w.entries = w.entries[len(batch):]
	}
	w.held.size -= w.size
	w.entries, w.size = nil, 0
	return nil
}

// rankV6 writes into the first 8 bytes of every value of bucket its
// 1-based position among the keys sharing group(key), in key order; any
// bytes after the first 8 are kept (a v2 inviter index value is empty and
// becomes the rank alone). Each batch is its own transaction, in key
// order, and the batches carry the group and rank over.
func rankV6(ctx context.Context, db *bbolt.DB, bucket string, group func(key []byte) []byte) error {
	var (
		cur     []byte
		started bool
		rank    uint64
	)
	w := (&heldEntries{}).writer(db, bucket)
	err := eachRecord(ctx, db, bucket, func(k, v []byte) error {
		if g := group(k); !started || !bytes.Equal(g, cur) {
			cur, rank, started = bytes.Clone(g), 0, true
		}
		rank++
		nv := binary.BigEndian.AppendUint64(nil, rank)
		if len(v) > 8 {
			nv = append(nv, v[8:]...)
		}
		return w.put(ctx, k, nv)
	})
	if err != nil {
		return err
	}
	return w.flush(ctx)
}
