package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// mailTable holds what the bot keeps of mail addresses: one record per
// address given on the request page (keyed by a hash of the address in its
// canonical form, so that it serves the "one request, one account per
// address" rule even after the address itself was dropped), and a count of
// the mails sent to each address and mail domain over the last day.
//
// Its buckets came after the last schema change: they are created when
// missing at Open (ensureMailBuckets), and a file opened read-only that
// lacks them reads as holding no addresses.
type mailTable struct{ *base }

// Buckets of the mail table.
var (
	bucketMailAddresses = []byte("mail_addresses")
	bucketMailSends     = []byte("mail_sends")
)

// MailWindow is the span over which mails sent are counted.
const MailWindow = 24 * time.Hour

// Errors of mail confirmation.
var (
	// ErrWrongCode means the code given does not match; the request
	// keeps its place until the tries run out.
	ErrWrongCode = errors.New("store: wrong confirmation code")
	// ErrNoTriesLeft means the code was given wrong too often: it
	// cannot confirm any more.
	ErrNoTriesLeft = errors.New("store: no confirmation tries left")
	// ErrCodeExpired means the code's time ran out.
	ErrCodeExpired = errors.New("store: confirmation code expired")
	// ErrConfirmed means the address was confirmed already.
	ErrConfirmed = errors.New("store: address already confirmed")
)

// MailAddress is what is kept of one mail address.
type MailAddress struct {
	// Key is the hash of the address in canonical form (lower case,
	// without a +tag): the record's key.
	Key string `json:"key"`
	// Address is the address as given, kept only while it is needed:
	// until it is confirmed and the request answered, and after that
	// only for password recovery (Recovery).
	Address string `json:"address,omitempty"`
	// Domain is the address's mail domain, for the per-domain limit.
	Domain string `json:"domain"`
	// Lang is the language mails to it are written in.
	Lang string `json:"lang,omitempty"`
	// Request is the account request it was given with; empty for an
	// address an account added by itself.
	Request string `json:"request,omitempty"`
	// Account is the account it belongs to, once known.
	Account string `json:"account,omitempty"`
	// CodeHash is the hash of the confirmation code (and the request's
	// status page secret), until it is confirmed.
	CodeHash string `json:"code_hash,omitempty"`
	// CodeExpires is when the code stops working; Tries counts wrong
	// codes.
	CodeExpires time.Time `json:"code_expires,omitzero"`
	Tries       int       `json:"tries,omitempty"`
	// Confirmed is when the address was confirmed.
	Confirmed time.Time `json:"confirmed,omitzero"`
	// Recovery says its owner agreed to keep it for password recovery.
	Recovery bool `json:"recovery,omitempty"`
}

// MailUsage is what counts against a new address, read in the
// transaction that would store it.
type MailUsage struct {
	// OpenRequest says an open request, or an invite an approval made
	// that is still pending, holds the address.
	OpenRequest bool
	// Account names the account the address belongs to; empty if none.
	Account string
	// AddressSent and DomainSent count the mails sent to the address
	// and to its domain over the last MailWindow.
	AddressSent, DomainSent int
}

// ensureMailBuckets creates the mail table's buckets in a file that lacks
// them.
func ensureMailBuckets(db *bbolt.DB) error {
	// Look first: most opens find them, and a write would cost pages and
	// an fsync at every start.
	present := false
	_ = db.View(func(tx *bbolt.Tx) error {
		present = tx.Bucket(bucketMailAddresses) != nil && tx.Bucket(bucketMailSends) != nil
		return nil
	})
	if present {
		return nil
	}
	return db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMailAddresses, bucketMailSends} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
}

// getMailAddress reads the record key inside tx; ErrNotFound if none (also
// in a read-only file without the bucket).
func getMailAddress(tx *bbolt.Tx, key string) (MailAddress, error) {
	if tx.Bucket(bucketMailAddresses) == nil {
		return MailAddress{}, ErrNotFound
	}
	return getRecord[MailAddress](tx, bucketMailAddresses, "mail address", key)
}

