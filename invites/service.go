// Package invites holds the invite operations (create, list, cancel, grant,
// revoke) that every front end shares, and the Issuers that mint tokens on
// the home server. It knows nothing of chat text or forms: the bot renders
// what these methods return.
package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites/ibr"
	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Errors the operations return; front ends turn them into short replies.
var (
	// ErrForbidden means the actor's role does not allow the operation.
	ErrForbidden = errors.New("not allowed")
	// ErrNoSuchInvite means there is no invite with that id that the actor
	// may see. Foreign and missing invites look alike on purpose.
	ErrNoSuchInvite = errors.New("no such invite")
	// ErrNotPending means the invite was already used, cancelled or expired.
	ErrNotPending = errors.New("invite is no longer pending")
	// ErrNotInviter means revoke named a JID that holds no grant.
	ErrNotInviter = errors.New("not an inviter")
	// ErrRegistrationInProgress means the invite's token is being used by
	// another registration right now.
	ErrRegistrationInProgress = errors.New("a registration with this invite is in progress")
)

// Audit actions written by this package. They are the vocabulary admins
// search the audit log with, so they are stable names.
const (
	ActionInviteCreate = "invite.create"
	ActionInviteCancel = "invite.cancel"
	ActionInviteRefuse = "invite.refuse"
	ActionGrant        = "grant"
	ActionRevoke       = "revoke"
)

// Observer is told about invite events, for metrics. Nil means nobody
// listens.
type Observer interface {
	InviteCreated()
	InviteDenied()
	InviteUsed()
}

// Options wire a Service.
type Options struct {
	// Store holds invites, grants and the audit log.
	Store *store.Store
	// Issuer mints tokens on the server.
	Issuer Issuer
	// Domain is the XMPP domain invites create accounts on.
	Domain string
	// Admins holds normalised bare JIDs.
	Admins map[string]bool
	// C2S reaches the server's client port, for registering accounts with
	// a token (browser registration).
	C2S ibr.Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the service's logs.
	Log *slog.Logger
	// Observer, when set, counts events.
	Observer Observer
	// Limits are the default invite limits for inviters.
	Limits policy.Limits
	// Notifier, when set, tells inviters what became of their invites.
	Notifier Notifier
}

// Service carries out invite operations on behalf of bare JIDs.
type Service struct {
	store    *store.Store
	issuer   Issuer
	domain   string
	admins   map[string]bool
	c2s      ibr.Config
	now      func() time.Time
	log      *slog.Logger
	observer Observer
	limits   policy.Limits
	notifier Notifier

	// quotaMu makes quota checks and reservations atomic; inflight counts
	// invites being minted per inviter (and in all), so that concurrent
	// requests cannot overshoot a limit.
	quotaMu        sync.Mutex
	inflight       map[string]int
	inflightGlobal int

	// regMu guards inRegistration: invites whose token a browser
	// registration is using right now, which usage tracking leaves alone.
	regMu          sync.Mutex
	inRegistration map[string]bool
}

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	// Each limit left at zero takes its default: a zero limit would refuse
	// every invite.
	if o.Limits.PerDay <= 0 {
		o.Limits.PerDay = policy.DefaultLimits.PerDay
	}
	if o.Limits.MaxPending <= 0 {
		o.Limits.MaxPending = policy.DefaultLimits.MaxPending
	}
	if o.Limits.GlobalPerDay <= 0 {
		o.Limits.GlobalPerDay = policy.DefaultLimits.GlobalPerDay
	}
	return &Service{store: o.Store, issuer: o.Issuer, domain: o.Domain, admins: o.Admins,
		c2s: o.C2S, now: o.Now, log: o.Log, observer: o.Observer, limits: o.Limits, notifier: o.Notifier,
		inflight: make(map[string]int), inRegistration: make(map[string]bool)}
}

func (s *Service) registering(id string) bool {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	return s.inRegistration[id]
}

type nopObserver struct{}

func (nopObserver) InviteCreated() {}
func (nopObserver) InviteDenied()  {}
func (nopObserver) InviteUsed()    {}

// Domain is the XMPP domain the invites create accounts on.
func (s *Service) Domain() string { return s.domain }

