package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Event links are for the in-person case: a workshop where twenty people
// should get accounts in the next two hours. The link is a page of the
// bot's, never a server token: each visitor who continues gets a fresh
// single-use invite of their own, minted on demand and recorded as the
// creator's with the link's id, until the link's cap or expiry is reached.
// Shared by mistake, it can never create more than its cap, and pause stops
// it like everything else.

// Audit actions of event links.
const (
	ActionEventCreate = "event.create"
	ActionEventClose  = "event.close"
)

// Errors of event links; front ends turn them into replies and pages.
var (
	// ErrNoSuchEvent means there is no event link with that id that the
	// actor may see.
	ErrNoSuchEvent = errors.New("no such event link")
	// ErrEventUsedUp means every invite of the link has been handed out.
	ErrEventUsedUp = errors.New("event link is used up")
	// ErrEventExpired means the link is past its expiry.
	ErrEventExpired = errors.New("event link has expired")
	// ErrEventClosed means someone closed the link, or its creator may no
	// longer make links.
	ErrEventClosed = errors.New("event link is closed")
	// ErrEventsNotAllowed means the actor's grant allows no event links.
	ErrEventsNotAllowed = errors.New("event links are not allowed for this inviter")
	// ErrEventDuration means the link would stay open for no time or for
	// longer than policy.MaxEventDuration.
	ErrEventDuration = errors.New("event link duration out of range")
)

// EventCapError means the cap asked for is more than the actor may set
// now.
type EventCapError struct {
	// Asked is the cap asked for; Max the largest the actor may set now,
	// zero when no new link is possible now.
	Asked, Max int
	// Shared says that Max is what the actor's allowance leaves beside
	// their other links (policy.EventCapNow), below what one link of
	// theirs may admit; Allowance is then that allowance, per
	// policy.QuotaWindow for all their links together, and Usage what
	// their links handed out and hold of it.
	Shared    bool
	Allowance int
	Usage     policy.EventUsage
}

func (e *EventCapError) Error() string {
	if e.Shared {
		return fmt.Sprintf("event link cap %d above the %d left of an allowance of %d (%d handed out, %d held by open links)",
			e.Asked, e.Max, e.Allowance, e.Usage.HandedOut, e.Usage.Held)
	}
	return fmt.Sprintf("event link cap %d above the allowed %d", e.Asked, e.Max)
}

// EventState is where an event link is in its life.
type EventState string

// Event link states.
const (
	// EventOpen: visitors get invites.
	EventOpen EventState = "open"
	// EventUsedUp: every invite has been handed out.
	EventUsedUp EventState = "used up"
	// EventExpired: its time ran out.
	EventExpired EventState = "expired"
	// EventClosed: someone closed it.
	EventClosed EventState = "closed"
)

// EventLink is what front ends see of an event link.
type EventLink struct {
	// ID names the link in commands and in its page's address. It is the
	// secret: whoever holds it may use the link.
	ID string
	// Creator is the bare JID the link's invites are recorded as.
	Creator string
	// Domain is the XMPP domain the invites create accounts on.
	Domain string
	// Created is when the link was made; Expires when it stops.
	Created, Expires time.Time
	// MaxUses is the cap; Uses counts the invites handed out so far.
	MaxUses, Uses int
	// Note is the creator's, for their list.
	Note string
	// Closed is when the link was closed (zero while not), ClosedBy by
	// whom.
	Closed   time.Time
	ClosedBy string
}

// State says where the link is at now. A closed link is closed even when
// it is also used up or past its expiry: closing is what its creator did
// about it.
func (e EventLink) State(now time.Time) EventState {
	switch {
	case !e.Closed.IsZero():
		return EventClosed
	case !now.Before(e.Expires):
		return EventExpired
	case e.Uses >= e.MaxUses:
		return EventUsedUp
	}
	return EventOpen
}

// Left is how many invites the link may still hand out.
func (e EventLink) Left() int { return max(0, e.MaxUses-e.Uses) }

// eventLinks makes, lists, closes and hands out event links. Their
// invites are minted like any other (minter) but admitted under the
// global limit only; closing one cancels its unused invites (canceller).
type eventLinks struct {
	*core
	roles  *roles
	gate   *quotaGate
	minter *minter
	cancel *canceller
}

