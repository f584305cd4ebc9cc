package invites

import (
	"time"

	"durare.org/invitebot/store"
)

// State is where an invite is in its life. Every invite starts pending and
// leaves that state at most once.
type State string

// Invite states.
const (
	// StatePending: the token may still create an account.
	StatePending State = State(store.StatePending)
	// StateCancelled: someone cancelled it (see Invite.Revoked for whether
	// the server refuses the token yet).
	StateCancelled State = State(store.StateCancelled)
	// StateUsed: it created an account.
	StateUsed State = State(store.StateUsed)
	// StateExpired: it ran out unused.
	StateExpired State = State(store.StateExpired)
)

// Invite is what front ends see of one account invitation. The bare token
// is not part of it: whoever needs it reads it from URI, which is what gets
// handed out anyway.
type Invite struct {
	// ID names the invite in commands and in its landing page's address.
	ID string
	// URI is the XEP-0401 URI exactly as the server minted it.
	URI string
	// LandingURL is the server's own landing page; empty when it has none.
	LandingURL string
	// Domain is the XMPP domain the account will be created on.
	Domain string
	// Inviter is the bare JID the invite was created for.
	Inviter string
	// Created is when the invite was minted.
	Created time.Time
	// Expires is when the server stops accepting the token; zero if the
	// server did not say.
	Expires time.Time
	// State is where the invite is in its life.
	State State
	// UsedBy is the account the invite created, when known.
	UsedBy string
	// Revoked says that the server refuses the token of a cancelled
	// invite; without it the token still works there for now.
	Revoked bool
	// Unrevocable says that the server refused to revoke the token of a
	// cancelled invite and cannot delete it: it works there until
	// Expires, whatever the bot records.
	Unrevocable bool
	// Replaced, on a new password reset link, are the earlier links for
	// the same account that it cancelled, as they now stand (Revoked or
	// Unrevocable say whether they still work at the server).
	Replaced []Invite
	// ResetFor, when set, makes this a password reset link for that
	// account rather than an invite for a new one.
	ResetFor string
	// Request, when set, is the account request whose approval made
	// this invite.
	Request string
	// Event, when set, is the event link that handed the invite out.
	Event string
}

// Usable reports whether the invite can still create an account at now: it
// is pending and not past its expiry (which counts before anything has
// marked it expired). This is the one rule every front end and the service
// share.
func (inv Invite) Usable(now time.Time) bool {
	return inv.State == StatePending && (inv.Expires.IsZero() || now.Before(inv.Expires))
}

// ValidID reports whether s has the shape of an invite id, so front ends can
// refuse garbage before asking for it.
func ValidID(s string) bool { return store.ValidID(s) }

// viewOf is the front ends' view of a stored invite.
func viewOf(r store.Invite) Invite {
	return Invite{ID: r.ID, URI: r.URI, LandingURL: r.LandingURL, Domain: r.Domain, Inviter: r.Inviter,
		Created: r.Created, Expires: r.Expires, State: State(r.State), UsedBy: r.UsedBy, Revoked: r.Revoked,
		Unrevocable: r.Unrevocable, ResetFor: r.ResetFor, Request: r.Request, Event: r.Event}
}

// viewsOf converts a list of stored invites.
func viewsOf(rs []store.Invite) []Invite {
	out := make([]Invite, len(rs))
	for i, r := range rs {
		out[i] = viewOf(r)
	}
	return out
}

// Grant is the right to invite an admin gave a JID.
type Grant struct {
	// JID is the bare JID holding the grant.
	JID string
	// GrantedBy is the admin who gave (or last updated) it.
	GrantedBy string
	// GrantedAt is when.
	GrantedAt time.Time
	// Note says why, for admins reading the list later.
	Note string
	// PerDay and MaxPending are the grant's own limits; zero means the
	// configured default applies.
	PerDay, MaxPending int
	// Requests says the holder may answer account requests.
	Requests bool
	// Events is the largest cap the grantee may give an event link; zero
	// means none.
	Events int
}

func grantOf(g store.Grant) Grant {
	return Grant{JID: g.JID, GrantedBy: g.GrantedBy, GrantedAt: g.GrantedAt, Note: g.Note,
		PerDay: g.PerDay, MaxPending: g.MaxPending, Requests: g.Requests, Events: g.Events}
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	// Time is when it happened.
	Time time.Time
	// Actor is the bare JID who acted, or "system".
	Actor string
	// Action is one of the Action* names.
	Action string
	// Subject is the invite id or JID acted upon.
	Subject string
	// Detail adds what the action alone does not say.
	Detail string
}

func auditOf(e store.AuditEntry) AuditEntry {
	return AuditEntry{Time: e.Time, Actor: e.Actor, Action: e.Action, Subject: e.Subject, Detail: e.Detail}
}

// Pause is the state of the global pause switch.
type Pause struct {
	// Paused says invite creation is switched off for everybody.
	Paused bool
	// Reason is what the admin gave, shown with every refusal.
	Reason string
	// By is the admin who paused.
	By string
	// Since is when the pause began.
	Since time.Time
}

func pauseOf(p store.Pause) Pause {
	return Pause{Paused: p.Paused, Reason: p.Reason, By: p.By, Since: p.Since}
}