// Role looks up what actor is to the bot.
func (s *Service) Role(ctx context.Context, actor string) (policy.Role, error) {
	if s.admins[actor] {
		return policy.Admin, nil
	}
	_, err := s.store.Grant(ctx, actor)
	switch {
	case err == nil:
		return policy.RoleOf(actor, s.admins, true), nil
	case errors.Is(err, store.ErrNotFound):
		return policy.RoleOf(actor, s.admins, false), nil
	default:
		return policy.Stranger, fmt.Errorf("look up role: %w", err)
	}
}

// authorize returns the actor's role, or ErrForbidden when it lacks p.
func (s *Service) authorize(ctx context.Context, actor string, p policy.Permission) (policy.Role, error) {
	role, err := s.Role(ctx, actor)
	if err != nil {
		return role, err
	}
	if !policy.Allows(role, p) {
		return role, ErrForbidden
	}
	return role, nil
}

// Create mints one single-use account invite for actor and records it, with
// its audit entry, before returning it: a token is never handed out that the
// database does not hold.
func (s *Service) Create(ctx context.Context, actor string) (store.Invite, error) {
	role, err := s.authorize(ctx, actor, policy.CreateInvite)
	if err != nil {
		if errors.Is(err, ErrForbidden) {
			s.observer.InviteDenied()
		}
		return store.Invite{}, err
	}
	held, err := s.admitCreate(ctx, actor, role)
	if err != nil {
		return store.Invite{}, err
	}
	// Settling twice is harmless; this covers a panicking Issuer.
	defer held.settle(func() error { return nil })
	minted, err := s.issuer.Mint(ctx)
	if err != nil {
		return store.Invite{}, fmt.Errorf("create invite: %w", err)
	}
	// The token exists at the server now: record it even if the request's
	// own time ran out while minting.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	now := s.now().UTC()
	var inv store.Invite
	err = held.settle(func() error {
		// Revoke and pause may have happened while the server minted;
		// both serialise with this under quotaMu. The token was never
		// shown to anyone, so dropping it leaves nothing usable behind.
		if err := s.stillAdmitted(wctx, actor, role); err != nil {
			return err
		}
		var err error
		inv, err = s.store.AddInvite(wctx, store.Invite{
			Token:      minted.Token,
			URI:        minted.URI,
			LandingURL: minted.LandingURL,
			Domain:     s.domain,
			Inviter:    actor,
			Created:    now,
			Expires:    minted.Expires,
			State:      store.StatePending,
		}, store.AuditEntry{Time: now, Actor: actor, Action: ActionInviteCreate})
		return err
	})
	var paused *PausedError
	if errors.Is(err, ErrForbidden) || errors.As(err, &paused) {
		s.log.InfoContext(ctx, "minted invite dropped: revoked or paused meanwhile", slog.String("inviter", actor))
		return store.Invite{}, err
	}
	if err != nil {
		// The server holds a token nobody will ever see; it expires there.
		s.log.ErrorContext(ctx, "minted invite could not be stored",
			slog.String("inviter", actor), slog.String("token", RedactToken(minted.Token)), slog.Any("err", err))
		return store.Invite{}, fmt.Errorf("create invite: store: %w", err)
	}
	s.observer.InviteCreated()
	s.log.InfoContext(ctx, "invite created", slog.String("id", inv.ID), slog.String("inviter", actor),
		slog.Time("expires", inv.Expires))
	return inv, nil
}

// storeWriteTimeout bounds a database write that must happen even though
// the request that caused it has run out of time.
const storeWriteTimeout = 5 * time.Second

// Lookup returns the invite with that id, for showing it to whoever holds
// the link (the landing page). The id is the secret here: 80 random bits.
func (s *Service) Lookup(ctx context.Context, id string) (store.Invite, error) {
	if !store.ValidID(id) {
		return store.Invite{}, ErrNoSuchInvite
	}
	inv, err := s.store.Invite(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Invite{}, ErrNoSuchInvite
	} else if err != nil {
		return store.Invite{}, fmt.Errorf("look up invite: %w", err)
	}
	return inv, nil
}

// ActionInviteUse is the audit action for an invite that created an account.
const ActionInviteUse = "invite.use"

