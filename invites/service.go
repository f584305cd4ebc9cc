package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// Signup configures account requests confirmed by mail (signup.go).
	Signup SignupOptions
	// Recovery configures password recovery by mail (recovery.go).
	Recovery RecoveryOptions
	// Alarms are the thresholds of the abuse alarms (alerts); zero values
	// take the defaults.
	Alarms AlarmOptions
	// ModuleSuspender, when set, suspends accounts through the server's
	// module (mod_invitebot's verbs); it is used while Module says the
	// module is loaded. Given apart from Module, which may be wrapped.
	ModuleSuspender Suspender
}

// Service carries out invite operations on behalf of Actors. It is the
// features composed (see the package comment); their exported methods are
// its API, promoted, so a front end need not know which feature does what.
type Service struct {
	*core
	*roles
	*pauseSwitch
	*minter
	*canceller
	*grants
	*eventLinks
	*requestDesk
	*mailVerifier
	*recovery
	*resetLinks
	*backups
	*registration
	*useLedger
	*tracker
	*serverModule
	*brancher
	*suspensions
	*treeLinks
	*alarmWatcher
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
	c := &core{store: o.Store, domain: o.Domain, now: o.Now, log: o.Log, observer: o.Observer, notifier: o.Notifier}
	rl := &roles{core: c}
	rl.SetAdmins(o.Admins)
	rl.SetLimits(o.Limits)
	module := newServerModule(c, o)
	uses := newUseLedger(c, module)
	rv := &revoker{core: c, registrar: o.Registrar, module: module}
	gate := newQuotaGate(c, rl)
	mt := &minter{core: c, issuer: o.Issuer, gate: gate, revoker: rv}
	desk := newRequestDesk(c, rl, mt, o.Requests)
	desk.verify = newMailVerifier(c, desk, mt, gate, o.Signup)
	tr := &tracker{core: c, registrar: o.Registrar, pace: newPacer(), uses: uses, module: module, revoker: rv, desk: desk}
	cn := &canceller{core: c, uses: uses, tracker: tr, revoker: rv}
	ev := &eventLinks{core: c, roles: rl, gate: gate, minter: mt, cancel: cn}
	rs := &resetLinks{core: c, issuer: o.Issuer, minter: mt, cancel: cn}
	rs.SetInviterResets(o.InviterResets)
	gr := &grants{core: c, roles: rl, gate: gate, events: ev, cancel: cn}
	br := &brancher{core: c, roles: rl}
	br.checker, _ = o.Issuer.(AccountChecker)
	c.watch = newAlarmWatcher(c, rl, gr, o.Alarms)
	return &Service{
		core:         c,
		roles:        rl,
		pauseSwitch:  &pauseSwitch{core: c},
		minter:       mt,
		canceller:    cn,
		grants:       gr,
		eventLinks:   ev,
		requestDesk:  desk,
		mailVerifier: desk.verify,
		recovery:     newRecovery(c, rl, rs, desk.verify, o.Recovery),
		resetLinks:   rs,
		backups:      &backups{core: c, opts: o.Backups},
		registration: &registration{core: c, registrar: o.Registrar, uses: uses, busy: make(map[string]bool)},
		useLedger:    uses,
		tracker:      tr,
		serverModule: module,
		brancher:     br,
		suspensions:  newSuspensions(c, rl, gr, br, module, o.ModuleSuspender),
		treeLinks:    newTreeLinks(c, rl, br),
		alarmWatcher: c.watch,
	}
}

type nopObserver struct{}

func (nopObserver) InviteCreated() {}
func (nopObserver) InviteDenied()  {}
func (nopObserver) InviteUsed()    {}

// Actor is someone the service acts for: a bare JID and the role it held
// when the request began. Only Service.Actor (roles.Actor) makes one, so the role is
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

// RecordRefusal writes a refused request to the log and the audit log.
// Front ends call it only when they actually answer the refusal, which they
// rate-limit, so a stranger flooding the bot cannot grow either log without
// bound. why names the command refused (the front end knows it; "no rights
// for grant").
func (s *Service) RecordRefusal(ctx context.Context, actor, why string) {
	s.logRefusal(ctx, actor, "command", why)
	s.audit(ctx, actor, ActionInviteRefuse, actor, why)
}
