package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Suspending a branch: the inviter loses the right to invite (their
// pending invites cancelled, their event links closed, the approved
// requests not yet used with them), and the accounts their invites
// created are suspended at the server, after an admin saw the list. What
// was changed is recorded, so that unsuspend gives back exactly that.

// Audit actions of suspensions.
const (
	ActionSuspend          = "suspend"
	ActionUnsuspend        = "unsuspend"
	ActionAccountSuspend   = "account.suspend"
	ActionAccountUnsuspend = "account.unsuspend"
)

// planTTL is how long a previewed suspension waits for its yes.
const planTTL = 10 * time.Minute

// Errors of suspensions.
var (
	// ErrNoPlan means yes came without a suspension previewed in the last
	// planTTL.
	ErrNoPlan = errors.New("no suspension waiting for confirmation")
	// ErrPlanChanged means the branch changed between preview and yes;
	// the new plan waits for a yes of its own.
	ErrPlanChanged = errors.New("the branch changed since the preview")
	// ErrNotSuspended means unsuspend named a JID the bot did not suspend.
	ErrNotSuspended = errors.New("not suspended")
	// ErrNothingToSuspend means the target holds no grant, has nothing
	// pending and created no account.
	ErrNothingToSuspend = errors.New("nothing to suspend")
)

// SuspendPlan is what a suspend will do, shown before it is done.
type SuspendPlan struct {
	// Target is the JID named; Deep says the whole branch, not only the
	// accounts Target's own invites created.
	Target string
	Deep   bool
	Reason string
	// Revoke are the inviters whose grant goes (with their pending
	// invites and event links): Target and, deep, the granted accounts of
	// the branch.
	Revoke []string
	// Accounts are the accounts to suspend.
	Accounts []string
	// Skipped are accounts of the branch left alone: admins and accounts
	// of other domains.
	Skipped []string
	// Pending counts the pending invites of Revoke that get cancelled.
	Pending int
	made    time.Time
}

// SuspendResult is what a suspend did.
type SuspendResult struct {
	Plan SuspendPlan
	// Suspended are the accounts the server suspended, with how; Manual
	// those it could not be asked about (an admin must run the
	// commands); Failed those it refused or did not answer about.
	Suspended map[string]SuspendHow
	Manual    []string
	Failed    []string
	// Cancelled counts the pending invites cancelled; StillValid those
	// whose token the server still accepts for now.
	Cancelled, StillValid int
}

// UnsuspendResult is what an unsuspend did.
type UnsuspendResult struct {
	Target string
	// Regranted are the grants given back.
	Regranted []string
	// Restored are the accounts whose suspension was lifted at the
	// server; Manual those an admin must lift by hand; Failed those the
	// server did not lift.
	Restored, Manual, Failed []string
	// Cancelled counts the invites the suspend cancelled, which stay
	// cancelled (their tokens are dead at the server).
	Cancelled int
}

// suspensions plans, carries out and undoes suspensions.
type suspensions struct {
	*core
	roles  *roles
	grants *grants
	branch *brancher
	module *serverModule
	// viaModule suspends through mod_invitebot; nil without it.
	viaModule Suspender

	mu    sync.Mutex
	plans map[string]SuspendPlan // by admin; guarded by mu
}

func newSuspensions(c *core, rl *roles, gr *grants, br *brancher, m *serverModule, viaModule Suspender) *suspensions {
	if viaModule == nil {
		viaModule, _ = m.m.(Suspender)
	}
	return &suspensions{core: c, roles: rl, grants: gr, branch: br, module: m, viaModule: viaModule,
		plans: make(map[string]SuspendPlan)}
}

// suspender is how accounts are suspended right now: mod_invitebot while
// the server runs it, else the Issuer when its server can (ejabberd's
// API), else nothing (the bot lists the commands).
func (s *suspensions) suspender() Suspender {
	if s.viaModule != nil && s.module.modulePresent() {
		return s.viaModule
	}
	if sp, ok := s.module.issuer.(Suspender); ok && offersSuspend(sp) {
		return sp
	}
	return nil
}

// offersSuspend reports whether sp suspends for the server the bot talks
// to now: one that serves several kinds of server says so with an
// OffersSuspend method; anything else always does.
func offersSuspend(sp Suspender) bool {
	o, ok := sp.(interface{ OffersSuspend() bool })
	return !ok || o.OffersSuspend()
}

// PlanSuspend works out what suspending target would do and keeps it for
// a's confirmation (ConfirmSuspend). target must not be an admin.
func (s *suspensions) PlanSuspend(ctx context.Context, a Actor, target string, deep bool, reason string) (SuspendPlan, error) {
	if err := a.may(policy.SuspendAccounts); err != nil {
		return SuspendPlan{}, err
	}
	p, err := s.plan(ctx, a, target, deep, reason)
	if err != nil {
		return SuspendPlan{}, err
	}
	s.mu.Lock()
	s.plans[a.jid] = p
	s.mu.Unlock()
	return p, nil
}

func (s *suspensions) plan(ctx context.Context, a Actor, target string, deep bool, reason string) (SuspendPlan, error) {
	if s.roles.IsAdmin(target) {
		return SuspendPlan{}, ErrTargetIsAdmin
	}
	b, err := s.branch.Branch(ctx, a, target)
	if err != nil {
		return SuspendPlan{}, err
	}
	p := SuspendPlan{Target: target, Deep: deep, Reason: reason, Revoke: []string{target}, made: s.now()}
	// The target's own account, when one of the bot's invites created it.
	if b.RootAccount != "" {
		s.consider(&p, target)
	}
	for _, acc := range b.Accounts {
		if acc.Depth > 1 && !deep {
			continue
		}
		s.consider(&p, acc.Account)
		if deep && acc.Inviter == InviterGranted {
			p.Revoke = append(p.Revoke, acc.Account)
		}
	}
	for _, who := range p.Revoke {
		n, err := s.pendingCount(ctx, who)
		if err != nil {
			return SuspendPlan{}, err
		}
		p.Pending += n
	}
	_, grantErr := s.store.Grant(ctx, target)
	if len(p.Accounts) == 0 && p.Pending == 0 && errors.Is(grantErr, store.ErrNotFound) {
		return SuspendPlan{}, ErrNothingToSuspend
	}
	return p, nil
}

// consider adds account to the plan, or to its skipped accounts when the
// bot must not touch it: an admin, or an account of another domain.
func (s *suspensions) consider(p *SuspendPlan, account string) {
	j, err := jid.Parse(account)
	if err != nil || j.Domainpart() != s.domain || j.Localpart() == "" || s.roles.IsAdmin(account) {
		p.Skipped = append(p.Skipped, account)
		return
	}
	p.Accounts = append(p.Accounts, account)
}

func (s *suspensions) pendingCount(ctx context.Context, who string) (int, error) {
	invs, err := s.store.InvitesByInviter(ctx, who)
	if err != nil {
		return 0, fmt.Errorf("suspend: %w", err)
	}
	n := 0
	for _, inv := range invs {
		if inv.State == store.StatePending {
			n++
		}
	}
	return n, nil
}

// ConfirmSuspend carries out a's last previewed suspension. When the
// branch has grown since (accounts the preview did not show), nothing is
// done: the new plan is returned with ErrPlanChanged and waits for a yes
// of its own.
func (s *suspensions) ConfirmSuspend(ctx context.Context, a Actor) (SuspendResult, error) {
	if err := a.may(policy.SuspendAccounts); err != nil {
		return SuspendResult{}, err
	}
	s.mu.Lock()
	p, ok := s.plans[a.jid]
	delete(s.plans, a.jid)
	s.mu.Unlock()
	if !ok || s.now().Sub(p.made) > planTTL {
		return SuspendResult{}, ErrNoPlan
	}
	now, err := s.plan(ctx, a, p.Target, p.Deep, p.Reason)
	if err != nil {
		return SuspendResult{}, err
	}
	for _, acct := range now.Accounts {
		if !slices.Contains(p.Accounts, acct) {
			s.mu.Lock()
			s.plans[a.jid] = now
			s.mu.Unlock()
			return SuspendResult{Plan: now}, ErrPlanChanged
		}
	}
	return s.execute(ctx, a, now)
}

// execute does what p says.
func (s *suspensions) execute(ctx context.Context, a Actor, p SuspendPlan) (SuspendResult, error) {
	// Like a revoke, a suspend half done leaves an abuser working.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout*4)
	defer cancel()
	res := SuspendResult{Plan: p, Suspended: make(map[string]SuspendHow)}
	rec, err := s.store.Suspension(ctx, p.Target)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return res, fmt.Errorf("suspend: %w", err)
	}
	rec.Target, rec.By, rec.At, rec.Reason, rec.Deep = p.Target, a.jid, s.now(), p.Reason, rec.Deep || p.Deep
	for _, who := range p.Revoke {
		g, gerr := s.store.Grant(ctx, who)
		rr, err := s.grants.Revoke(ctx, a, who)
		switch {
		case errors.Is(err, ErrNotInviter):
		case err != nil:
			return res, fmt.Errorf("suspend: revoke %s: %w", who, err)
		}
		res.Cancelled += rr.Cancelled
		res.StillValid += rr.StillValid
		if gerr == nil {
			rec.Grants = append(rec.Grants, g)
		}
	}
	rec.Cancelled += res.Cancelled
	sp := s.suspender()
	for _, acct := range p.Accounts {
		how, err := s.suspendAccount(ctx, sp, a, p, acct)
		switch {
		case err != nil:
			res.Failed = append(res.Failed, acct)
			continue
		case how == SuspendManual:
			res.Manual = append(res.Manual, acct)
		default:
			res.Suspended[acct] = how
		}
		if !slices.Contains(rec.Accounts, acct) {
			rec.Accounts = append(rec.Accounts, acct)
		}
	}
	detail := suspendDetail(p, res)
	if err := s.store.PutSuspension(ctx, rec, store.AuditEntry{
		Time: s.now().UTC(), Actor: a.jid, Action: ActionSuspend, Subject: p.Target, Detail: detail,
	}); err != nil {
		return res, fmt.Errorf("suspend: %w", err)
	}
	s.log.InfoContext(ctx, "suspend", slog.String("target", p.Target), slog.String("by", a.jid),
		slog.Bool("deep", p.Deep), slog.Int("accounts", len(res.Suspended)), slog.Int("manual", len(res.Manual)),
		slog.Int("failed", len(res.Failed)), slog.Int("cancelled", res.Cancelled))
	return res, nil
}

