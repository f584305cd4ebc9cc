package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.etcd.io/bbolt"
)

// lockTimeout bounds how long Open waits for the file lock. bbolt allows one
// writer process per file; without a bound a second invitebot started by
// mistake would hang silently instead of saying what is wrong.
const lockTimeout = time.Second

// fileMode is used when the database is created. Owner-only because the file
// holds live invite tokens, which are enough to register an account.
const fileMode os.FileMode = 0o600

// Sentinel errors. Callers test for them with errors.Is; the returned errors
// wrap them with the id or JID involved.
var (
	// ErrNotFound means the invite or grant asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists means a unique key (an invite token) is already stored.
	ErrExists = errors.New("store: already exists")
	// ErrNotPending means a state transition was refused because the invite
	// already left the pending state.
	ErrNotPending = errors.New("store: invite is not pending")
	// ErrSchemaTooNew means the file was written by a newer program; opening
	// it anyway could silently drop data that program relies on.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this program")
	// ErrLocked means another process holds the database open.
	ErrLocked = errors.New("store: database is locked by another process")
	// ErrInvalid means the caller passed something the store refuses to
	// record (empty key, unknown state, audit entry without actor or action).
	// It always signals a bug in the caller, never a user mistake.
	ErrInvalid = errors.New("store: invalid argument")
)

// Bucket and key names. The migrations refer to these too; a name must never
// change once released, only new buckets may be added by a new migration.
var (
	bucketMeta             = []byte("meta")
	bucketInvites          = []byte("invites")
	bucketInvitesByToken   = []byte("invites_by_token")
	bucketInvitesByInviter = []byte("invites_by_inviter")
	bucketGrants           = []byte("grants")
	bucketAudit            = []byte("audit")
	bucketSettings         = []byte("settings")
	bucketRequests         = []byte("requests")
	bucketEvents           = []byte("events")
	// Added by the indexes migration (schema v6).
	bucketInvitesByCreated = []byte("invites_by_created")
	bucketInvitesPending   = []byte("invites_pending")
	bucketPendingByInviter = []byte("invites_pending_by_inviter")
	bucketPendingCounts    = []byte("pending_counts")
	bucketInvitesUnrevoked = []byte("invites_unrevoked")
	bucketInvitesByUsedBy  = []byte("invites_by_used_by")
	bucketAuditByAbout     = []byte("audit_by_about")
	bucketEventByInviter   = []byte("event_invites_by_inviter")

	keySchemaVersion = []byte("schema_version")
	keyPause         = []byte("pause")
)

// Store is the invitebot database. It is safe for concurrent use; bbolt
// serialises writers and lets readers run in parallel.
//
// Its methods are those of the tables it embeds, one per kind of record
// (see each table's file); they all share one base. A method name must be
// unique across the tables: two of the same name would be ambiguous on
// Store, which the compiler reports only where one is called.
type Store struct {
	*base
	inviteTable
	quotaIndex
	usageTable
	grantTable
	auditLog
	eventTable
	requestTable
	mailTable
	settingsTable
	onceTable
	backupWriter
	exporter
	migrator
	branchReader
	suspensionTable

	// upgrade is what Open did to the schema (Upgrade).
	upgrade Upgrade
}

// newStore wraps an open db. Every table shares one base, so a test that
// pins s.now or s.newID pins it for all of them.
func newStore(db *bbolt.DB, newID func() string, now func() time.Time) *Store {
	b := &base{db: db, newID: newID, now: now}
	return &Store{
		base:            b,
		inviteTable:     inviteTable{b},
		quotaIndex:      quotaIndex{b},
		usageTable:      usageTable{b},
		grantTable:      grantTable{b},
		auditLog:        auditLog{b},
		eventTable:      eventTable{b},
		requestTable:    requestTable{base: b, invites: inviteTable{b}},
		mailTable:       mailTable{b},
		settingsTable:   settingsTable{b},
		onceTable:       onceTable{b},
		backupWriter:    backupWriter{b},
		exporter:        exporter{b},
		migrator:        migrator{b},
		branchReader:    branchReader{b},
		suspensionTable: suspensionTable{b},
	}
}

// Open opens the database at path, creating it if needed, and upgrades its
// schema to the latest version. If another process holds the file, Open fails
// with ErrLocked after lockTimeout instead of hanging. A file written by a
// newer program is left untouched and Open returns ErrSchemaTooNew.
func Open(ctx context.Context, path string) (*Store, error) {
	return openStore(ctx, path, lockTimeout)
}

// openStore is Open with the lock timeout as a parameter, so the lock test
// does not have to wait the full production timeout.
func openStore(ctx context.Context, path string, timeout time.Duration) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{Timeout: timeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: waited %s: %w (%w)", path, timeout, ErrLocked, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := newStore(db, newID, time.Now)
	up, err := s.migrate(ctx)
	if err != nil {
		// Close error is secondary: the migration error is what the
		// operator needs to see.
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := ensureMailBuckets(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.upgrade = up
	// Not cancelled halfway: the file is migrated by now.
	if err := s.makeSchedule(context.WithoutCancel(ctx)); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// Upgrade says what Open did to the file's schema, for the log.
type Upgrade struct {
	// From and To are the schema versions before and after; equal when
	// the file was current. From is 0 for a file Open created.
	From, To int
	// Took is how long the migrations ran.
	Took time.Duration
	// Invites and AuditEntries count the records of an upgraded file
	// (zero when nothing was upgraded, or the file was new).
	Invites, AuditEntries int
}

// Upgrade reports what Open did to the file's schema.
func (s *Store) Upgrade() Upgrade { return s.upgrade }

// Close releases the file and its lock. It waits for running transactions.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Ping checks the database answers, for health checks. It runs a read
// transaction and looks for the meta bucket, so a closed store or a file
// that lost its layout both report an error.
func (s *Store) Ping(ctx context.Context) error {
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("meta bucket missing")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// SchemaVersion returns the schema version stored in the file. After a
// successful Open it equals the latest version this program knows.
func (s migrator) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		v, err = schemaVersion(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