// eventOf is the front ends' view of a stored event link.
func (el *eventLinks) eventOf(r store.EventLink) EventLink {
	return EventLink{ID: r.ID, Creator: r.Creator, Domain: el.domain, Created: r.Created, Expires: r.Expires,
		MaxUses: r.MaxUses, Uses: r.Uses, Note: r.Note, Closed: r.Closed, ClosedBy: r.ClosedBy}
}

// EventObserver is told what came of each visitor's request on an event
// link, for metrics. An Observer that also implements it is told.
type EventObserver interface {
	EventUse(outcome EventOutcome)
}

// EventOutcome names what came of one visitor's request; the values are
// metric labels, so they are few and stable.
type EventOutcome string

// Event use outcomes.
const (
	EventUseMinted  EventOutcome = "minted"
	EventUseUsedUp  EventOutcome = "used_up"
	EventUseExpired EventOutcome = "expired"
	EventUseClosed  EventOutcome = "closed"
	EventUsePaused  EventOutcome = "paused"
	EventUseQuota   EventOutcome = "quota"
	EventUseFailed  EventOutcome = "failed"
)

// observeEventUse tells the observer, if it listens, what came of a
// visitor's request that ended in err.
func (el *eventLinks) observeEventUse(err error) {
	eo, ok := el.observer.(EventObserver)
	if !ok {
		return
	}
	var quota *QuotaError
	switch {
	case err == nil:
		eo.EventUse(EventUseMinted)
	case errors.Is(err, ErrEventUsedUp):
		eo.EventUse(EventUseUsedUp)
	case errors.Is(err, ErrEventExpired):
		eo.EventUse(EventUseExpired)
	case errors.Is(err, ErrEventClosed):
		eo.EventUse(EventUseClosed)
	case errors.Is(err, ErrPaused):
		eo.EventUse(EventUsePaused)
	case errors.As(err, &quota):
		eo.EventUse(EventUseQuota)
	case errors.Is(err, ErrNoSuchEvent):
		// Not a use of any link: unknown ids are the web's 404s.
	default:
		eo.EventUse(EventUseFailed)
	}
}

// EventOptions say what event link to make.
type EventOptions struct {
	// Uses is the cap: how many visitors get an invite.
	Uses int
	// Valid is how long the link stays open, at most
	// policy.MaxEventDuration.
	Valid time.Duration
	// Note is for the creator's list.
	Note string
}

// MayCreateEvents reports whether a may make event links at all: nil, or
// ErrForbidden or ErrEventsNotAllowed, the refusals CreateEvent would give
// whatever a asks for. Front ends ask before they show a form to fill.
func (el *eventLinks) MayCreateEvents(ctx context.Context, a Actor) error {
	if err := a.may(policy.CreateEvent); err != nil {
		return err
	}
	t, err := el.termsOf(ctx, a)
	if err != nil {
		return err
	}
	if t.perLink() == 0 {
		return ErrEventsNotAllowed
	}
	return nil
}

// eventTerms is what decides how many people an actor's event links may
// admit: the role, the grant's allowance and the configured limits.
type eventTerms struct {
	role        policy.Role
	grantEvents int
	limits      policy.Limits
}

// perLink is the most people one link may admit; 0 means no links at all.
func (t eventTerms) perLink() int {
	return policy.EventCap(t.role, t.grantEvents, t.limits.EventMaxUses)
}

// termsOf reads a's event terms: admins are bound by the configuration
// only, inviters by their grant too.
func (el *eventLinks) termsOf(ctx context.Context, a Actor) (eventTerms, error) {
	t := eventTerms{role: a.role, limits: el.roles.DefaultLimits()}
	if a.role != policy.Admin {
		g, err := el.store.Grant(ctx, a.jid)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return eventTerms{}, fmt.Errorf("create event: %w", err)
		}
		t.grantEvents = g.Events
	}
	return t, nil
}