// MailAddress returns the record of the address whose key is key, or
// ErrNotFound.
func (s mailTable) MailAddress(ctx context.Context, key string) (MailAddress, error) {
	var a MailAddress
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		a, err = s.resolved(tx, key)
		return err
	})
	if err != nil {
		return MailAddress{}, fmt.Errorf("mail address: %w", err)
	}
	return a, nil
}

// resolved reads record key and fills in its account from the invite its
// request's approval made, once that invite created one.
func (s mailTable) resolved(tx *bbolt.Tx, key string) (MailAddress, error) {
	a, err := getMailAddress(tx, key)
	if err != nil || a.Account != "" || a.Request == "" {
		return a, err
	}
	r, err := getRequest(tx, a.Request)
	if errors.Is(err, ErrNotFound) {
		return a, nil
	} else if err != nil {
		return a, err
	}
	if r.Invite != "" {
		inv, err := getInvite(tx, r.Invite)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return a, err
		}
		a.Account = inv.UsedBy
	}
	return a, nil
}

// usage reads what counts against address key of domain at now.
func (s mailTable) usage(tx *bbolt.Tx, key, domain string, now time.Time) (MailUsage, error) {
	var u MailUsage
	a, err := s.resolved(tx, key)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return u, err
	default:
		u.Account = a.Account
		if a.Account == "" && a.Request != "" {
			held, err := requestHolds(tx, a.Request, now)
			if err != nil {
				return u, err
			}
			u.OpenRequest = held
		}
	}
	u.AddressSent = len(sendsIn(tx, "a/"+key, now))
	u.DomainSent = len(sendsIn(tx, "d/"+domain, now))
	return u, nil
}

// requestHolds reports whether request id still holds its address: open
// and live, or approved with an invite that can still be used.
func requestHolds(tx *bbolt.Tx, id string, now time.Time) (bool, error) {
	r, err := getRequest(tx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	switch {
	case r.live(now):
		return true, nil
	case r.State == RequestApproved && r.Invite != "":
		inv, err := getInvite(tx, r.Invite)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		return inv.State == StatePending && now.Before(inv.Expires), nil
	}
	return false, nil
}

// sendsIn returns the times of the mails counted under key that lie in the
// window ending at now.
func sendsIn(tx *bbolt.Tx, key string, now time.Time) []time.Time {
	b := tx.Bucket(bucketMailSends)
	if b == nil {
		return nil
	}
	var all, out []time.Time
	if raw := b.Get([]byte(key)); raw != nil && json.Unmarshal(raw, &all) == nil {
		for _, t := range all {
			if now.Sub(t) < MailWindow && !t.After(now) {
				out = append(out, t)
			}
		}
	}
	return out
}

// countSend records one mail sent under key at now, dropping those older
// than the window.
func countSend(tx *bbolt.Tx, key string, now time.Time) error {
	return putJSON(tx.Bucket(bucketMailSends), []byte(key), append(sendsIn(tx, key, now), now.UTC()))
}

// MailCheck decides, in the transaction that stores a new address, whether
// it may be: nil, or the refusal to return.
type MailCheck func(MailUsage) error

// AddMailRequest stores request r with the address a (key, address,
// domain, code), in one transaction, unless maxOpen requests are open
// (ErrFull) or check refuses what counts against the address (its error
// is returned). The mail about to be sent is counted against the address
// and its domain. r is stored open and unconfirmed, pointing at a.
func (s mailTable) AddMailRequest(ctx context.Context, r Request, a MailAddress, maxOpen int, check MailCheck, entry AuditEntry) (Request, error) {
	if err := validateAudit(entry); err != nil {
		return Request{}, fmt.Errorf("add request: %w", err)
	}
	if r.SecretHash == "" || r.Name == "" || r.Created.IsZero() || r.Expires.IsZero() || a.Key == "" || a.Address == "" || a.Domain == "" {
		return Request{}, fmt.Errorf("add request: secret hash, name, times and address are required: %w", ErrInvalid)
	}
	now := entry.Time
	if now.IsZero() {
		now = s.now()
	}
	r.State, r.Unconfirmed, r.MailKey = RequestOpen, true, a.Key
	r.Created, r.Expires = r.Created.UTC(), r.Expires.UTC()
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		open := 0
		err := eachRequest(tx.Bucket(bucketRequests), func(o Request) error {
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
		u, err := s.usage(tx, a.Key, a.Domain, now)
		if err != nil {
			return err
		}
		if err := check(u); err != nil {
			return err
		}
		_, err = s.addRecord(tx, tx.Bucket(bucketRequests), entry, func(id string) any {
			r.ID = id
			return r
		})
		if err != nil {
			return err
		}
		a.Request, a.Account, a.Confirmed, a.Tries = r.ID, "", time.Time{}, 0
		if err := putJSON(tx.Bucket(bucketMailAddresses), []byte(a.Key), a); err != nil {
			return err
		}
		if err := countSend(tx, "a/"+a.Key, now); err != nil {
			return err
		}
		return countSend(tx, "d/"+a.Domain, now)
	})
	if err != nil {
		return Request{}, fmt.Errorf("add request: %w", err)
	}
	return r, nil
}

// CountMail counts one mail about to be sent to address key of domain at
// now, unless check refuses what counts against them already.
func (s mailTable) CountMail(ctx context.Context, key, domain string, now time.Time, check MailCheck) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		u, err := s.usage(tx, key, domain, now)
		if err != nil {
			return err
		}
		if err := check(u); err != nil {
			return err
		}
		if err := countSend(tx, "a/"+key, now); err != nil {
			return err
		}
		return countSend(tx, "d/"+domain, now)
	})
	if err != nil {
		return fmt.Errorf("count mail: %w", err)
	}
	return nil
}

