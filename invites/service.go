// Package invites is the domain of invitebot: what an invite is, the
// operations every front end shares (create, list, cancel, grant, revoke,
// pause, audit), the abuse controls around them, usage tracking, and the
// Issuers that mint tokens on the home server. It knows nothing of chat
// text, forms or pages: it returns data and errors, and the front ends put
// them into words.
package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
	// ErrTargetIsAdmin means grant or revoke named an admin: admins may
	// always invite, from the configuration, so grants do not apply to
	// them (and revoking one must not cancel an admin's invites).
	ErrTargetIsAdmin = errors.New("that JID is an admin")
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
	ActionInviteUse    = "invite.use"
	ActionInviteExpire = "invite.expire"
	ActionTokenRevoked = "invite.token-revoked"
	ActionGrant        = "grant"
	ActionRevoke       = "revoke"
	ActionPause        = "pause"
	ActionResume       = "resume"
)

// systemActor is the actor recorded for what the bot does by itself.
const systemActor = "system"

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
	// Registrar reaches the server's client port, for registering
	// accounts with a token (browser registration) and checking tokens.
	Registrar Registrar
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the service's logs.
	Log *slog.Logger
	// Observer, when set, counts events.
	Observer Observer
	// Limits are the default invite limits for inviters.
	Limits policy.Limits
	// Notifier, when set, tells people what became of their invites and
	// grants.
	Notifier Notifier
	// Backups say where database backups go.
	Backups BackupOptions
	// InviterResets lets inviters make password reset links for accounts
	// their own invites created.
	InviterResets bool
	// Module, when set, is how the service finds and uses the server's
	// module (mod_invitebot on Prosody; module.go).
	Module ServerModule
	// Introduce welcomes each new account naming its inviter, and offers
	// the inviter the new account as a contact (invites.introduce).
	Introduce bool
	// Requests configure account requests; zero limits take the
	// defaults.
	Requests RequestOptions
}

// Service carries out invite operations on behalf of Actors.
type Service struct {
	store     *store.Store
	issuer    Issuer
	domain    string
	registrar Registrar
	now       func() time.Time
	log       *slog.Logger
	observer  Observer
	notifier  Notifier
	backups   BackupOptions
	// inviterResets: see Options.InviterResets; a reload may change it.
	inviterResets atomic.Bool
	// resets says whether the server offers password resets (detected
	// when the link comes up).
	resets atomic.Bool
	// requests configure account requests; intake counts the open ones
	// for the request page.
	requests RequestOptions
	intake   intakeCount

	// admins and limits change on a configuration reload, while requests
	// read them.
	admins atomic.Pointer[map[string]bool]
	limits atomic.Pointer[policy.Limits]

	// quotaMu makes quota checks and reservations atomic; inflight counts
	// invites being minted per inviter (and in all), so that concurrent
	// requests cannot overshoot a limit.
	quotaMu        sync.Mutex
	inflight       map[string]int
	inflightGlobal int

	// refusals bounds the audit entries refused requests write.
	refusals *refusalBudget

	// schedule orders usage tracking's token checks.
	schedule checkSchedule

	// regMu guards inRegistration: invites whose token a browser
	// registration is using right now, so that a second registration with
	// the same invite (a double click) fails at once instead of waiting.
	regMu          sync.Mutex
	inRegistration map[string]bool

	// locks serialises each invite's lifecycle: registration, cancel,
	// revoke and usage tracking take the invite's lock.
	locks inviteLocks

	// owedMu guards owed: browser registrations not recorded yet because
	// the store failed, by invite id (see owedUse).
	owedMu sync.Mutex
	owed   map[string]owedUse

	// srvmod is the use of mod_invitebot, when the server runs it.
	srvmod *serverModule
}

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Registrar == nil {
		o.Registrar = noRegistrar{}
	}
	s := &Service{store: o.Store, issuer: o.Issuer, domain: o.Domain,
		registrar: o.Registrar, now: o.Now, log: o.Log, observer: o.Observer, notifier: o.Notifier,
		backups:  o.Backups,
		inflight: make(map[string]int), inRegistration: make(map[string]bool), refusals: newRefusalBudget(o.Now),
		owed: make(map[string]owedUse)}
	s.SetAdmins(o.Admins)
	s.SetLimits(o.Limits)
	s.SetInviterResets(o.InviterResets)
	s.srvmod = newServerModule(o)
	s.requests = o.Requests
	if s.requests.ExpireAfter <= 0 {
		s.requests.ExpireAfter = DefaultRequestExpiry
	}
	if s.requests.MaxOpen <= 0 {
		s.requests.MaxOpen = DefaultMaxOpenRequests
	}
	return s
}