// CreateEvent makes an event link for a. Admins may set a cap up to the
// configured maximum, inviters up to what their grant's allowance leaves
// (none unless an admin gave one: grant … events N): it bounds what all
// their links hand out together per policy.QuotaWindow, and never exceeds
// half the service's daily limit (policy.EventAllowance). What their links
// handed out in the window counts, and so does what their open links may
// still hand out, so a link can always give what it promised. While
// invites are paused no link is made.
func (el *eventLinks) CreateEvent(ctx context.Context, a Actor, o EventOptions) (EventLink, error) {
	if err := a.may(policy.CreateEvent); err != nil {
		return EventLink{}, err
	}
	if o.Valid <= 0 || o.Valid > policy.MaxEventDuration {
		return EventLink{}, ErrEventDuration
	}
	terms, err := el.termsOf(ctx, a)
	if err != nil {
		return EventLink{}, err
	}
	grantEvents, lim := terms.grantEvents, terms.limits
	switch perLink := terms.perLink(); {
	case perLink == 0:
		return EventLink{}, ErrEventsNotAllowed
	case o.Uses < 1 || o.Uses > perLink:
		return EventLink{}, &EventCapError{Asked: o.Uses, Max: perLink}
	}
	pause, err := el.store.Pause(ctx)
	if err != nil {
		return EventLink{}, fmt.Errorf("create event: %w", err)
	}
	if pause.Paused {
		return EventLink{}, &PausedError{Reason: pause.Reason}
	}
	add := func(now time.Time) (store.EventLink, error) {
		detail := fmt.Sprintf("%d uses until %s", o.Uses, now.Add(o.Valid).Format(time.RFC3339))
		if o.Note != "" {
			detail += "; " + o.Note
		}
		return el.store.AddEvent(ctx, store.EventLink{Creator: a.jid, Created: now, Expires: now.Add(o.Valid), MaxUses: o.Uses, Note: o.Note},
			store.AuditEntry{Time: now, Actor: a.jid, Action: ActionEventCreate, Detail: detail})
	}
	var rec store.EventLink
	if allowance, limited := policy.EventAllowance(a.role, grantEvents, lim); !limited {
		rec, err = add(el.now().UTC())
	} else {
		// What the actor's links hand out and hold is read, and the new
		// link stored, under the gate's lock: links made at once cannot
		// together pass the allowance.
		el.gate.exclusive(func() {
			now := el.now().UTC()
			var u policy.EventUsage
			if u, err = el.gate.eventUsage(ctx, a.jid, now); err != nil {
				return
			}
			if most := policy.EventCapNow(a.role, grantEvents, lim, u); o.Uses > most {
				err = &EventCapError{Asked: o.Uses, Max: most, Shared: true, Allowance: allowance, Usage: u}
				return
			}
			rec, err = add(now)
		})
	}
	var capErr *EventCapError
	if errors.As(err, &capErr) {
		return EventLink{}, err
	} else if err != nil {
		return EventLink{}, fmt.Errorf("create event: %w", err)
	}
	el.log.InfoContext(ctx, "event link created", slog.String("id", rec.ID), slog.String("creator", a.jid),
		slog.Int("max_uses", rec.MaxUses), slog.Time("expires", rec.Expires))
	return el.eventOf(rec), nil
}

// Events returns the event links made by whose (a's own when empty),
// newest first. Listing someone else's takes policy.ListAnyEvents.
func (el *eventLinks) Events(ctx context.Context, a Actor, whose string) ([]EventLink, error) {
	perm := policy.ListEvents
	if whose == "" {
		whose = a.jid
	} else if whose != a.jid {
		perm = policy.ListAnyEvents
	}
	if err := a.may(perm); err != nil {
		return nil, err
	}
	recs, err := el.store.Events(ctx, whose)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	out := make([]EventLink, len(recs))
	for i, r := range recs {
		out[i] = el.eventOf(r)
	}
	return out, nil
}

// eventRecord reads the stored event link with that id.
func (el *eventLinks) eventRecord(ctx context.Context, id string) (store.EventLink, error) {
	if !ValidID(id) {
		return store.EventLink{}, ErrNoSuchEvent
	}
	rec, err := el.store.Event(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.EventLink{}, ErrNoSuchEvent
	} else if err != nil {
		return store.EventLink{}, fmt.Errorf("look up event: %w", err)
	}
	return rec, nil
}

// EventCloseResult says what closing an event link did.
type EventCloseResult struct {
	// Link is the link as closed.
	Link EventLink
	// AlreadyClosed says it was closed before; what was still pending is
	// cancelled all the same.
	AlreadyClosed bool
	// Cancelled counts its unused invites cancelled now; StillValid those
	// of them whose token the server still accepts for now (revocation
	// is retried by usage tracking).
	Cancelled, StillValid int
}

