package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// eventTable is the events bucket: event links, their claimed uses, and
// the invites each one handed out.
type eventTable struct{ *base }

// EventLink is a link that hands each visitor an invite of their own (a
// workshop, a meetup), up to MaxUses of them and until Expires. It holds no
// token: the invites it hands out are ordinary Invites whose Event field
// names it, minted one at a time.
type EventLink struct {
	ID      string    `json:"id"`
	Creator string    `json:"creator"` // bare JID; the invites are recorded as theirs
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// MaxUses is the cap; Uses counts the invites claimed from it, those
	// being minted right now included. Uses never exceeds MaxUses: that
	// is what ClaimEventUse guarantees, in one transaction.
	MaxUses int    `json:"max_uses"`
	Uses    int    `json:"uses"`
	Note    string `json:"note,omitempty"`
	// Closed, when set, is when someone closed the link; ClosedBy who.
	Closed   time.Time `json:"closed,omitzero"`
	ClosedBy string    `json:"closed_by,omitempty"`
}

// Errors of ClaimEventUse, in the order it checks: a closed link is closed
// even when it is also past its expiry or used up.
var (
	// ErrEventClosed means someone closed the event link.
	ErrEventClosed = errors.New("store: event link is closed")
	// ErrEventExpired means the event link is past its expiry.
	ErrEventExpired = errors.New("store: event link has expired")
	// ErrEventFull means every use of the event link is claimed.
	ErrEventFull = errors.New("store: event link is used up")
)

// AddEvent stores ev under a fresh id (any id in ev is replaced) with its
// audit entry, in one transaction. entry.Subject defaults to the new id.
// It returns ErrInvalid for a link without creator, times or a positive
// cap.
func (s eventTable) AddEvent(ctx context.Context, ev EventLink, entry AuditEntry) (EventLink, error) {
	switch {
	case ev.Creator == "" || strings.IndexByte(ev.Creator, 0) >= 0:
		return EventLink{}, fmt.Errorf("add event: creator %q: %w", ev.Creator, ErrInvalid)
	case ev.Created.IsZero() || ev.Expires.IsZero():
		return EventLink{}, fmt.Errorf("add event: zero created or expiry time: %w", ErrInvalid)
	case ev.MaxUses < 1 || ev.Uses != 0:
		return EventLink{}, fmt.Errorf("add event: %d of %d uses: %w", ev.Uses, ev.MaxUses, ErrInvalid)
	}
	if err := validateAudit(entry); err != nil {
		return EventLink{}, fmt.Errorf("add event: %w", err)
	}
	ev.Created, ev.Expires = ev.Created.UTC(), ev.Expires.UTC()
	ev.Closed, ev.ClosedBy = time.Time{}, ""
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		// Event ids come from the same generator as invite ids (80 random
		// bits): whoever holds the link may use it, so it must not be
		// guessable.
		_, err := s.addRecord(tx, tx.Bucket(bucketEvents), entry, func(id string) any {
			ev.ID = id
			return ev
		})
		return err
	})
	if err != nil {
		return EventLink{}, fmt.Errorf("add event: %w", err)
	}
	return ev, nil
}

// Event returns the event link with that id, or ErrNotFound.
func (s eventTable) Event(ctx context.Context, id string) (EventLink, error) {
	return readRecord[EventLink](ctx, s.base, bucketEvents, "event", id)
}

// getEvent reads one event link inside tx.
func getEvent(tx *bbolt.Tx, id string) (EventLink, error) {
	return getRecord[EventLink](tx, bucketEvents, "event", id)
}