// SetInviterResets says whether inviters may make password reset links
// for accounts their invites created, as on a configuration reload.
func (s *Service) SetInviterResets(on bool) { s.inviterResets.Store(on) }

// SetAdmins replaces the admins (normalised bare JIDs), as on a
// configuration reload. Requests already running keep the role they began
// with.
func (s *Service) SetAdmins(admins map[string]bool) {
	cp := make(map[string]bool, len(admins))
	for k, v := range admins {
		cp[k] = v
	}
	s.admins.Store(&cp)
}

// SetLimits replaces the default invite limits, as on a configuration
// reload. Each limit left at zero takes its built-in default: a zero limit
// would refuse every invite.
func (s *Service) SetLimits(l policy.Limits) {
	if l.PerDay <= 0 {
		l.PerDay = policy.DefaultLimits.PerDay
	}
	if l.MaxPending <= 0 {
		l.MaxPending = policy.DefaultLimits.MaxPending
	}
	if l.GlobalPerDay <= 0 {
		l.GlobalPerDay = policy.DefaultLimits.GlobalPerDay
	}
	if l.EventMaxUses <= 0 {
		l.EventMaxUses = policy.DefaultLimits.EventMaxUses
	}
	s.limits.Store(&l)
}

type nopObserver struct{}

func (nopObserver) InviteCreated() {}
func (nopObserver) InviteDenied()  {}
func (nopObserver) InviteUsed()    {}

// Domain is the XMPP domain the invites create accounts on.
func (s *Service) Domain() string { return s.domain }

// DefaultLimits are the limits of inviters whose grant sets none.
func (s *Service) DefaultLimits() policy.Limits { return *s.limits.Load() }

// IsAdmin reports whether the bare JID is an admin. It reads only the
// configuration, so the read loop may call it to decide whose requests
// must never be turned away.
func (s *Service) IsAdmin(bare string) bool { return (*s.admins.Load())[bare] }

// Actor is someone the service acts for: a bare JID and the role it held
// when the request began. Only Service.Actor makes one, so the role is
// read once per request and a front end cannot claim a role it was not
// given.
type Actor struct {
	jid  string
	role policy.Role
}

// JID is the actor's normalised bare JID.
func (a Actor) JID() string { return a.jid }

// Role is what the actor is to the bot.
func (a Actor) Role() policy.Role { return a.role }

// may returns ErrForbidden unless the actor holds p.
func (a Actor) may(p policy.Permission) error {
	if !policy.Allows(a.role, p) {
		return ErrForbidden
	}
	return nil
}

// Actor looks up what the bare JID is to the bot.
func (s *Service) Actor(ctx context.Context, bare string) (Actor, error) {
	admins := *s.admins.Load()
	if admins[bare] {
		return Actor{jid: bare, role: policy.Admin}, nil
	}
	g, err := s.store.Grant(ctx, bare)
	switch {
	case err == nil:
		return Actor{jid: bare, role: policy.RoleOf(bare, admins, true, g.Requests)}, nil
	case errors.Is(err, store.ErrNotFound):
		return Actor{jid: bare, role: policy.Stranger}, nil
	default:
		return Actor{jid: bare, role: policy.Stranger}, fmt.Errorf("look up role: %w", err)
	}
}