// suspendAccount suspends one account at the server (or, without a way to,
// records it for the admin to do by hand) and records it.
func (s *suspensions) suspendAccount(ctx context.Context, sp Suspender, a Actor, p SuspendPlan, acct string) (SuspendHow, error) {
	how := SuspendManual
	if sp != nil {
		j, err := jid.Parse(acct)
		if err == nil {
			how, err = sp.Suspend(ctx, j, p.Reason)
		}
		if err != nil {
			s.log.WarnContext(ctx, "the server did not suspend an account", slog.String("account", acct), slog.Any("err", err))
			s.audit(ctx, a.jid, ActionAccountSuspend, acct, "the server did not suspend it: "+shortErr(err))
			return "", err
		}
	}
	err := s.store.PutSuspendedAccount(ctx, store.SuspendedAccount{
		Account: acct, By: a.jid, At: s.now(), Reason: p.Reason, How: string(how), Target: p.Target,
	}, store.AuditEntry{Time: s.now().UTC(), Actor: a.jid, Action: ActionAccountSuspend, Subject: acct,
		Detail: fmt.Sprintf("%s (%s); branch of %s; reason: %s", how, howDetail(how), p.Target, orNone(p.Reason))})
	if err != nil {
		return "", err
	}
	return how, nil
}

// dropPlans forgets every waiting preview of suspending target.
func (s *suspensions) dropPlans(target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for admin, p := range s.plans {
		if p.Target == target {
			delete(s.plans, admin)
		}
	}
}