// RegisterAccount creates username@domain with the invite's token over the
// server's client port, then marks the invite used by that account. The
// password only passes through: it is neither logged nor stored.
func (s *Service) RegisterAccount(ctx context.Context, id, username, password string) (jid.JID, error) {
	inv, err := s.Lookup(ctx, id)
	if err != nil {
		return jid.JID{}, err
	}
	s.regMu.Lock()
	busy := s.inRegistration[id]
	s.inRegistration[id] = true
	s.regMu.Unlock()
	if busy {
		return jid.JID{}, ErrRegistrationInProgress
	}
	defer func() {
		s.regMu.Lock()
		delete(s.inRegistration, id)
		s.regMu.Unlock()
	}()
	if inv.State != store.StatePending {
		return jid.JID{}, ErrNotPending
	}
	if !inv.Expires.IsZero() && !s.now().Before(inv.Expires) {
		return jid.JID{}, ErrNotPending
	}
	account, err := ibr.Register(ctx, s.c2s, inv.Token, username, password)
	if err != nil {
		if errors.Is(err, ibr.ErrTokenRejected) {
			// The server says the token is gone although our record says
			// pending: it was used elsewhere. Usage tracking will record
			// it; the visitor just learns the invite is spent.
			return jid.JID{}, ErrNotPending
		}
		return jid.JID{}, fmt.Errorf("register account: %w", err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	_, err = s.store.SetInviteState(wctx, id, store.StateUsed, account.String(), store.AuditEntry{
		Time: s.now().UTC(), Actor: account.String(), Action: ActionInviteUse, Subject: id,
		Detail: "registered in the browser; invited by " + inv.Inviter,
	})
	if err != nil {
		// The account exists; only our record lags (or usage tracking
		// got there first and told the inviter). Say so in the log, but do
		// not tell the new user their account failed.
		s.log.ErrorContext(ctx, "account registered but invite not marked used",
			slog.String("id", id), slog.String("account", account.String()), slog.Any("err", err))
	} else {
		s.observer.InviteUsed()
		s.notify(ctx, inv.Inviter, fmt.Sprintf("Your invite %s from %s was used: %s joined.",
			inv.ID, inv.Created.UTC().Format("2006-01-02 15:04 UTC"), account))
	}
	s.log.InfoContext(ctx, "account registered with invite", slog.String("id", id),
		slog.String("account", account.String()), slog.String("inviter", inv.Inviter))
	return account, nil
}

// List returns the invites issued by whose (actor's own when empty),
// newest first. Only admins may list someone else's.
func (s *Service) List(ctx context.Context, actor, whose string) ([]store.Invite, error) {
	perm := policy.ListInvites
	if whose == "" {
		whose = actor
	} else if whose != actor {
		perm = policy.ListAnyInvites
	}
	if _, err := s.authorize(ctx, actor, perm); err != nil {
		return nil, err
	}
	invs, err := s.store.InvitesByInviter(ctx, whose)
	if err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	return invs, nil
}

// Cancel marks a pending invite cancelled. Inviters may cancel their own,
// admins any.
func (s *Service) Cancel(ctx context.Context, actor, id string) (store.Invite, error) {
	role, err := s.authorize(ctx, actor, policy.CancelInvite)
	if err != nil {
		return store.Invite{}, err
	}
	inv, err := s.Lookup(ctx, id)
	if err != nil {
		return store.Invite{}, err
	}
	if !policy.CanCancel(role, actor, inv.Inviter) {
		return store.Invite{}, ErrNoSuchInvite
	}
	if inv.State != store.StatePending {
		return inv, ErrNotPending
	}
	// A token already used at the server is a used invite, not a cancelled
	// one: record it as such, so the account it created is not hidden.
	if live := s.settleUsed(ctx, []store.Invite{inv}); len(live) == 0 {
		inv, _ = s.Lookup(ctx, id)
		return inv, ErrNotPending
	}
	cancelled, err := s.store.SetInviteState(ctx, id, store.StateCancelled, "", store.AuditEntry{
		Time: s.now().UTC(), Actor: actor, Action: ActionInviteCancel, Subject: id,
	})
	switch {
	case errors.Is(err, store.ErrNotPending):
		// Settled meanwhile; report what it became.
		inv, _ = s.Lookup(ctx, id)
		return inv, ErrNotPending
	case err != nil:
		return store.Invite{}, fmt.Errorf("cancel invite: %w", err)
	}
	s.log.InfoContext(ctx, "invite cancelled", slog.String("id", id), slog.String("by", actor))
	return s.revokeCancelled(ctx, actor, cancelled), nil
}

// revokeCancelled makes a just-cancelled invite's token unusable at the
// server. A failure is logged and left to usage tracking to retry; the
// returned invite's Revoked field tells the caller which happened.
func (s *Service) revokeCancelled(ctx context.Context, actor string, inv store.Invite) store.Invite {
	if err := s.revokeToken(ctx, actor, inv); err != nil {
		s.log.WarnContext(ctx, "cancelled invite's token still valid at the server; will retry",
			slog.String("id", inv.ID), slog.Any("err", err))
		return inv
	}
	inv.Revoked = true
	return inv
}

// GrantOptions are the optional parts of a grant.
type GrantOptions struct {
	// Note says why, for the admins who read the list later.
	Note string
	// PerDay and MaxPending override the default limits when non-zero.
	PerDay, MaxPending int
}

// Grant gives target the right to invite. Granting someone who already
// holds a grant updates it: limits and note given now replace the old ones,
// those left out are kept. It reports whether a grant existed.
func (s *Service) Grant(ctx context.Context, actor, target string, o GrantOptions) (updated bool, err error) {
	if _, err := s.authorize(ctx, actor, policy.ManageGrants); err != nil {
		return false, err
	}
	g := store.Grant{JID: target}
	old, err := s.store.Grant(ctx, target)
	switch {
	case err == nil:
		g, updated = old, true
	case !errors.Is(err, store.ErrNotFound):
		return false, fmt.Errorf("grant: %w", err)
	}
	now := s.now().UTC()
	g.GrantedBy, g.GrantedAt = actor, now
	if o.Note != "" {
		g.Note = o.Note
	}
	if o.PerDay > 0 {
		g.PerDay = o.PerDay
	}
	if o.MaxPending > 0 {
		g.MaxPending = o.MaxPending
	}
	detail := fmt.Sprintf("per-day %s, pending %s", limitText(g.PerDay), limitText(g.MaxPending))
	if updated {
		detail = "updated; " + detail
	}
	if g.Note != "" {
		detail += "; " + g.Note
	}
	err = s.store.PutGrant(ctx, g,
		store.AuditEntry{Time: now, Actor: actor, Action: ActionGrant, Subject: target, Detail: detail})
	if err != nil {
		return false, fmt.Errorf("grant: %w", err)
	}
	s.log.InfoContext(ctx, "grant", slog.String("jid", target), slog.String("by", actor),
		slog.Int("per_day", g.PerDay), slog.Int("max_pending", g.MaxPending), slog.Bool("updated", updated))
	if !updated {
		s.notify(ctx, target, "You may now create account invites for "+s.domain+": send invite to me. Send help for more.")
	}
	return updated, nil
}

// GrantOf returns target's grant, for admins.
func (s *Service) GrantOf(ctx context.Context, actor, target string) (store.Grant, error) {
	if _, err := s.authorize(ctx, actor, policy.ListInviters); err != nil {
		return store.Grant{}, err
	}
	g, err := s.store.Grant(ctx, target)
	if err != nil {
		return store.Grant{}, fmt.Errorf("grant of %s: %w", target, err)
	}
	return g, nil
}

// limitText shows a grant's own limit, or that the default applies.
func limitText(n int) string {
	if n == 0 {
		return "default"
	}
	return fmt.Sprint(n)
}

// RevokeResult says what revoking an inviter did to their invites.
type RevokeResult struct {
	// Cancelled counts the pending invites cancelled.
	Cancelled int
	// StillValid counts those whose token the server still accepts for
	// now (revocation is retried by usage tracking).
	StillValid int
}

// Revoke takes the right to invite away from target and cancels every
// invite of theirs still pending, at the server too. Running it again for
// someone already revoked cancels whatever is still pending.
func (s *Service) Revoke(ctx context.Context, actor, target string) (RevokeResult, error) {
	var res RevokeResult
	if _, err := s.authorize(ctx, actor, policy.ManageGrants); err != nil {
		return res, err
	}
	// Everything below must happen even if the request runs out of time
	// half-way: a half-done revoke leaves an abuser's links working.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()

	// Under quotaMu, so that an invite being minted for target right now
	// is either stored before this (and cancelled below) or dropped.
	s.quotaMu.Lock()
	err := s.store.DeleteGrant(wctx, target, store.AuditEntry{
		Time: s.now().UTC(), Actor: actor, Action: ActionRevoke, Subject: target,
	})
	granted := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.quotaMu.Unlock()
		return res, fmt.Errorf("revoke: %w", err)
	}
	invs, err := s.store.InvitesByInviter(wctx, target)
	s.quotaMu.Unlock()
	if err != nil {
		return res, fmt.Errorf("revoke: list invites: %w", err)
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
	// Tokens already used get recorded as used, with a notice, first.
	pending = s.settleUsed(ctx, pending)
	var cancelled []store.Invite
	for _, inv := range pending {
		c, err := s.store.SetInviteState(wctx, inv.ID, store.StateCancelled, "", store.AuditEntry{
			Time: s.now().UTC(), Actor: actor, Action: ActionInviteCancel, Subject: inv.ID, Detail: "inviter revoked",
		})
		if errors.Is(err, store.ErrNotPending) {
			continue
		} else if err != nil {
			return res, fmt.Errorf("revoke: cancel %s: %w", inv.ID, err)
		}
		cancelled = append(cancelled, c)
	}
	res.Cancelled = len(cancelled)
	// Consuming tokens takes a few c2s round trips each. Within a bounded
	// time, do as many as possible; usage tracking retries the rest.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), revokeBudget)
	defer rcancel()
	for _, inv := range cancelled {
		if rctx.Err() != nil || !s.revokeCancelled(rctx, actor, inv).Revoked {
			res.StillValid++
		}
	}
	s.log.InfoContext(ctx, "revoke", slog.String("jid", target), slog.String("by", actor),
		slog.Int("cancelled", res.Cancelled), slog.Int("still_valid", res.StillValid))
	if granted {
		s.notify(ctx, target, fmt.Sprintf("Your right to create invites for %s was revoked; %d pending invite(s) of yours were cancelled.",
			s.domain, res.Cancelled))
	}
	return res, nil
}

// revokeBudget bounds how long revoke spends consuming tokens before it
// answers; the rest are retried by usage tracking.
const revokeBudget = 20 * time.Second

// Inviters lists every grant, sorted by JID.
func (s *Service) Inviters(ctx context.Context, actor string) ([]store.Grant, error) {
	if _, err := s.authorize(ctx, actor, policy.ListInviters); err != nil {
		return nil, err
	}
	grants, err := s.store.Grants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list inviters: %w", err)
	}
	return grants, nil
}

// Audit returns the last n audit entries, about one JID or invite id when
// about is not empty.
func (s *Service) Audit(ctx context.Context, actor, about string, n int) ([]store.AuditEntry, error) {
	if _, err := s.authorize(ctx, actor, policy.ReadAudit); err != nil {
		return nil, err
	}
	entries, err := s.store.Audit(ctx, about, n)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return entries, nil
}

// WhoInvited returns the invites that created account (known for accounts
// registered in the browser).
func (s *Service) WhoInvited(ctx context.Context, actor, account string) ([]store.Invite, error) {
	if _, err := s.authorize(ctx, actor, policy.ReadAudit); err != nil {
		return nil, err
	}
	invs, err := s.store.InvitesUsedBy(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("who invited: %w", err)
	}
	return invs, nil
}

// RecordRefusal writes a refused request to the audit log. Front ends call
// it only when they actually answer the refusal, which they rate-limit, so a
// stranger flooding the bot cannot grow the log without bound.
func (s *Service) RecordRefusal(ctx context.Context, actor, why string) {
	s.audit(ctx, actor, ActionInviteRefuse, actor, why)
}

// audit records a decision that changes no other data. A failure is logged,
// not returned: the caller's answer does not depend on it.
func (s *Service) audit(ctx context.Context, actor, action, subject, detail string) {
	err := s.store.AppendAudit(ctx, store.AuditEntry{
		Time: s.now().UTC(), Actor: actor, Action: action, Subject: subject, Detail: detail,
	})
	if err != nil {
		s.log.ErrorContext(ctx, "audit append failed", slog.String("action", action), slog.Any("err", err))
	}
}