// Create mints one single-use account invite for a and records it, with
// its audit entry, before returning it: a token is never handed out that the
// database does not hold. A token the server minted that is not handed
// back (the request gave up, the inviter was revoked or invites paused
// meanwhile, the store failed) is revoked at the server (orphan.go).
func (s *Service) Create(ctx context.Context, a Actor) (Invite, error) {
	if err := a.may(policy.CreateInvite); err != nil {
		s.observer.InviteDenied()
		return Invite{}, err
	}
	return s.mintAndRecord(ctx, a, s.issuer.Mint, minting{action: ActionInviteCreate})
}

// minting says what kind of invite mintAndRecord makes and how it is
// recorded.
type minting struct {
	// action is the audit action of the new invite.
	action string
	// resetFor names the account of a password reset; empty for an
	// account invite.
	resetFor string
	// detail is the audit entry's detail; resetFor when empty.
	detail string
	// record stores the invite with its audit entry; nil means
	// store.AddInvite. An approval stores it together with the answer to
	// the request, and may refuse (ErrRequestAnswered); an event link's
	// invite names the link, and is refused if it closed meanwhile
	// (ErrEventClosed).
	record func(ctx context.Context, inv store.Invite, e store.AuditEntry) (store.Invite, error)
	// event names the event link handing the invite out; empty otherwise.
	// A minted token that is not handed out is recorded cancelled with it,
	// so that it counts where the invite would have.
	event string
	// admit holds the invite's place under the limits; nil means the
	// pause switch and a's quotas (admitCreate). An event link's visitor
	// is admitted under the global limit only (admitEventUse).
	admit func(ctx context.Context) (*reservation, error)
}

// mintAndRecord admits one token for a under the pause switch and the
// quotas, has mint make it at the server, and records it as an invite of
// the kind m says, with its audit entry, before returning it.
func (s *Service) mintAndRecord(ctx context.Context, a Actor, mint func(context.Context) (Minted, error), m minting) (Invite, error) {
	resetFor := m.resetFor
	if m.record == nil {
		m.record = s.store.AddInvite
	}
	if m.detail == "" {
		m.detail = resetFor
	}
	if m.admit == nil {
		m.admit = func(ctx context.Context) (*reservation, error) { return s.admitCreate(ctx, a) }
	}
	held, err := m.admit(ctx)
	if err != nil {
		return Invite{}, err
	}
	// Settling twice is harmless; this covers a panicking Issuer.
	defer held.settle(func() error { return nil })
	// Not bounded by the request: a request giving up while the server
	// mints would leave a token that nobody ever learns of. The Issuer
	// bounds the wait itself.
	minted, err := mint(context.WithoutCancel(ctx))
	if err != nil {
		return Invite{}, fmt.Errorf("create invite: %w", err)
	}
	// The token exists at the server now: record it even if the request's
	// own time ran out while minting.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	now := s.now().UTC()
	template := store.Invite{
		Token:      minted.Token,
		URI:        minted.URI,
		LandingURL: minted.LandingURL,
		Domain:     s.domain,
		Inviter:    a.jid,
		Created:    now,
		Expires:    minted.Expires,
		State:      store.StatePending,
		ResetFor:   resetFor,
		Event:      m.event,
	}
	var inv store.Invite
	err = held.settle(func() error {
		// Revoke and pause may have happened while the server minted;
		// both serialise with this under quotaMu. The token is then
		// revoked instead of handed out.
		if err := s.stillAdmitted(wctx, a); err != nil {
			return err
		}
		var err error
		inv, err = m.record(wctx, template, store.AuditEntry{Time: now, Actor: a.jid, Action: m.action, Detail: m.detail})
		return err
	})
	if err != nil {
		// Revoked, paused, answered by someone else, event link closed
		// meanwhile, or the store failed: the token is revoked.
		s.dropMinted(ctx, a, template, err)
		var paused *PausedError
		if errors.Is(err, ErrForbidden) || errors.As(err, &paused) || errors.Is(err, ErrRequestAnswered) || errors.Is(err, ErrEventClosed) {
			return Invite{}, err
		}
		return Invite{}, fmt.Errorf("create invite: store: %w", err)
	}
	if err := ctx.Err(); err != nil {
		// Nobody is waiting to hand the invite out any more.
		s.abandonCreated(ctx, inv)
		return Invite{}, fmt.Errorf("create invite: %w", err)
	}
	s.observer.InviteCreated()
	s.log.InfoContext(ctx, "invite created", slog.String("id", inv.ID), slog.String("inviter", a.jid),
		slog.Time("expires", inv.Expires), slog.String("reset_for", resetFor), slog.String("event", inv.Event))
	return viewOf(inv), nil
}

