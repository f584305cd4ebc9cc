package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// ActionResetCreate is the audit action of a password reset link.
const ActionResetCreate = "reset.create"

// Errors of password resets.
var (
	// ErrResetUnsupported means the server offers no reset command.
	ErrResetUnsupported = errors.New("the server offers no password reset command")
	// ErrNotLocalAccount means the account is not on the service's domain.
	ErrNotLocalAccount = errors.New("not an account of this domain")
	// ErrNotYourAccount means an inviter asked to reset an account that
	// none of their invites created (or inviters may not reset at all).
	ErrNotYourAccount = errors.New("not an account one of your invites created")
	// ErrNoSuchAccount means the server says the account does not exist:
	// a reset link for it would create it, so none is made.
	ErrNoSuchAccount = errors.New("the server has no such account")
	// ErrAccountUnknown means the server did not say whether the account
	// exists (it cannot be asked, refused the question, or was not
	// reachable): no reset link is made rather than risk one that creates
	// an account nobody tracks.
	ErrAccountUnknown = errors.New("the server did not say whether the account exists")
)

// ResetCreated tells an account that a password reset link was made for
// it: the one who asked may not be the owner.
type ResetCreated struct {
	// Account is the account the link resets.
	Account string
	// By is who made the link.
	By string
	// At is when.
	At time.Time
	// Expires is when the link stops working at the server.
	Expires time.Time
	// Uncancellable says that the server cannot cancel the link: it works
	// until Expires (see ResetsUncancellable).
	Uncancellable bool
}

func (ResetCreated) isEvent() {}

// resetLinks makes password reset links, while the server offers them
// (detected when the link comes up) and for whom the configuration allows.
type resetLinks struct {
	*core
	issuer Issuer
	minter *minter
	// cancel replaces a new link's predecessors.
	cancel *canceller
	// inviterResets: see Options.InviterResets; a reload may change it.
	inviterResets atomic.Bool
	// offered says whether the server offers password resets.
	offered atomic.Bool
}

// SetInviterResets says whether inviters may make password reset links
// for accounts their invites created, as on a configuration reload.
func (rl *resetLinks) SetInviterResets(on bool) { rl.inviterResets.Store(on) }

// DetectServerCommands asks the server which commands it offers and turns
// password resets on or off accordingly. The bot calls it whenever its link
// comes up: a server upgraded from 0.12 to 13 offers resets without a
// change to the bot's configuration.
func (rl *resetLinks) DetectServerCommands(ctx context.Context) {
	issuer, ok := rl.issuer.(ResetIssuer)
	if !ok {
		return
	}
	on, err := issuer.OffersResets(ctx)
	if err != nil {
		rl.log.WarnContext(ctx, "could not list the server's commands; password resets stay as they were", slog.Any("err", err))
		return
	}
	if rl.offered.Swap(on) != on || !on {
		rl.log.InfoContext(ctx, "password resets", slog.Bool("available", on),
			slog.String("why", map[bool]string{true: "the server offers its password reset command", false: "the server offers no password reset command (Prosody 13 does)"}[on]))
	}
}

// ResetsAvailable reports whether the server offers password resets, as
// last detected.
func (rl *resetLinks) ResetsAvailable() bool { return rl.offered.Load() }

