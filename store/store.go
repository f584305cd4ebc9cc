// Package store keeps invitebot's durable state in a single bbolt file:
// invites, grants and the audit log, plus the schema version that lets a
// newer program upgrade an older file in place.
//
// Layout (all values are JSON unless noted; created is 8-byte big-endian
// Unix nanoseconds, expiry the same with an unknown expiry as all ones,
// rank an 8-byte big-endian position, lenstr a string preceded by its
// uvarint length):
//
//	meta                        schema_version -> decimal ASCII
//	invites                     id -> Invite
//	invites_by_token            token -> id        (uniqueness, lookups by token)
//	invites_by_inviter          inviter 0x00 created id -> rank among the inviter's
//	invites_by_created          created id -> rank, inviter (0x00 inviter for an event link's invite)
//	event_invites_by_inviter    inviter 0x00 created id -> rank among the inviter's event link invites
//	invites_pending             expiry id -> lenstr(token) inviter (pending invites)
//	invites_pending_by_inviter  inviter 0x00 expiry id -> empty
//	pending_counts              inviter -> count (8-byte BE) of pending invites not from event links
//	invites_unrevoked           expiry id -> empty (cancelled, token not revoked)
//	invites_by_used_by          lenstr(account) id -> empty
//	grants                      bare JID -> Grant
//	audit                       seq (8-byte BE, from NextSequence) -> AuditEntry
//	audit_by_about              lenstr(actor or subject) seq -> empty
//	settings                    pause -> Pause
//	requests                    id -> Request      (account requests from the web page)
//	events                      id -> EventLink
//
// The indexes are described in indexes.go. They exist so that nothing on a
// request path or a timer reads more of the file than its answer: a
// community's history grows to hundreds of thousands of records, and a scan
// of them costs seconds and pulls the whole file into memory.
//
// Every mutation that has an audit entry writes it in the same transaction,
// so the log can never disagree with the data it describes.
//
// The store compares JIDs and tokens byte for byte; normalising them is the
// caller's business because the store must not know XMPP.
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

// Grant is the right to invite given by an admin.
type Grant struct {
	JID       string    `json:"jid"`
	GrantedBy string    `json:"granted_by"`
	GrantedAt time.Time `json:"granted_at"`
	Note      string    `json:"note,omitempty"`
	// PerDay and MaxPending override the configured per-inviter limits
	// when non-zero.
	PerDay     int `json:"per_day,omitempty"`
	MaxPending int `json:"max_pending,omitempty"`
	// Requests lets the holder answer account requests too.
	Requests bool `json:"requests,omitempty"`
	// Events is the largest cap the grantee may give an event link; zero
	// means they may make none.
	Events int `json:"events,omitempty"`
}

// Pause is the global pause switch: while Paused, nobody creates invites.
type Pause struct {
	Paused bool      `json:"paused"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// AuditEntry is one line of the append-only audit log.
type AuditEntry struct {
	Seq     uint64    `json:"seq"` // assigned by the store
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`   // bare JID or "system"
	Action  string    `json:"action"`  // e.g. "invite.create", "grant", "revoke", "invite.cancel"
	Subject string    `json:"subject"` // invite id or JID acted upon
	Detail  string    `json:"detail,omitempty"`
}

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
type Store struct {
	db *bbolt.DB
	// newID and now are fields rather than package functions so tests can
	// force an ID collision or pin the clock without global state.
	newID func() string
	now   func() time.Time
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
	s := &Store{db: db, newID: newID, now: time.Now}
	if err := s.migrate(ctx); err != nil {
		// Close error is secondary: the migration error is what the
		// operator needs to see.
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

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
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
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

// view runs fn in a read transaction unless ctx is already done. bbolt
// transactions cannot be interrupted, so checking before starting one is the
// only point where cancellation can take effect.
func (s *Store) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// update is view for write transactions.
func (s *Store) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}