// storeWriteTimeout bounds a database write that must happen even though
// the request that caused it has run out of time.
const storeWriteTimeout = 5 * time.Second

// Lookup returns the invite with that id, for showing it to whoever holds
// the link (the landing page). The id is the secret here: 80 random bits.
func (s *Service) Lookup(ctx context.Context, id string) (Invite, error) {
	inv, err := s.record(ctx, id)
	if err != nil {
		return Invite{}, err
	}
	return viewOf(inv), nil
}

// record reads the stored invite with that id.
func (s *Service) record(ctx context.Context, id string) (store.Invite, error) {
	if !ValidID(id) {
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

// List returns the invites issued by whose (a's own when empty), newest
// first. Listing someone else's takes policy.ListAnyInvites.
func (s *Service) List(ctx context.Context, a Actor, whose string) ([]Invite, error) {
	perm := policy.ListInvites
	if whose == "" {
		whose = a.jid
	} else if whose != a.jid {
		perm = policy.ListAnyInvites
	}
	if err := a.may(perm); err != nil {
		return nil, err
	}
	invs, err := s.store.InvitesByInviter(ctx, whose)
	if err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	return viewsOf(invs), nil
}

// Cancel marks a pending invite cancelled and revokes its token at the
// server. Inviters may cancel their own, admins any (policy.CanCancel).
// A browser registration with the invite under way finishes first: Cancel
// waits for it (within ctx), then reports ErrNotPending with the invite
// used, and by whom.
func (s *Service) Cancel(ctx context.Context, a Actor, id string) (Invite, error) {
	if err := a.may(policy.CancelInvite); err != nil {
		return Invite{}, err
	}
	inv, err := s.record(ctx, id)
	if err != nil {
		return Invite{}, err
	}
	if !policy.CanCancel(a.role, a.jid, inv.Inviter) {
		return Invite{}, ErrNoSuchInvite
	}
	if inv.State != store.StatePending {
		return viewOf(inv), ErrNotPending
	}
	unlock, err := s.lockInvite(ctx, id)
	if err != nil {
		return Invite{}, fmt.Errorf("cancel invite: %w", err)
	}
	checks := &tokenChecks{s: s}
	cancelled, err := s.cancelLocked(ctx, checks, a.jid, id, "")
	unlock()
	checks.close()
	if errors.Is(err, ErrNotPending) {
		return viewOf(cancelled), err
	} else if err != nil {
		return Invite{}, err
	}
	s.log.InfoContext(ctx, "invite cancelled", slog.String("id", id), slog.String("by", a.jid))
	done := viewOf(s.revokeCancelled(ctx, a.jid, cancelled))
	if cancelled.Inviter != a.jid {
		// Someone else's invite: its inviter would otherwise find it
		// cancelled with no word why.
		s.notify(ctx, cancelled.Inviter, InviteCancelled{Invite: done, By: a.jid})
	}
	return done, nil
}

// cancelLocked cancels invite id, whose lock the caller holds. An invite no
// longer pending, or whose token the server already refuses (then recorded
// as used or expired: a used token is a used invite, not a cancelled one,
// so the account it created is not hidden), gives ErrNotPending with the
// invite as it now stands.
func (s *Service) cancelLocked(ctx context.Context, checks *tokenChecks, actor, id, detail string) (store.Invite, error) {
	inv, err := s.record(ctx, id)
	if err != nil {
		return store.Invite{}, err
	}
	if inv.State != store.StatePending {
		return inv, ErrNotPending
	}
	if checks.settleIfSpent(ctx, inv) {
		if inv, err = s.record(ctx, id); err != nil {
			return store.Invite{}, err
		}
		return inv, ErrNotPending
	}
	// The token check is done and decided the matter: write it even if the
	// request ran out of time meanwhile.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	cancelled, err := s.store.SetInviteState(wctx, id, store.StateCancelled, "", store.AuditEntry{
		Time: s.now().UTC(), Actor: actor, Action: ActionInviteCancel, Subject: id, Detail: detail,
	})
	if err != nil {
		return store.Invite{}, fmt.Errorf("cancel invite: %w", err)
	}
	return cancelled, nil
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
	// Events, when set, is the largest cap the grantee may give an event
	// link, zero taking the allowance away; nil keeps what the grant said
	// (none, for a new one). Links already made are not touched: they
	// close at their expiry, or with CloseEvent.
	Events *int
}

