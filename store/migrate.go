package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// migration upgrades the file by one schema version. up runs inside the
// single write transaction that Open uses for all pending migrations, so a
// failure anywhere leaves the file exactly as it was.
type migration struct {
	name string
	up   func(tx *bbolt.Tx) error
}

// migrations[i] upgrades version i to i+1. The list is append-only: a
// released migration is never edited or removed, because files in the field
// are at every version it ever produced. testdata/store-v1.db pins v1.
var migrations = []migration{
	{name: "create base buckets", up: migrateV0toV1},
	{name: "index invites by token and inviter", up: migrateV1toV2},
	{name: "settings bucket (pause switch)", up: migrateV2toV3},
	{name: "requests bucket (account requests)", up: migrateAddRequests},
	{name: "events bucket (event links)", up: migrateAddEvents},
	{name: "indexes for quotas, pending and unrevoked invites, accounts and the audit log", up: migrateAddIndexes},
}

// migrateAddRequests adds the bucket of account requests. Named after what
// it does rather than its version numbers, because branches append
// migrations side by side and the order is settled when they merge.
func migrateAddRequests(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketRequests); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketRequests, err)
	}
	return nil
}

// migrateAddEvents adds the bucket of event links. Invites and grants
// gain fields (Invite.Event, Grant.Events) that decode as zero from older
// records, which is right: no old invite came from an event link and no
// old grant allows any.
func migrateAddEvents(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketEvents); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketEvents, err)
	}
	return nil
}

// migrateV2toV3 adds the settings bucket; no record changes shape (the new
// Invite and Grant fields decode as zero from older records).
func migrateV2toV3(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketSettings); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketSettings, err)
	}
	return nil
}

// Index bucket names (schema v6), frozen with the migration that creates them.
var v4Buckets = []string{
	"invites_by_created", "invites_pending", "invites_pending_by_inviter", "pending_counts",
	"invites_unrevoked", "invites_by_used_by", "audit_by_about", "event_invites_by_inviter",
}