// Reset makes a password reset link for account. Admins may reset any
// account of the domain; an inviter only the one that exists now under a
// name their invite registered (the latest registration of the name
// decides: see accountMakers), unless the configuration forbids inviters
// resets. The server's reset token can also create a new account, so the
// link is made only for an account the server says exists
// (AccountChecker), and it is an invite in every respect: single use,
// counted in quotas, stored before it is returned, listed, cancellable and
// tracked. The account is told, and its earlier pending reset links are
// cancelled and revoked at the server, so that only the newest works.
func (rl *resetLinks) Reset(ctx context.Context, a Actor, account string) (Invite, error) {
	cn := rl.cancel
	if err := a.may(policy.ResetPassword); err != nil {
		return Invite{}, err
	}
	target, err := jid.Parse(account)
	if err != nil || target.Domainpart() != rl.domain || target.Localpart() == "" {
		return Invite{}, ErrNotLocalAccount
	}
	target = target.Bare()
	issuer, ok := rl.issuer.(ResetIssuer)
	if !ok || !rl.ResetsAvailable() {
		return Invite{}, ErrResetUnsupported
	}
	if !policy.Allows(a.role, policy.ResetAnyAccount) {
		makers, err := rl.accountMakers(ctx, target.String())
		if err != nil {
			return Invite{}, err
		}
		if !policy.CanReset(a.role, a.jid, makers, rl.inviterResets.Load()) {
			return Invite{}, ErrNotYourAccount
		}
	}
	if err := rl.mustExist(ctx, target); err != nil {
		return Invite{}, err
	}
	mint := func(ctx context.Context) (Minted, error) { return issuer.MintReset(ctx, target) }
	inv, err := rl.minter.mintAndRecord(ctx, a, minting{mint: mint, action: ActionResetCreate, resetFor: target.String()})
	if err != nil {
		return Invite{}, err
	}
	rl.notify(ctx, target.String(), ResetCreated{Account: target.String(), By: a.jid, At: inv.Created,
		Expires: inv.Expires, Uncancellable: rl.ResetsUncancellable()})
	inv.Replaced = rl.replaceEarlier(ctx, a, inv, cn)
	return inv, nil
}

// ResetsUncancellable reports whether a reset link made now could not be
// cancelled at the server: the server refused to let a reset token be used
// up (it binds the token to its account, as Prosody 13.0.8 does; learnt
// at a cancel, or after a restart at the first usage check while such a
// link lives) and it cannot delete tokens (no mod_invitebot). Such a link
// works until it expires, whatever is cancelled here. Until then the bot
// does not know, and it says false.
func (rl *resetLinks) ResetsUncancellable() bool {
	return rl.cancel.revoker.boundTokensUnrevocable()
}

// mustExist asks the server whether account exists, and returns
// ErrNoSuchAccount when it does not and ErrAccountUnknown when the server
// did not say.
func (rl *resetLinks) mustExist(ctx context.Context, account jid.JID) error {
	checker, ok := rl.issuer.(AccountChecker)
	if !ok {
		return fmt.Errorf("reset %s: %w: the server offers no way to ask", account, ErrAccountUnknown)
	}
	exists, err := checker.AccountExists(ctx, account)
	switch {
	case err != nil:
		rl.log.WarnContext(ctx, "no password reset link: the server did not say whether the account exists",
			slog.String("account", account.String()), slog.Any("err", err))
		return fmt.Errorf("reset %s: %w: %w", account, ErrAccountUnknown, err)
	case !exists:
		return fmt.Errorf("reset %s: %w", account, ErrNoSuchAccount)
	}
	return nil
}

// replaceEarlier cancels the pending reset links for inv's account made
// before inv (by creation, then id: of two made at once, the later one
// survives, whichever request finishes first), each under its lock, and
// revokes their tokens at the server the way Cancel does; their makers, if
// not a, are told. A link whose token the server already refuses was used
// a moment ago: it is left for the server's report or usage tracking to
// record, as they would have anyway. A failure is logged: the new link
// stands, and a token left unrevoked is retried by usage tracking. It
// returns the links it cancelled, as they now stand.
func (rl *resetLinks) replaceEarlier(ctx context.Context, a Actor, inv Invite, cn *canceller) []Invite {
	pending, err := rl.store.PendingInvites(ctx)
	if err != nil {
		rl.log.ErrorContext(ctx, "earlier reset links of the account stay valid: cannot list pending invites",
			slog.String("account", inv.ResetFor), slog.Any("err", err))
		return nil
	}
	var earlier []store.Invite
	for _, p := range pending {
		if p.ResetFor == inv.ResetFor && p.ID != inv.ID &&
			(p.Created.Before(inv.Created) || p.Created.Equal(inv.Created) && p.ID < inv.ID) {
			earlier = append(earlier, p)
		}
	}
	if len(earlier) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeBudget)
	defer cancel()
	spent := &spentTokens{registrar: cn.tracker.registrar}
	defer spent.close()
	var replaced []Invite
	for _, old := range earlier {
		cancelled, err := rl.cancelReplaced(wctx, cn, spent, a.jid, old.ID, "replaced by reset link "+inv.ID)
		if errors.Is(err, ErrNotPending) {
			continue
		} else if err != nil {
			rl.log.ErrorContext(ctx, "an earlier reset link of the account stays valid: cannot cancel it",
				slog.String("account", inv.ResetFor), slog.String("id", old.ID), slog.Any("err", err))
			continue
		}
		done := viewOf(cn.revoker.revokeCancelled(wctx, a.jid, cancelled))
		rl.log.InfoContext(ctx, "earlier reset link cancelled", slog.String("id", old.ID),
			slog.String("replaced_by", inv.ID), slog.String("account", inv.ResetFor), slog.Bool("revoked", done.Revoked))
		if cancelled.Inviter != a.jid {
			rl.notify(ctx, cancelled.Inviter, InviteCancelled{Invite: done, By: a.jid})
		}
		replaced = append(replaced, done)
	}
	return replaced
}