// Grant gives target the right to invite. Granting someone who already
// holds a grant updates it: limits and note given now replace the old ones
// (a zero limit is the default again), those left out are kept. It returns
// the grant now in force and whether one existed before.
func (s *Service) Grant(ctx context.Context, a Actor, target string, o GrantOptions) (g Grant, updated bool, err error) {
	if err := a.may(policy.ManageGrants); err != nil {
		return Grant{}, false, err
	}
	if s.IsAdmin(target) {
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
	old, err := s.store.Grant(ctx, target)
	switch {
	case err == nil:
		rec, updated = old, true
	case !errors.Is(err, store.ErrNotFound):
		return Grant{}, false, fmt.Errorf("grant: %w", err)
	}
	now := s.now().UTC()
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
	err = s.store.PutGrant(ctx, rec,
		store.AuditEntry{Time: now, Actor: a.jid, Action: ActionGrant, Subject: target, Detail: grantDetail(rec, updated, o.Requests != nil, o.Events != nil)})
	if err != nil {
		return Grant{}, false, fmt.Errorf("grant: %w", err)
	}
	s.log.InfoContext(ctx, "grant", slog.String("jid", target), slog.String("by", a.jid),
		slog.Int("per_day", rec.PerDay), slog.Int("max_pending", rec.MaxPending), slog.Int("events", rec.Events), slog.Bool("updated", updated))
	switch {
	case !updated:
		s.notify(ctx, target, GrantGiven{Domain: s.domain, Requests: rec.Requests})
	case newlyApprover:
		s.notify(ctx, target, RequestsGranted{Domain: s.domain})
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
}

// Revoke takes the right to invite away from target and cancels every
// invite of theirs still pending, at the server too. Running it again for
// someone already revoked cancels whatever is still pending.
func (s *Service) Revoke(ctx context.Context, a Actor, target string) (RevokeResult, error) {
	var res RevokeResult
	if err := a.may(policy.ManageGrants); err != nil {
		return res, err
	}
	if s.IsAdmin(target) {
		return res, ErrTargetIsAdmin
	}
	// Everything below must happen even if the request runs out of time
	// half-way: a half-done revoke leaves an abuser's links working.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()

	// Under quotaMu, so that an invite being minted for target right now
	// is either stored before this (and cancelled below) or dropped.
	s.quotaMu.Lock()
	err := s.store.DeleteGrant(wctx, target, store.AuditEntry{
		Time: s.now().UTC(), Actor: a.jid, Action: ActionRevoke, Subject: target,
	})
	granted := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.quotaMu.Unlock()
		return res, fmt.Errorf("revoke: %w", err)
	}
	s.markEventsClosed(wctx, a.jid, target) // their invites are cancelled below
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
	// Tokens already used get recorded as used, with a notice, first. An
	// invite a browser registration is using right now is waited for, so
	// its account is recorded; the wait is bounded, as a registration is.
	res.Cancelled, res.StillValid, err = s.cancelMany(ctx, a.jid, pending, s.revokeOne, "revoke")
	if err != nil {
		return res, err
	}
	s.log.InfoContext(ctx, "revoke", slog.String("jid", target), slog.String("by", a.jid),
		slog.Int("cancelled", res.Cancelled), slog.Int("still_valid", res.StillValid))
	if granted {
		s.notify(ctx, target, GrantRevoked{Domain: s.domain, Cancelled: res.Cancelled})
	}
	return res, nil
}

// cancelMany cancels the pending invites among invs with cancel (each under
// its lock, waited for within lockWait), then makes as many of their tokens
// unusable at the server as revokeBudget allows; usage tracking retries the
// rest. It goes on past a failing invite, since every one left working is
// a working token, and returns the first failure, named after what.
func (s *Service) cancelMany(ctx context.Context, actor string, invs []store.Invite,
	cancel func(context.Context, *tokenChecks, string, string) (store.Invite, error), what string) (cancelledN, stillValid int, err error) {
	checks := &tokenChecks{s: s}
	defer checks.close()
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), lockWait)
	defer lcancel()
	var cancelled []store.Invite
	var failed error
	for _, inv := range invs {
		if inv.State != store.StatePending {
			continue
		}
		c, err := cancel(lctx, checks, actor, inv.ID)
		switch {
		case err == nil:
			cancelled = append(cancelled, c)
		case errors.Is(err, ErrNotPending):
		case failed == nil:
			failed = fmt.Errorf("%s: cancel %s: %w", what, inv.ID, err)
		}
	}
	// Consuming tokens takes a few c2s round trips each. Within a bounded
	// time, do as many as possible.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), revokeBudget)
	defer rcancel()
	for _, inv := range cancelled {
		if rctx.Err() != nil || !s.revokeCancelled(rctx, actor, inv).Revoked {
			stillValid++
		}
	}
	return len(cancelled), stillValid, failed
}