// CloseEvent closes an event link, so it hands out no more invites, and
// cancels the invites it handed out that are still unused, at the server
// too. Inviters may close their own links, admins any
// (policy.CanCloseEvent).
func (el *eventLinks) CloseEvent(ctx context.Context, a Actor, id string) (EventCloseResult, error) {
	if err := a.may(policy.CloseEvent); err != nil {
		return EventCloseResult{}, err
	}
	rec, err := el.eventRecord(ctx, id)
	if err != nil {
		return EventCloseResult{}, err
	}
	if !policy.CanCloseEvent(a.role, a.jid, rec.Creator) {
		return EventCloseResult{}, ErrNoSuchEvent
	}
	// Everything below must happen even if the request runs out of time
	// half-way: a half-closed link leaves tokens working.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	// Exclusive of admissions, so that an invite of the link being minted
	// right now is either stored before this (and cancelled below) or
	// dropped by the check before it is stored (stillOpen).
	var closed store.EventLink
	el.gate.exclusive(func() {
		closed, err = el.store.CloseEvent(wctx, id, store.AuditEntry{Time: el.now().UTC(), Actor: a.jid, Action: ActionEventClose})
	})
	res := EventCloseResult{AlreadyClosed: errors.Is(err, store.ErrEventClosed)}
	if err != nil && !res.AlreadyClosed {
		return EventCloseResult{}, fmt.Errorf("close event: %w", err)
	}
	res.Link = el.eventOf(closed)
	invs, err := el.store.InvitesOfEvent(wctx, id)
	if err != nil {
		return res, fmt.Errorf("close event: %w", err)
	}
	// An event link hands out invites for new accounts, never reset links,
	// so none of its tokens is bound to an account: none is unrevocable.
	tally, err := el.cancel.cancelMany(ctx, a.jid, invs, "event link closed", "close event")
	res.Cancelled, res.StillValid = tally.Cancelled, tally.StillValid+tally.Unrevocable
	if err != nil {
		return res, err
	}
	el.log.InfoContext(ctx, "event link closed", slog.String("id", id), slog.String("by", a.jid),
		slog.Int("cancelled", res.Cancelled), slog.Int("still_valid", res.StillValid), slog.Bool("already_closed", res.AlreadyClosed))
	return res, nil
}

// markEventsClosed closes the open event links of a revoked inviter; the
// caller cancels their invites. A failure is logged, not returned: a
// creator without a grant gets no more invites from any link anyway
// (eventAvailable), this only makes the lists and the audit log say so.
func (el *eventLinks) markEventsClosed(ctx context.Context, actor, creator string) {
	recs, err := el.store.Events(ctx, creator)
	if err != nil {
		el.log.ErrorContext(ctx, "revoke: could not list event links", slog.String("jid", creator), slog.Any("err", err))
		return
	}
	for _, rec := range recs {
		if !rec.Closed.IsZero() {
			continue
		}
		_, err := el.store.CloseEvent(ctx, rec.ID, store.AuditEntry{Time: el.now().UTC(), Actor: actor, Action: ActionEventClose, Detail: "inviter revoked"})
		if err != nil && !errors.Is(err, store.ErrEventClosed) {
			el.log.ErrorContext(ctx, "revoke: could not close event link", slog.String("id", rec.ID), slog.Any("err", err))
		}
	}
}

// LookupEvent returns the event link with that id, for whoever holds it
// (the event page), and whether a visitor could get an invite from it now:
// nil, or the error ClaimEventInvite would give (ErrEventClosed,
// ErrEventExpired, ErrEventUsedUp, *PausedError). An unknown id gives
// ErrNoSuchEvent and no link. The id is the secret here: 80 random bits.
func (el *eventLinks) LookupEvent(ctx context.Context, id string) (EventLink, error) {
	rec, err := el.eventRecord(ctx, id)
	if err != nil {
		return EventLink{}, err
	}
	_, err = el.eventAvailable(ctx, rec)
	return el.eventOf(rec), err
}