// Events returns the event links made by creator, or every link when
// creator is empty, newest first. It scans the bucket: event links are
// made by hand, a few a month, so an index would cost more than it saves.
// The result is empty, not nil, when there are none.
func (s eventTable) Events(ctx context.Context, creator string) ([]EventLink, error) {
	out := []EventLink{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			var ev EventLink
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode event %s: %w", k, err)
			}
			if creator == "" || ev.Creator == creator {
				out = append(out, ev)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list events of %q: %w", creator, err)
	}
	slices.SortFunc(out, func(a, b EventLink) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// ClaimEventUse takes one use of event link id at now, in one write
// transaction: bbolt runs one writer at a time, so however many visitors
// claim at once, no more than MaxUses claims ever succeed. It returns the
// link as it stands after the claim, or ErrNotFound, ErrEventClosed,
// ErrEventExpired or ErrEventFull (then nothing is written). A claim whose
// invite could not be minted is given back with ReleaseEventUse.
func (s eventTable) ClaimEventUse(ctx context.Context, id string, now time.Time) (EventLink, error) {
	var ev EventLink
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		ev, err = getEvent(tx, id)
		if err != nil {
			return err
		}
		if err := eventOpen(ev, now); err != nil {
			return err
		}
		ev.Uses++
		return putJSON(tx.Bucket(bucketEvents), []byte(id), ev)
	})
	if err != nil {
		return EventLink{}, fmt.Errorf("claim a use of event %q: %w", id, err)
	}
	return ev, nil
}

// eventOpen says why ev takes no claim at now, or nil when it does.
func eventOpen(ev EventLink, now time.Time) error {
	switch {
	case !ev.Closed.IsZero():
		return ErrEventClosed
	case !now.Before(ev.Expires):
		return ErrEventExpired
	case ev.Uses >= ev.MaxUses:
		return ErrEventFull
	}
	return nil
}

// ReleaseEventUse gives back one use claimed with ClaimEventUse whose
// invite was never handed out (minting failed, or the invite was dropped),
// so that a failure does not shrink the link. Closed and expired links
// take the use back too: their count then says what they handed out.
func (s eventTable) ReleaseEventUse(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		ev, err := getEvent(tx, id)
		if err != nil {
			return err
		}
		if ev.Uses == 0 {
			return fmt.Errorf("no use to give back: %w", ErrInvalid)
		}
		ev.Uses--
		return putJSON(tx.Bucket(bucketEvents), []byte(id), ev)
	})
	if err != nil {
		return fmt.Errorf("release a use of event %q: %w", id, err)
	}
	return nil
}

// CloseEvent closes event link id with its audit entry, in one
// transaction; entry.Time is recorded as the closing time and entry.Actor
// as who closed it, and entry.Subject defaults to id. It returns the link
// as closed, or ErrNotFound, or ErrEventClosed with the link as it stands
// when it was closed already (nothing is written then).
func (s eventTable) CloseEvent(ctx context.Context, id string, entry AuditEntry) (EventLink, error) {
	if err := validateAudit(entry); err != nil {
		return EventLink{}, fmt.Errorf("close event %q: %w", id, err)
	}
	var ev EventLink
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		ev, err = getEvent(tx, id)
		if err != nil {
			return err
		}
		if !ev.Closed.IsZero() {
			return ErrEventClosed
		}
		if entry.Subject == "" {
			entry.Subject = id
		}
		entry, err = s.appendAudit(tx, entry)
		if err != nil {
			return err
		}
		ev.Closed, ev.ClosedBy = entry.Time.UTC(), entry.Actor
		return putJSON(tx.Bucket(bucketEvents), []byte(id), ev)
	})
	if err != nil {
		return ev, fmt.Errorf("close event %q: %w", id, err)
	}
	return ev, nil
}

// InvitesOfEvent returns the invites event link id handed out, in the
// order they were created. It reads the index of the link creator's event
// link invites, not the whole file.
func (s eventTable) InvitesOfEvent(ctx context.Context, id string) ([]Invite, error) {
	out := []Invite{}
	if id == "" {
		return out, nil
	}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ev, err := getEvent(tx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if !validInviter(ev.Creator) {
			return nil
		}
		prefix := inviterPrefix(ev.Creator)
		c := tx.Bucket(bucketEventByInviter).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) < len(prefix)+8 {
				return fmt.Errorf("malformed event invite index key %q", k)
			}
			inv, err := indexedInvite(tx, k[len(prefix)+8:], "event invite index")
			if err != nil {
				return err
			}
			if inv.Event == id {
				out = append(out, inv)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("invites of event %s: %w", id, err)
	}
	return out, nil
}
