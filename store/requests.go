package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// requestTable is the requests bucket: account requests from the web page
// and their answers. Approving one records an invite in the same
// transaction, so it holds the invite table too.
type requestTable struct {
	*base
	invites inviteTable
}

// RequestState is where an account request is in its life. Every request
// starts open and leaves that state at most once.
type RequestState string

// Request states.
const (
	RequestOpen     RequestState = "open"
	RequestApproved RequestState = "approved"
	RequestDenied   RequestState = "denied"
	RequestExpired  RequestState = "expired"
)

// Request is one person's request for an account, made on the web page by
// someone who knows nobody with invite rights.
type Request struct {
	ID string `json:"id"`
	// SecretHash is the SHA-256, in hex, of the secret half of the
	// requester's status page address. Only the hash is kept, so the
	// database (and every backup of it) cannot open anyone's page.
	SecretHash string       `json:"secret_hash"`
	Name       string       `json:"name"`              // what the person wants to be called
	Contact    string       `json:"contact,omitempty"` // a bare JID they gave, unverified
	Message    string       `json:"message,omitempty"` // who they know here, or why
	Created    time.Time    `json:"created"`
	Expires    time.Time    `json:"expires"` // open until then
	State      RequestState `json:"state"`
	// AnsweredBy, Answered and Reason say who approved or declined it,
	// when (also when it expired), and why, if a reason was given.
	AnsweredBy string    `json:"answered_by,omitempty"`
	Answered   time.Time `json:"answered,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	// Invite is the invite an approval minted.
	Invite string `json:"invite,omitempty"`
	// MailKey names the mail address given with the request (its
	// MailAddress record); empty when none was asked for.
	MailKey string `json:"mail_key,omitempty"`
	// Unconfirmed says the request waits for its address to be
	// confirmed: approvers neither hear of it nor see it until then.
	Unconfirmed bool `json:"unconfirmed,omitempty"`
	// MailConfirmed is when the address was confirmed.
	MailConfirmed time.Time `json:"mail_confirmed,omitzero"`
}

// Errors of account requests.
var (
	// ErrFull means the cap on open requests is reached.
	ErrFull = errors.New("store: too many open requests")
	// ErrNotOpen means a request was already answered, or expired (also
	// when its time ran out and the sweep has not marked it yet).
	ErrNotOpen = errors.New("store: request is no longer open")
)

// live reports whether r is open and its time has not run out at now.
func (r Request) live(now time.Time) bool {
	return r.State == RequestOpen && now.Before(r.Expires)
}

// AddRequest stores r under a fresh id, with its audit entry, unless
// maxOpen requests are open and live at entry.Time already: then it
// returns ErrFull and writes nothing. Counting in the same transaction
// keeps the cap exact however many requests arrive at once. State is
// set to open; entry.Subject defaults to the new id.
func (s requestTable) AddRequest(ctx context.Context, r Request, maxOpen int, entry AuditEntry) (Request, error) {
	if err := validateAudit(entry); err != nil {
		return Request{}, fmt.Errorf("add request: %w", err)
	}
	if r.SecretHash == "" || r.Name == "" || r.Created.IsZero() || r.Expires.IsZero() {
		return Request{}, fmt.Errorf("add request: secret hash, name, created and expires are required: %w", ErrInvalid)
	}
	r.State = RequestOpen
	r.Created, r.Expires = r.Created.UTC(), r.Expires.UTC()
	now := entry.Time
	if now.IsZero() {
		now = s.now()
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRequests)
		open := 0
		err := eachRequest(b, func(o Request) error {
			if o.live(now) {
				open++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if open >= maxOpen {
			return fmt.Errorf("%d open: %w", open, ErrFull)
		}
		_, err = s.addRecord(tx, b, entry, func(id string) any {
			r.ID = id
			return r
		})
		return err
	})
	if err != nil {
		return Request{}, fmt.Errorf("add request: %w", err)
	}
	return r, nil
}

// Request returns the request with that id, or ErrNotFound.
func (s requestTable) Request(ctx context.Context, id string) (Request, error) {
	return readRecord[Request](ctx, s.base, bucketRequests, "request", id)
}

// getRequest reads one request inside tx.
func getRequest(tx *bbolt.Tx, id string) (Request, error) {
	return getRecord[Request](tx, bucketRequests, "request", id)
}

// eachRequest decodes every request in b.
func eachRequest(b *bbolt.Bucket, fn func(Request) error) error {
	return b.ForEach(func(k, v []byte) error {
		var r Request
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode request %s: %w", k, err)
		}
		return fn(r)
	})
}

// OpenRequests returns the requests in state open, oldest first, including
// those whose time ran out but that the sweep has not marked yet.
func (s requestTable) OpenRequests(ctx context.Context) ([]Request, error) {
	out := []Request{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return eachRequest(tx.Bucket(bucketRequests), func(r Request) error {
			if r.State == RequestOpen {
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list open requests: %w", err)
	}
	slices.SortFunc(out, func(a, b Request) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// DenyRequest declines request id on behalf of by, with reason (may be
// empty), and appends entry, in one transaction. A request no longer open
// or live at entry.Time gives ErrNotOpen and writes nothing: the first
// answer wins.
func (s requestTable) DenyRequest(ctx context.Context, id, by, reason string, entry AuditEntry) (Request, error) {
	if err := validateAudit(entry); err != nil {
		return Request{}, fmt.Errorf("deny request %q: %w", id, err)
	}
	var r Request
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		r, err = s.answerRequest(tx, id, RequestDenied, by, reason, "", entry)
		return err
	})
	if err != nil {
		return Request{}, fmt.Errorf("deny request %q: %w", id, err)
	}
	return r, nil
}

// ApproveRequest records inv (see AddInvite, with invEntry) and marks
// request id approved by the invite's inviter, pointing at it, with
// reqEntry, all in one transaction. A request no longer open or live at
// reqEntry.Time gives ErrNotOpen and records neither: the first answer
// wins, and an invite minted for a request someone else answered is never
// stored, so never shown. reqEntry.Detail defaults to "invite <id>".
func (s requestTable) ApproveRequest(ctx context.Context, id string, inv Invite, invEntry, reqEntry AuditEntry) (Invite, Request, error) {
	if err := validateAudit(reqEntry); err != nil {
		return Invite{}, Request{}, fmt.Errorf("approve request %q: %w", id, err)
	}
	inv.Request = id
	var r Request
	stored, err := s.invites.addInvite(ctx, inv, invEntry, func(tx *bbolt.Tx, stored Invite) error {
		if reqEntry.Detail == "" {
			reqEntry.Detail = "invite " + stored.ID
		}
		var err error
		r, err = s.answerRequest(tx, id, RequestApproved, stored.Inviter, "", stored.ID, reqEntry)
		return err
	})
	if err != nil {
		return Invite{}, Request{}, fmt.Errorf("approve request %q: %w", id, err)
	}
	return stored, r, nil
}

// answerRequest moves an open, live request to state to inside tx.
func (s requestTable) answerRequest(tx *bbolt.Tx, id string, to RequestState, by, reason, invite string, entry AuditEntry) (Request, error) {
	r, err := getRequest(tx, id)
	if err != nil {
		return Request{}, err
	}
	if entry.Time.IsZero() {
		entry.Time = s.now()
	}
	if !r.live(entry.Time) {
		return Request{}, fmt.Errorf("request is %s: %w", r.State, ErrNotOpen)
	}
	if entry.Subject == "" {
		entry.Subject = id
	}
	if entry, err = s.appendAudit(tx, entry); err != nil {
		return Request{}, err
	}
	r.State, r.AnsweredBy, r.Answered, r.Reason, r.Invite = to, by, entry.Time, reason, invite
	return r, putJSON(tx.Bucket(bucketRequests), []byte(id), r)
}

// ExpireRequests marks every open request whose time ran out by now as
// expired, each with an audit entry by actor, in one transaction, and
// returns them.
func (s requestTable) ExpireRequests(ctx context.Context, now time.Time, actor, action string) ([]Request, error) {
	if actor == "" || action == "" {
		return nil, fmt.Errorf("expire requests: actor and action are required: %w", ErrInvalid)
	}
	now = now.UTC()
	dueIn := func(b *bbolt.Bucket) ([]Request, error) {
		var due []Request
		err := eachRequest(b, func(r Request) error {
			if r.State == RequestOpen && !now.Before(r.Expires) {
				due = append(due, r)
			}
			return nil
		})
		return due, err
	}
	// Most sweeps find nothing: look first, so that they cost no write
	// (and no fsync).
	var due []Request
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		due, err = dueIn(tx.Bucket(bucketRequests))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("expire requests: %w", err)
	}
	if len(due) == 0 {
		return []Request{}, nil
	}
	var out []Request
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRequests)
		due, err := dueIn(b) // again: answers may have come in between
		if err != nil {
			return err
		}
		// Written after the walk: bbolt forbids changing a bucket while
		// iterating over it.
		for i := range due {
			r := &due[i]
			if _, err := s.appendAudit(tx, AuditEntry{Time: now, Actor: actor, Action: action, Subject: r.ID}); err != nil {
				return err
			}
			r.State, r.Answered = RequestExpired, now
			if err := putJSON(b, []byte(r.ID), *r); err != nil {
				return err
			}
		}
		out = due
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire requests: %w", err)
	}
	return out, nil
}