// ConfirmMail confirms the address of request id if matches accepts the
// stored code hash: the request becomes confirmed and stays open until
// expires, with entry in the audit log, all in one transaction. A wrong
// code counts a try (ErrWrongCode, with the tries left); after maxTries,
// ErrNoTriesLeft; a code past its time ErrCodeExpired; a request no longer
// open ErrNotOpen; one confirmed already ErrConfirmed.
func (s mailTable) ConfirmMail(ctx context.Context, id string, matches func(codeHash string) bool, maxTries int, expires time.Time, entry AuditEntry) (Request, int, error) {
	if err := validateAudit(entry); err != nil {
		return Request{}, 0, fmt.Errorf("confirm mail: %w", err)
	}
	now := entry.Time
	var (
		r    Request
		left int
	)
	wrong := false
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		if r, err = getRequest(tx, id); err != nil {
			return err
		}
		if !r.Unconfirmed {
			return ErrConfirmed
		}
		if !r.live(now) {
			return ErrNotOpen
		}
		a, err := getMailAddress(tx, r.MailKey)
		if err != nil {
			return err
		}
		switch {
		case a.Tries >= maxTries:
			return ErrNoTriesLeft
		case !now.Before(a.CodeExpires):
			return ErrCodeExpired
		case !matches(a.CodeHash):
			a.Tries++
			left, wrong = maxTries-a.Tries, true
			// The try is written and the transaction commits: the
			// wrong code is reported after it.
			return putJSON(tx.Bucket(bucketMailAddresses), []byte(a.Key), a)
		}
		a.CodeHash, a.Confirmed = "", now.UTC()
		if err := putJSON(tx.Bucket(bucketMailAddresses), []byte(a.Key), a); err != nil {
			return err
		}
		r.Unconfirmed, r.MailConfirmed, r.Expires = false, now.UTC(), expires.UTC()
		if err := putJSON(tx.Bucket(bucketRequests), []byte(id), r); err != nil {
			return err
		}
		if entry.Subject == "" {
			entry.Subject = id
		}
		_, err = s.appendAudit(tx, entry)
		return err
	})
	if err == nil && wrong {
		err = ErrWrongCode
		if left <= 0 {
			err = ErrNoTriesLeft
		}
	}
	if err != nil {
		return Request{}, left, fmt.Errorf("confirm mail for request %q: %w", id, err)
	}
	return r, 0, nil
}

// UpdateMailAddress changes the record key with fn in one transaction;
// ErrNotFound when there is none. fn returning false deletes the record.
func (s mailTable) UpdateMailAddress(ctx context.Context, key string, fn func(*MailAddress) bool) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		a, err := s.resolved(tx, key)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketMailAddresses)
		if !fn(&a) {
			return b.Delete([]byte(key))
		}
		a.Key = key
		return putJSON(b, []byte(key), a)
	})
	if err != nil {
		return fmt.Errorf("update mail address: %w", err)
	}
	return nil
}

