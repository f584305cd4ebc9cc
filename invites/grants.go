package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// grants gives and takes away the right to invite. Taking it away closes
// the inviter's event links and cancels their pending invites, exclusive
// of invites being admitted for them (quotaGate).
type grants struct {
	*core
	roles  *roles
	gate   *quotaGate
	events *eventLinks
	cancel *canceller
}

// GrantOptions are the optional parts of a grant.
type GrantOptions struct {
	// Note says why, for the admins who read the list later.
	Note string
	// PerDay and MaxPending, when set, are the grant's own limits, zero
	// putting it back on the configured default; nil keeps what the grant
	// said (the default, for a new one). They are pointers, like Events,
	// because "leave it" and "back to the default" are different answers.
	PerDay, MaxPending *int
	// Requests, when set, says whether the grant lets its holder answer
	// account requests; nil keeps what the grant said (no, for a new one).
	Requests *bool
	// Events, when set, is how many invites the grantee's event links may
	// hand out together per policy.QuotaWindow (and so the largest cap of
	// one; policy.EventAllowance), zero taking the allowance away; nil
	// keeps what the grant said (none, for a new one). Links already made
	// are not touched: they close at their expiry, or with CloseEvent.
	Events *int
}

// Grant gives target the right to invite. Granting someone who already
// holds a grant updates it: limits and note given now replace the old ones
// (a zero limit is the default again), those left out are kept. It returns
// the grant now in force and whether one existed before.
func (gr *grants) Grant(ctx context.Context, a Actor, target string, o GrantOptions) (g Grant, updated bool, err error) {
	if err := a.may(policy.ManageGrants); err != nil {
		return Grant{}, false, err
	}
	if gr.roles.IsAdmin(target) {
		return Grant{}, false, ErrTargetIsAdmin
	}
	// Front ends check what people type; a negative allowance here is a
	// caller's bug, and guessing "none" from it would take a right away.
	// The same holds for the limits: guessing "default" from a negative
	// one could raise it.
	for _, v := range []struct {
		name string
		n    *int
	}{{"per-day", o.PerDay}, {"pending", o.MaxPending}, {"events", o.Events}} {
		if v.n != nil && *v.n < 0 {
			return Grant{}, false, fmt.Errorf("grant: %s %d is below zero", v.name, *v.n)
		}
	}
	rec := store.Grant{JID: target}
	old, err := gr.store.Grant(ctx, target)
	switch {
	case err == nil:
		rec, updated = old, true
	case !errors.Is(err, store.ErrNotFound):
		return Grant{}, false, fmt.Errorf("grant: %w", err)
	}
	now := gr.now().UTC()
	rec.GrantedBy, rec.GrantedAt = a.jid, now
	if o.Note != "" {
		rec.Note = o.Note
	}
	if o.PerDay != nil {
		rec.PerDay = *o.PerDay
	}
	if o.MaxPending != nil {
		rec.MaxPending = *o.MaxPending
	}
	if o.Events != nil {
		rec.Events = *o.Events
	}
	newlyApprover := false
	if o.Requests != nil {
		newlyApprover = *o.Requests && !rec.Requests
		rec.Requests = *o.Requests
	}
	err = gr.store.PutGrant(ctx, rec,
		store.AuditEntry{Time: now, Actor: a.jid, Action: ActionGrant, Subject: target, Detail: grantDetail(rec, updated, o.Requests != nil, o.Events != nil)})
	if err != nil {
		return Grant{}, false, fmt.Errorf("grant: %w", err)
	}
	def := gr.roles.DefaultLimits()
	gr.log.InfoContext(ctx, "grant", slog.String("jid", target), slog.String("by", a.jid),
		slog.String("per_day", effectiveLimit(rec.PerDay, def.PerDay)),
		slog.String("max_pending", effectiveLimit(rec.MaxPending, def.MaxPending)),
		slog.String("events", eventsLimit(rec.Events)), slog.Bool("requests", rec.Requests), slog.Bool("updated", updated))
	switch {
	case !updated:
		gr.notify(ctx, target, GrantGiven{Domain: gr.domain, Requests: rec.Requests})
	case newlyApprover:
		gr.notify(ctx, target, RequestsGranted{Domain: gr.domain})
	}
	return grantOf(rec), updated, nil
}

