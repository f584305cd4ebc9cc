package bot

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"
)

// The ad-hoc command sessions (XEP-0050): what a multi-stage command
// remembers between its requests.

// Ad-hoc session tunables.
const (
	// sessionTTL is how long a multi-stage command waits for the next step.
	sessionTTL = 10 * time.Minute
	// expiredGrace keeps expired sessions long enough to answer
	// session-expired rather than bad-sessionid.
	expiredGrace = time.Hour
	// maxSessionsPerJID bounds live sessions per bare JID, so one account
	// (or a server inventing resources for it) cannot fill the table.
	maxSessionsPerJID = 5
	// maxSessions bounds the live sessions as a whole; expired ones kept
	// for expiredGrace are dropped first when the table is this full.
	maxSessions = 10000
)

// adhocSession is one multi-stage command in progress.
type adhocSession struct {
	id      string
	owner   string // full JID: XEP-0050 binds a session to the requester
	node    string
	stage   int
	args    map[string]string
	expires time.Time
}

// sessionTable holds the open ad-hoc sessions in memory. They are not worth
// persisting: a restart just asks the person to start the command again.
type sessionTable struct {
	mu   sync.Mutex
	byID map[string]*adhocSession
	now  func() time.Time
}

func newSessionTable(now func() time.Time) *sessionTable {
	return &sessionTable{byID: make(map[string]*adhocSession), now: now}
}

var (
	errTooManySessions = errors.New("too many open command sessions")
	errBadSession      = errors.New("unknown session")
	errSessionExpired  = errors.New("session expired")
)

// open starts a session for owner, sweeping expired ones first. Only live
// sessions count against the caps: expired ones are kept for expiredGrace
// so that a late request learns session-expired rather than bad-sessionid,
// but they never block anyone. The session is not in the table until put.
func (t *sessionTable) open(owner, node string) (*adhocSession, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	bare := bareOf(owner)
	mine, live := 0, 0
	for id, s := range t.byID {
		expired := !now.Before(s.expires)
		if now.After(s.expires.Add(expiredGrace)) || (expired && len(t.byID) >= maxSessions) {
			delete(t.byID, id)
			continue
		}
		if expired {
			continue
		}
		live++
		if bareOf(s.owner) == bare {
			mine++
		}
	}
	if mine >= maxSessionsPerJID || live >= maxSessions {
		return nil, errTooManySessions
	}
	s := &adhocSession{id: newSessionID(), owner: owner, node: node, args: map[string]string{}, expires: now.Add(sessionTTL)}
	return s, nil
}

// bareOf is the bare part of a full JID string.
func bareOf(full string) string {
	bare, _, _ := strings.Cut(full, "/")
	return bare
}

// take removes owner's session id on node from the table and returns it;
// the caller puts it back if the command goes on. Taking it out is what
// makes two concurrent requests on one session safe: the second finds
// nothing. Sessions of other JIDs look unknown, so ids reveal nothing.
func (t *sessionTable) take(id, owner, node string) (*adhocSession, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok || s.owner != owner || s.node != node {
		return nil, errBadSession
	}
	delete(t.byID, id)
	if !t.now().Before(s.expires) {
		return nil, errSessionExpired
	}
	return s, nil
}

// put stores s (back) in the table with a fresh lifetime.
func (t *sessionTable) put(s *adhocSession) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.expires = t.now().Add(sessionTTL)
	t.byID[s.id] = s
}

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}