// revokeBudget bounds how long revoke spends consuming tokens before it
// answers; the rest are retried by usage tracking.
const revokeBudget = 20 * time.Second

// revokeOne cancels one of a revoked inviter's invites under its lock.
func (s *Service) revokeOne(ctx context.Context, checks *tokenChecks, actor, id string) (store.Invite, error) {
	unlock, err := s.lockInvite(ctx, id)
	if err != nil {
		return store.Invite{}, err
	}
	defer unlock()
	return s.cancelLocked(ctx, checks, actor, id, "inviter revoked")
}

// Inviters lists every grant, sorted by JID.
func (s *Service) Inviters(ctx context.Context, a Actor) ([]Grant, error) {
	if err := a.may(policy.ListInviters); err != nil {
		return nil, err
	}
	recs, err := s.store.Grants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list inviters: %w", err)
	}
	grants := make([]Grant, len(recs))
	for i, g := range recs {
		grants[i] = grantOf(g)
	}
	return grants, nil
}

// Audit returns the last n audit entries, about one JID or invite id when
// about is not empty.
func (s *Service) Audit(ctx context.Context, a Actor, about string, n int) ([]AuditEntry, error) {
	if err := a.may(policy.ReadAudit); err != nil {
		return nil, err
	}
	recs, err := s.store.Audit(ctx, about, n)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	entries := make([]AuditEntry, len(recs))
	for i, e := range recs {
		entries[i] = auditOf(e)
	}
	return entries, nil
}

// WhoInvited returns the invites that created account (known for accounts
// registered in the browser, and for every account when the server runs
// mod_invitebot).
func (s *Service) WhoInvited(ctx context.Context, a Actor, account string) ([]Invite, error) {
	if err := a.may(policy.ReadAudit); err != nil {
		return nil, err
	}
	invs, err := s.store.InvitesUsedBy(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("who invited: %w", err)
	}
	// A used password reset link names the account too, but did not
	// invite it.
	invs = slices.DeleteFunc(invs, func(inv store.Invite) bool { return inv.ResetFor != "" })
	return viewsOf(invs), nil
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