// v3Invite holds the fields migrateAddIndexes reads from an invite record,
// frozen like v1Invite.
type v3Invite struct {
	Token   string    `json:"token"`
	Inviter string    `json:"inviter"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	State   string    `json:"state"`
	UsedBy  string    `json:"used_by"`
	Revoked bool      `json:"revoked"`
	Event   string    `json:"event"`
}

// v3Audit holds the fields migrateAddIndexes reads from an audit entry.
type v3Audit struct {
	Actor   string `json:"actor"`
	Subject string `json:"subject"`
}

// v4MaxKeyPart bounds the strings v4 puts into index keys.
const v4MaxKeyPart = 4096

// v4Expiry encodes an expiry time in a v4 index key.
func v4Expiry(t time.Time) []byte {
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

// v4LenPrefix starts a v4 index key with a string and its length.
func v4LenPrefix(s string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(s))), s...)
}

// migrateAddIndexes builds the indexes (schema v6) from the invites and the audit log
// already stored, and ranks the inviter index. It is all in the one
// migration transaction, so a large file needs memory for its new indexes
// once, at the upgrade. Like migrateV1toV2 it stops at a record it cannot
// index rather than leave it out of an answer.
func migrateAddIndexes(tx *bbolt.Tx) error {
	b := map[string]*bbolt.Bucket{}
	for _, name := range v4Buckets {
		bk, err := tx.CreateBucket([]byte(name))
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
		b[name] = bk
	}
	pendingCounts := map[string]uint64{}
	err := tx.Bucket([]byte("invites")).ForEach(func(k, v []byte) error {
		id := string(k)
		var inv v3Invite
		if err := json.Unmarshal(v, &inv); err != nil {
			return fmt.Errorf("decode invite %s: %w", id, err)
		}
		// migrateV1toV2 and AddInvite made sure of the inviter and the
		// creation time; the key below relies on them.
		if inv.Inviter == "" || strings.IndexByte(inv.Inviter, 0) >= 0 ||
			inv.Created.Before(time.Unix(0, 0)) || inv.Created.After(time.Unix(0, math.MaxInt64)) {
			return fmt.Errorf("invite %s has no usable inviter or creation time", id)
		}
		// The rank is filled in by rankV4 below, once all are in.
		created := binary.BigEndian.AppendUint64(nil, uint64(inv.Created.UnixNano()))
		rest := []byte(inv.Inviter)
		if inv.Event != "" {
			// An event link's invite: marked in the inviter and creation
			// indexes, and counted apart (see indexCreated).
			rest = append([]byte{0}, rest...)
			key := append(append(append([]byte(inv.Inviter), 0), created...), id...)
			if err := tx.Bucket([]byte("invites_by_inviter")).Put(key, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
				return fmt.Errorf("mark event invite %s: %w", id, err)
			}
			if err := b["event_invites_by_inviter"].Put(key, make([]byte, 8)); err != nil {
				return fmt.Errorf("index event invite %s by inviter: %w", id, err)
			}
		}
		if err := b["invites_by_created"].Put(append(created, id...), append(make([]byte, 8), rest...)); err != nil {
			return fmt.Errorf("index invite %s by creation: %w", id, err)
		}
		expiry := append(v4Expiry(inv.Expires), id...)
		switch {
		case inv.State == "pending":
			ref := append(v4LenPrefix(inv.Token), inv.Inviter...)
			if err := b["invites_pending"].Put(expiry, ref); err != nil {
				return fmt.Errorf("index pending invite %s: %w", id, err)
			}
			key := append(append([]byte(inv.Inviter), 0), expiry...)
			if err := b["invites_pending_by_inviter"].Put(key, []byte{}); err != nil {
				return fmt.Errorf("index pending invite %s by inviter: %w", id, err)
			}
			if inv.Event == "" {
				pendingCounts[inv.Inviter]++
			}
		case inv.State == "cancelled" && !inv.Revoked:
			if err := b["invites_unrevoked"].Put(expiry, []byte{}); err != nil {
				return fmt.Errorf("index unrevoked invite %s: %w", id, err)
			}
		}
		if inv.UsedBy != "" {
			if len(inv.UsedBy) > v4MaxKeyPart {
				return fmt.Errorf("invite %s: account of %d bytes is too long to index", id, len(inv.UsedBy))
			}
			if err := b["invites_by_used_by"].Put(append(v4LenPrefix(inv.UsedBy), id...), []byte{}); err != nil {
				return fmt.Errorf("index invite %s by account: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for inviter, n := range pendingCounts {
		if err := b["pending_counts"].Put([]byte(inviter), binary.BigEndian.AppendUint64(nil, n)); err != nil {
			return fmt.Errorf("count pending invites of %s: %w", inviter, err)
		}
	}
	// Ranks: everyone's in one sequence, each inviter's in their own.
	if err := rankV4(b["invites_by_created"], func([]byte) []byte { return nil }); err != nil {
		return fmt.Errorf("rank creation index: %w", err)
	}
	inviterOf := func(k []byte) []byte { return k[:bytes.IndexByte(k, 0)+1] }
	if err := rankV4(tx.Bucket([]byte("invites_by_inviter")), inviterOf); err != nil {
		return fmt.Errorf("rank inviter index: %w", err)
	}
	if err := rankV4(b["event_invites_by_inviter"], inviterOf); err != nil {
		return fmt.Errorf("rank event invite index: %w", err)
	}
	about := b["audit_by_about"]
	return tx.Bucket([]byte("audit")).ForEach(func(k, v []byte) error {
		var e v3Audit
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decode audit entry %x: %w", k, err)
		}
		for i, s := range []string{e.Actor, e.Subject} {
			if s == "" || (i == 1 && s == e.Actor) {
				continue
			}
			if len(s) > v4MaxKeyPart {
				return fmt.Errorf("audit entry %x: actor or subject of %d bytes is too long to index", k, len(s))
			}
			if err := about.Put(append(v4LenPrefix(s), k...), []byte{}); err != nil {
				return fmt.Errorf("index audit entry %x: %w", k, err)
			}
		}
		return nil
	})
}

// rankV4 writes into the first 8 bytes of every value of b its 1-based
// position among the keys sharing group(key), in key order; any bytes after
// the first 8 are kept (a v2 inviter index value is empty and becomes the
// rank alone). It goes in chunks because bbolt cursors do not survive
// writes.
func rankV4(b *bbolt.Bucket, group func(key []byte) []byte) error {
	const chunk = 10_000
	type entry struct{ k, v []byte }
	var (
		cur     []byte
		started bool
		rank    uint64
		from    []byte
	)
	for {
		var todo []entry
		c := b.Cursor()
		k, v := c.First()
		if from != nil {
			k, v = c.Seek(from)
			if bytes.Equal(k, from) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(todo) < chunk; k, v = c.Next() {
			if g := group(k); !started || !bytes.Equal(g, cur) {
				cur, rank, started = bytes.Clone(g), 0, true
			}
			rank++
			nv := binary.BigEndian.AppendUint64(nil, rank)
			if len(v) > 8 {
				nv = append(nv, v[8:]...)
			}
			todo = append(todo, entry{bytes.Clone(k), nv})
		}
		if len(todo) == 0 {
			return nil
		}
		for _, e := range todo {
			if err := b.Put(e.k, e.v); err != nil {
				return err
			}
		}
		from = todo[len(todo)-1].k
	}
}

// latestVersion is the schema version this program writes.
func latestVersion() int { return len(migrations) }

// migrateV0toV1 creates the first released layout.
func migrateV0toV1(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketInvites, bucketGrants, bucketAudit} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// v1Invite holds the fields migrateV1toV2 reads from a v1 invite record. It
// is a frozen copy instead of Invite so that later changes to Invite cannot
// change what this migration does.
type v1Invite struct {
	Token   string    `json:"token"`
	Inviter string    `json:"inviter"`
	Created time.Time `json:"created"`
}

// migrateV1toV2 adds the token and inviter indexes and fills them from the
// invites already stored. Bad records stop the migration rather than being
// skipped: an unindexed invite would silently vanish from an inviter's list
// and escape the token uniqueness check, and the admin is better placed than
// the program to decide what a duplicate token means.
func migrateV1toV2(tx *bbolt.Tx) error {
	byToken, err := tx.CreateBucketIfNotExists(bucketInvitesByToken)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketInvitesByToken, err)
	}
	byInviter, err := tx.CreateBucketIfNotExists(bucketInvitesByInviter)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketInvitesByInviter, err)
	}
	return tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
		id := string(k)
		var inv v1Invite
		if err := json.Unmarshal(v, &inv); err != nil {
			return fmt.Errorf("decode invite %s: %w", id, err)
		}
		if inv.Token == "" {
			return fmt.Errorf("invite %s has no token", id)
		}
		if other := byToken.Get([]byte(inv.Token)); other != nil {
			return fmt.Errorf("invites %s and %s share a token; resolve by hand, then start again", other, id)
		}
		// Checked here rather than left to inviterKey so the error names
		// the bad record instead of blaming a caller with ErrInvalid.
		if inv.Inviter == "" || strings.IndexByte(inv.Inviter, 0) >= 0 {
			return fmt.Errorf("invite %s has no usable inviter (%q)", id, inv.Inviter)
		}
		if inv.Created.Before(minCreated) || inv.Created.After(maxCreated) {
			return fmt.Errorf("invite %s has created time %s outside 1970..2262", id, inv.Created)
		}
		key, err := inviterKey(inv.Inviter, inv.Created, id)
		if err != nil {
			return fmt.Errorf("invite %s: %v", id, err)
		}
		if err := byToken.Put([]byte(inv.Token), []byte(id)); err != nil {
			return fmt.Errorf("index invite %s by token: %w", id, err)
		}
		if err := byInviter.Put(key, []byte{}); err != nil {
			return fmt.Errorf("index invite %s by inviter: %w", id, err)
		}
		return nil
	})
}

// schemaVersion reads the version from tx. A file without one is version 0:
// either brand new or not an invitebot database, which migrate tells apart.
func schemaVersion(tx *bbolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	raw := meta.Get(keySchemaVersion)
	if raw == nil {
		return 0, nil
	}
	v, err := strconv.Atoi(string(raw))
	// Round-tripping rejects "+2", "02" and the like: a value we did not
	// write means something else touched the file.
	if err != nil || v < 0 || strconv.Itoa(v) != string(raw) {
		return 0, fmt.Errorf("corrupt schema version %q", raw)
	}
	return v, nil
}

// setSchemaVersion stores v as decimal ASCII so it reads plainly in
// `bbolt get`.
func setSchemaVersion(tx *bbolt.Tx, v int) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return errors.New("meta bucket missing")
	}
	return meta.Put(keySchemaVersion, []byte(strconv.Itoa(v)))
}

// migrate brings the file to latestVersion. It checks in a read transaction
// first so that a file that is current or too new is never written to.
func (s *Store) migrate(ctx context.Context) error {
	var current int
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		current, err = schemaVersion(tx)
		return err
	})
	if err != nil {
		return err
	}
	latest := latestVersion()
	if current > latest {
		return fmt.Errorf("%w: file has version %d, this program knows up to %d", ErrSchemaTooNew, current, latest)
	}
	if current == latest {
		return nil
	}
	return s.update(ctx, func(tx *bbolt.Tx) error {
		// Re-read inside the write transaction: it is the authoritative
		// view, and the file lock makes a change since the read unlikely
		// but not worth assuming away.
		v, err := schemaVersion(tx)
		if err != nil {
			return err
		}
		if v > latest {
			return fmt.Errorf("%w: file has version %d, this program knows up to %d", ErrSchemaTooNew, v, latest)
		}
		if v == 0 {
			if err := checkEmpty(tx); err != nil {
				return err
			}
		}
		for i := v; i < latest; i++ {
			if err := migrations[i].up(tx); err != nil {
				return fmt.Errorf("migrate schema v%d to v%d (%s): %w", i, i+1, migrations[i].name, err)
			}
			if err := setSchemaVersion(tx, i+1); err != nil {
				return fmt.Errorf("migrate schema v%d to v%d: set version: %w", i, i+1, err)
			}
		}
		return nil
	})
}

// checkEmpty refuses to adopt a file that has buckets but no schema version.
// That is some other program's bbolt database (a wrong path in the config),
// and adding our buckets to it would damage it.
func checkEmpty(tx *bbolt.Tx) error {
	var names []string
	err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
		names = append(names, strconv.Quote(string(name)))
		return nil
	})
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("file has buckets %s but no schema version: not an invitebot database", strings.Join(names, ", "))
	}
	return nil
}