// cancelReplaced cancels the reset link id under its lock, unless it is no
// longer pending or its token is spent (ErrNotPending).
func (rl *resetLinks) cancelReplaced(ctx context.Context, cn *canceller, spent *spentTokens, actor, id, detail string) (store.Invite, error) {
	lctx, lcancel := context.WithTimeout(ctx, lockWait)
	defer lcancel()
	unlock, err := cn.uses.lockInvite(lctx, id)
	if err != nil {
		return store.Invite{}, err
	}
	defer unlock()
	rec, err := rl.record(ctx, id)
	if err != nil {
		return store.Invite{}, err
	}
	if rec.State != store.StatePending || spent.check(ctx, rl.log, rec) {
		return rec, ErrNotPending
	}
	cancelled, err := rl.store.SetInviteState(ctx, id, store.StateCancelled, "", store.AuditEntry{
		Time: rl.now().UTC(), Actor: actor, Action: ActionInviteCancel, Subject: id, Detail: detail,
	})
	if err != nil {
		return store.Invite{}, fmt.Errorf("cancel reset link: %w", err)
	}
	return cancelled, nil
}

// spentTokens asks the server, over one stream, whether tokens are spent.
// When it cannot be asked, tokens count as live: cancelling is then the
// safe choice.
type spentTokens struct {
	registrar Registrar
	checker   TokenChecker
	down      bool
}

func (s *spentTokens) check(ctx context.Context, log *slog.Logger, inv store.Invite) bool {
	if s.down {
		return false
	}
	if s.checker == nil {
		c, err := s.registrar.DialChecker(ctx)
		if err != nil {
			log.WarnContext(ctx, "cannot check tokens before cancelling", slog.Any("err", err))
			s.down = true
			return false
		}
		s.checker = c
	}
	err := s.checker.Check(ctx, inv.Token)
	if err != nil && !errors.Is(err, ErrTokenRejected) {
		log.WarnContext(ctx, "token check failed before cancelling", slog.Any("err", err))
		s.down = true
		return false
	}
	return err != nil
}

func (s *spentTokens) close() {
	if s.checker != nil {
		_ = s.checker.Close()
	}
}

// accountMakers returns who may count as having invited account as it
// exists now: the maker of the invite or reset link whose use last
// registered the name. An account can be deleted and its name registered
// again with someone else's invite; the earlier inviter has no claim on the
// new account. A reset link's use counts too, as its maker's, because a
// reset link creates the account when it is gone. Two uses recorded at the
// same instant by different makers leave nobody.
func (rl *resetLinks) accountMakers(ctx context.Context, account string) ([]string, error) {
	invs, err := rl.store.InvitesUsedBy(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("reset: who invited %s: %w", account, err)
	}
	var (
		latest time.Time
		makers []string
	)
	for i, inv := range invs {
		switch c := inv.Changed.Compare(latest); {
		case i == 0 || c > 0:
			latest, makers = inv.Changed, []string{inv.Inviter}
		case c == 0 && !slices.Contains(makers, inv.Inviter):
			makers = append(makers, inv.Inviter)
		}
	}
	if len(makers) > 1 {
		return nil, nil
	}
	return makers, nil
}