// eventAvailable says whether rec may hand out an invite now and, if so,
// returns its creator as the actor the invite is made for.
func (el *eventLinks) eventAvailable(ctx context.Context, rec store.EventLink) (Actor, error) {
	switch el.eventOf(rec).State(el.now()) {
	case EventClosed:
		return Actor{}, ErrEventClosed
	case EventExpired:
		return Actor{}, ErrEventExpired
	case EventUsedUp:
		return Actor{}, ErrEventUsedUp
	}
	creator, err := el.roles.Actor(ctx, rec.Creator)
	if err != nil {
		return Actor{}, fmt.Errorf("event link: %w", err)
	}
	// Revoke closes a revoked inviter's links; this also covers an admin
	// taken out of the configuration.
	if !policy.Allows(creator.role, policy.CreateEvent) {
		return Actor{}, ErrEventClosed
	}
	pause, err := el.store.Pause(ctx)
	if err != nil {
		return Actor{}, fmt.Errorf("read pause: %w", err)
	}
	if pause.Paused {
		return Actor{}, &PausedError{Reason: pause.Reason}
	}
	return creator, nil
}

// ClaimEventInvite hands one visitor of event link id an invite of their
// own: a fresh single-use token minted now, recorded as the creator's with
// the link's id, before it is returned. It fails with ErrNoSuchEvent,
// ErrEventClosed, ErrEventExpired, ErrEventUsedUp, *PausedError, or
// *QuotaError when the service's daily limit for all inviters is reached;
// event invites count toward that limit, not toward the creator's own.
func (el *eventLinks) ClaimEventInvite(ctx context.Context, id string) (Invite, error) {
	inv, err := el.claimEventInvite(ctx, id)
	el.observeEventUse(err)
	return inv, err
}

func (el *eventLinks) claimEventInvite(ctx context.Context, id string) (Invite, error) {
	rec, err := el.eventRecord(ctx, id)
	if err != nil {
		return Invite{}, err
	}
	creator, err := el.eventAvailable(ctx, rec)
	if err != nil {
		return Invite{}, err
	}
	claimed := false
	inv, err := el.minter.mintAndRecord(ctx, creator, minting{
		action: ActionInviteCreate,
		detail: "event " + id,
		event:  id,
		admit: func(ctx context.Context) (*reservation, error) {
			held, err := el.gate.admitEventUse(ctx, creator, id)
			if err != nil {
				return nil, err
			}
			// The claim is one store transaction, which is what makes
			// the cap exact however many visitors press at once.
			if _, err := el.store.ClaimEventUse(ctx, id, el.now()); err != nil {
				_ = held.settle(func() error { return nil })
				return nil, eventClaimError(err)
			}
			claimed = true
			return held, nil
		},
		record: func(ctx context.Context, inv store.Invite, e store.AuditEntry) (store.Invite, error) {
			if err := el.stillOpen(ctx, id); err != nil {
				return store.Invite{}, err
			}
			inv.Event = id
			return el.store.AddInvite(ctx, inv, e)
		},
	})
	if err != nil {
		if claimed {
			// The visitor got nothing: give the use back, so that a
			// failure does not shrink the link.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
			defer cancel()
			if rerr := el.store.ReleaseEventUse(rctx, id); rerr != nil {
				el.log.ErrorContext(ctx, "event link: could not give back a use", slog.String("id", id), slog.Any("err", rerr))
			}
		}
		return Invite{}, err
	}
	el.log.InfoContext(ctx, "event link handed out an invite", slog.String("event", id), slog.String("invite", inv.ID))
	return inv, nil
}

// eventClaimError is what a refused claim means to the front ends.
func eventClaimError(err error) error {
	switch {
	case errors.Is(err, store.ErrEventFull):
		return ErrEventUsedUp
	case errors.Is(err, store.ErrEventExpired):
		return ErrEventExpired
	case errors.Is(err, store.ErrEventClosed):
		return ErrEventClosed
	}
	return fmt.Errorf("event link: %w", err)
}

// stillOpen is checked right before an event invite is stored, under the
// gate's lock: a link closed while the server minted hands out nothing,
// since closing cancelled only the invites stored by then. A link that
// expired meanwhile still records it: the visitor came in time.
func (el *eventLinks) stillOpen(ctx context.Context, id string) error {
	rec, err := el.store.Event(ctx, id)
	if err != nil {
		return fmt.Errorf("event link: %w", err)
	}
	if !rec.Closed.IsZero() {
		return ErrEventClosed
	}
	return nil
}