// grantDetail is the audit record of a grant's terms, in the format
// earlier versions wrote, so the log reads the same across upgrades; the
// requests flag is named only when the grant set it, and so is an event
// allowance taken away ("events none"); one in force is always named.
func grantDetail(g store.Grant, updated, requestsSet, eventsSet bool) string {
	detail := fmt.Sprintf("per-day %s, pending %s", limitDetail(g.PerDay), limitDetail(g.MaxPending))
	if updated {
		detail = "updated; " + detail
	}
	if requestsSet {
		detail += map[bool]string{true: ", requests yes", false: ", requests no"}[g.Requests]
	}
	switch {
	case g.Events > 0:
		detail += fmt.Sprintf(", events %d", g.Events)
	case eventsSet:
		detail += ", events none"
	}
	if g.Note != "" {
		detail += "; " + g.Note
	}
	return detail
}

// effectiveLimit is a grant's limit for the log: its own, or the default
// in force now, named as such ("default (10)"), so a line never shows the
// zero that stands for the default.
func effectiveLimit(own, def int) string {
	if own == 0 {
		return fmt.Sprintf("default (%d)", def)
	}
	return strconv.Itoa(own)
}

// eventsLimit is a grant's event allowance for the log; zero is none (there
// is no default allowance).
func eventsLimit(n int) string {
	if n == 0 {
		return "none"
	}
	return strconv.Itoa(n)
}

// limitDetail records a grant's own limit, or that the default applies.
func limitDetail(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}

// RevokeResult says what revoking an inviter did to their invites.
type RevokeResult struct {
	// Cancelled counts the pending invites cancelled.
	Cancelled int
	// StillValid counts those whose token the server still accepts for
	// now (revocation is retried by usage tracking).
	StillValid int
	// Unrevocable counts those (password reset links) whose token the
	// server refused to revoke: they work until they expire.
	Unrevocable int
}

// Revoke takes the right to invite away from target and cancels every
// invite of theirs still pending, at the server too. Running it again for
// someone already revoked cancels whatever is still pending.
func (gr *grants) Revoke(ctx context.Context, a Actor, target string) (RevokeResult, error) {
	var res RevokeResult
	if err := a.may(policy.ManageGrants); err != nil {
		return res, err
	}
	if gr.roles.IsAdmin(target) {
		return res, ErrTargetIsAdmin
	}
	// Everything below must happen even if the request runs out of time
	// half-way: a half-done revoke leaves an abuser's links working.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()

	granted, invs, err := gr.withdraw(wctx, a, target)
	if err != nil {
		return res, err
	}
	var pending []store.Invite
	for _, inv := range invs {
		if inv.State == store.StatePending {
			pending = append(pending, inv)
		}
	}
	if !granted && len(pending) == 0 {
		return res, ErrNotInviter
	}
	// Tokens already used get recorded as used, with a notice, first. An
	// invite a browser registration is using right now is waited for, so
	// its account is recorded; the wait is bounded, as a registration is.
	tally, err := gr.cancel.cancelMany(ctx, a.jid, pending, "inviter revoked", "revoke")
	res.Cancelled, res.StillValid, res.Unrevocable = tally.Cancelled, tally.StillValid, tally.Unrevocable
	if err != nil {
		return res, err
	}
	gr.log.InfoContext(ctx, "revoke", slog.String("jid", target), slog.String("by", a.jid),
		slog.Int("cancelled", res.Cancelled), slog.Int("still_valid", res.StillValid), slog.Int("unrevocable", res.Unrevocable))
	if granted {
		gr.notify(ctx, target, GrantRevoked{Domain: gr.domain, Cancelled: res.Cancelled})
	}
	return res, nil
}

// withdraw deletes target's grant, closes their event links and returns
// their invites, exclusive of admissions: an invite being minted for target
// right now is either stored before this (and returned, to be cancelled) or
// dropped (quotaGate.stillAdmitted). granted says a grant was deleted.
func (gr *grants) withdraw(ctx context.Context, a Actor, target string) (granted bool, invs []store.Invite, err error) {
	gr.gate.exclusive(func() {
		err = gr.store.DeleteGrant(ctx, target, store.AuditEntry{
			Time: gr.now().UTC(), Actor: a.jid, Action: ActionRevoke, Subject: target,
		})
		granted = err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("revoke: %w", err)
			return
		}
		gr.events.markEventsClosed(ctx, a.jid, target) // their invites are cancelled after
		invs, err = gr.store.InvitesByInviter(ctx, target)
		if err != nil {
			err = fmt.Errorf("revoke: list invites: %w", err)
		}
	})
	return granted, invs, err
}