// Unsuspend undoes the suspend of target: its grants come back as they
// were, its accounts' suspensions are lifted. Named by an account that was
// suspended as part of a branch, it lifts that account's suspension only.
// A preview of suspending target that waits for a yes is dropped.
func (s *suspensions) Unsuspend(ctx context.Context, a Actor, target string) (UnsuspendResult, error) {
	if err := a.may(policy.SuspendAccounts); err != nil {
		return UnsuspendResult{}, err
	}
	// A preview of suspending target waiting for someone's yes is void
	// now: a yes after the undo must not suspend again.
	s.dropPlans(target)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout*4)
	defer cancel()
	res := UnsuspendResult{Target: target}
	rec, err := s.store.Suspension(ctx, target)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = store.Suspension{Target: target, Accounts: []string{target}}
	case err != nil:
		return res, fmt.Errorf("unsuspend: %w", err)
	}
	res.Cancelled = rec.Cancelled
	whole := err == nil
	for _, g := range rec.Grants {
		if err := s.store.PutGrant(ctx, g, store.AuditEntry{Time: s.now().UTC(), Actor: a.jid, Action: ActionGrant,
			Subject: g.JID, Detail: "given back by unsuspend " + target}); err != nil {
			return res, fmt.Errorf("unsuspend: %w", err)
		}
		res.Regranted = append(res.Regranted, g.JID)
	}
	sp := s.suspender()
	for _, acct := range rec.Accounts {
		s.unsuspendAccount(ctx, sp, a, target, acct, &res)
	}
	if !whole && len(res.Restored)+len(res.Manual)+len(res.Failed) == 0 {
		return res, ErrNotSuspended
	}
	if whole {
		detail := fmt.Sprintf("grants given back: %s; accounts restored: %s; by hand: %s; failed: %s; %d cancelled invites stay cancelled",
			list(res.Regranted), list(res.Restored), list(res.Manual), list(res.Failed), res.Cancelled)
		if len(res.Failed) == 0 {
			err = s.store.DeleteSuspension(ctx, target, store.AuditEntry{Time: s.now().UTC(), Actor: a.jid,
				Action: ActionUnsuspend, Subject: target, Detail: detail})
		} else {
			// Kept, so that unsuspend can be run again for the rest.
			rec.Grants, rec.Accounts = nil, res.Failed
			err = s.store.PutSuspension(ctx, rec, store.AuditEntry{Time: s.now().UTC(), Actor: a.jid,
				Action: ActionUnsuspend, Subject: target, Detail: detail})
		}
		if err != nil {
			return res, fmt.Errorf("unsuspend: %w", err)
		}
	}
	if res.Regranted != nil {
		s.notify(ctx, target, GrantGiven{Domain: s.domain})
	}
	return res, nil
}