// PutMailAddress stores a (an address an account added by itself),
// replacing a record of the same key.
func (s mailTable) PutMailAddress(ctx context.Context, a MailAddress) error {
	if a.Key == "" || a.Domain == "" {
		return fmt.Errorf("put mail address: key and domain are required: %w", ErrInvalid)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bucketMailAddresses), []byte(a.Key), a)
	})
	if err != nil {
		return fmt.Errorf("put mail address: %w", err)
	}
	return nil
}

// MailAddressesOf returns the records that belong to account (directly,
// or through the invite its request's approval made).
func (s mailTable) MailAddressesOf(ctx context.Context, account string) ([]MailAddress, error) {
	var out []MailAddress
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketMailAddresses)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			a, err := s.resolved(tx, string(k))
			if err != nil {
				return err
			}
			if a.Account == account {
				out = append(out, a)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("mail addresses of %s: %w", account, err)
	}
	return out, nil
}

// EachMailAddress calls fn for every record (accounts resolved), in one
// read transaction, until fn returns an error.
func (s mailTable) EachMailAddress(ctx context.Context, fn func(MailAddress) error) error {
	return s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketMailAddresses)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			a, err := s.resolved(tx, string(k))
			if err != nil {
				return err
			}
			return fn(a)
		})
	})
}

// PurgeMailAddresses drops what is no longer needed of the addresses at
// now: the address of an answered request unless its owner kept it for
// recovery (the hashed key stays, for "one account per address"), the
// whole record of a request declined or lapsed, and an account's own
// address whose code lapsed unconfirmed. It returns how many records
// changed. Most sweeps find nothing: it looks first, so that they cost no
// write.
func (s mailTable) PurgeMailAddresses(ctx context.Context, now time.Time) (int, error) {
	var due []mailChange
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		due, err = purgeDue(tx, now)
		return err
	})
	if err != nil || len(due) == 0 {
		return 0, err
	}
	n := 0
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		due, err := purgeDue(tx, now) // again: requests may have changed
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketMailAddresses)
		for _, c := range due {
			if c.keep == nil {
				err = b.Delete([]byte(c.key))
			} else {
				err = putJSON(b, []byte(c.key), *c.keep)
			}
			if err != nil {
				return err
			}
		}
		n = len(due)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge mail addresses: %w", err)
	}
	return n, nil
}

// mailChange is one record a purge deletes (keep nil) or rewrites.
type mailChange struct {
	key  string
	keep *MailAddress
}

// purgeDue lists what PurgeMailAddresses changes at now, inside tx.
func purgeDue(tx *bbolt.Tx, now time.Time) ([]mailChange, error) {
	b := tx.Bucket(bucketMailAddresses)
	if b == nil {
		return nil, nil
	}
	var changes []mailChange
	err := b.ForEach(func(k, v []byte) error {
		var a MailAddress
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode mail address %s: %w", k, err)
		}
		if a.Request == "" {
			if a.CodeHash != "" && a.Confirmed.IsZero() && !now.Before(a.CodeExpires) {
				changes = append(changes, mailChange{key: a.Key})
			}
			return nil
		}
		r, err := getRequest(tx, a.Request)
		switch {
		case errors.Is(err, ErrNotFound):
			changes = append(changes, mailChange{key: a.Key})
		case err != nil:
			return err
		case r.live(now):
		case r.State == RequestApproved:
			keep := a.Recovery
			if keep && a.Account == "" && r.Invite != "" {
				// Kept for recovery, but its invite can no longer make an
				// account the bot knows of: recovery could never find it.
				inv, err := getInvite(tx, r.Invite)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
				keep = err == nil && (inv.State == StatePending || inv.UsedBy != "")
			}
			if !keep && (a.Address != "" || a.CodeHash != "") {
				a.Address, a.Lang, a.CodeHash = "", "", ""
				changes = append(changes, mailChange{key: a.Key, keep: &a})
			}
		default:
			changes = append(changes, mailChange{key: a.Key})
		}
		return nil
	})
	return changes, err
}
