package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// migrator brings the file's schema to the version this program writes
// and reports the version stored.
type migrator struct{ *base }

// migration upgrades the file by one schema version, in one of two ways.
//
// up runs inside the write transaction that Open uses for a run of pending
// migrations, together with the version change, so a failure anywhere
// leaves the file exactly as it was.
//
// build is for a migration too large for one transaction (bbolt holds a
// transaction's every touched node in memory until it commits). It runs in
// transactions of its own, between the version changes before and after
// it, and must be restartable: a build that failed or was interrupted
// leaves the file at the old version with partial work, and the next Open
// runs it again from the start.
type migration struct {
	name  string
	up    func(tx *bbolt.Tx) error
	build func(ctx context.Context, db *bbolt.DB) error
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
	{name: "indexes for quotas, pending and unrevoked invites, accounts and the audit log", build: migrateAddIndexes},
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

// migrate brings the file to latestVersion and says what it did. It checks
// in a read transaction first so that a file that is current or too new is
// never written to.
func (s migrator) migrate(ctx context.Context) (Upgrade, error) {
	var current int
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		current, err = schemaVersion(tx)
		return err
	})
	if err != nil {
		return Upgrade{}, err
	}
	latest := latestVersion()
	if current > latest {
		return Upgrade{}, fmt.Errorf("%w: file has version %d, this program knows up to %d", ErrSchemaTooNew, current, latest)
	}
	up := Upgrade{From: current, To: current}
	start := time.Now()
	for current < latest {
		if m := migrations[current]; m.build != nil {
			if err := m.build(ctx, s.db); err != nil {
				return Upgrade{}, fmt.Errorf("migrate schema v%d to v%d (%s): %w", current, current+1, m.name, err)
			}
		}
		if current, err = s.migrateInOneTx(ctx, current); err != nil {
			return Upgrade{}, err
		}
	}
	up.To, up.Took = current, time.Since(start)
	if up.From > 0 && up.To > up.From {
		// Counted only after an upgrade, which read every record already,
		// and only for the log: the upgrade is done, so neither a
		// cancelled ctx nor a failure here may fail the Open (the counts
		// then stay zero).
		_ = s.view(context.WithoutCancel(ctx), func(tx *bbolt.Tx) error {
			up.Invites = tx.Bucket(bucketInvites).Stats().KeyN
			up.AuditEntries = tx.Bucket(bucketAudit).Stats().KeyN
			return nil
		})
	}
	return up, nil
}

// migrateInOneTx runs, in one write transaction, the migrations from
// version from up to the next one that has to build in transactions of its
// own, and records the version reached, which it returns. A build
// migration's own build has already run; its up, if any, runs here.
func (s migrator) migrateInOneTx(ctx context.Context, from int) (int, error) {
	latest := latestVersion()
	to := from
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		// Re-read inside the write transaction: it is the authoritative
		// view, and the file lock makes a change since the read unlikely
		// but not worth assuming away.
		v, err := schemaVersion(tx)
		if err != nil {
			return err
		}
		if v != from {
			return fmt.Errorf("schema version changed from %d to %d while upgrading", from, v)
		}
		if v == 0 {
			if err := checkEmpty(tx); err != nil {
				return err
			}
		}
		for i := v; i < latest && (i == from || migrations[i].build == nil); i++ {
			if up := migrations[i].up; up != nil {
				if err := up(tx); err != nil {
					return fmt.Errorf("migrate schema v%d to v%d (%s): %w", i, i+1, migrations[i].name, err)
				}
			}
			if err := setSchemaVersion(tx, i+1); err != nil {
				return fmt.Errorf("migrate schema v%d to v%d: set version: %w", i, i+1, err)
			}
			to = i + 1
		}
		return nil
	})
	return to, err
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