// unsuspendAccount lifts one account's suspension, if the bot made one.
func (s *suspensions) unsuspendAccount(ctx context.Context, sp Suspender, a Actor, target, acct string, res *UnsuspendResult) {
	rec, err := s.store.SuspendedAccount(ctx, acct)
	if err != nil {
		return // lifted already, or never suspended
	}
	if SuspendHow(rec.How) != SuspendManual {
		if sp == nil {
			res.Failed = append(res.Failed, acct)
			return
		}
		j, err := jid.Parse(acct)
		if err == nil {
			err = sp.Unsuspend(ctx, j)
		}
		if err != nil {
			s.log.WarnContext(ctx, "the server did not lift a suspension", slog.String("account", acct), slog.Any("err", err))
			res.Failed = append(res.Failed, acct)
			return
		}
	}
	detail := "lifted at the server"
	if SuspendHow(rec.How) == SuspendManual {
		detail = "to be lifted by hand at the server"
		res.Manual = append(res.Manual, acct)
	} else {
		res.Restored = append(res.Restored, acct)
	}
	if err := s.store.DeleteSuspendedAccount(ctx, acct, store.AuditEntry{Time: s.now().UTC(), Actor: a.jid,
		Action: ActionAccountUnsuspend, Subject: acct, Detail: detail + "; unsuspend " + target}); err != nil {
		s.log.ErrorContext(ctx, "suspension lifted at the server but not in the database", slog.String("account", acct), slog.Any("err", err))
	}
}

func suspendDetail(p SuspendPlan, r SuspendResult) string {
	var done []string
	for acct := range r.Suspended {
		done = append(done, acct)
	}
	slices.Sort(done)
	depth := "depth 1"
	if p.Deep {
		depth = "whole branch"
	}
	return fmt.Sprintf("%s; revoked: %s; %d pending invites cancelled; accounts suspended: %s; by hand: %s; failed: %s; left alone: %s; reason: %s",
		depth, list(p.Revoke), r.Cancelled, list(done), list(r.Manual), list(r.Failed), list(p.Skipped), orNone(p.Reason))
}

func howDetail(how SuspendHow) string {
	switch how {
	case SuspendDisabled:
		return "the server's own account disabling"
	case SuspendBlocked:
		return "login refused by mod_invitebot"
	default:
		return "the server could not be asked; an admin runs the commands"
	}
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none given"
	}
	return s
}

// shortErr is err's text, bounded for an audit line.
func shortErr(err error) string {
	const max = 120
	s := err.Error()
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// IsSuspended reports whether the bot suspended account.
func (s *suspensions) IsSuspended(ctx context.Context, account string) bool {
	_, err := s.store.SuspendedAccount(ctx, account)
	return err == nil
}
