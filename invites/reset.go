package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/policy"
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
}

func (ResetCreated) isEvent() {}

// resetLinks makes password reset links, while the server offers them
// (detected when the link comes up) and for whom the configuration allows.
type resetLinks struct {
	*core
	issuer Issuer
	minter *minter
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
// account of the domain; an inviter only one that an invite of theirs
// created, unless the configuration forbids inviters resets. The server's
// reset token can also create a new account, so the link is an invite in
// every respect: single use, counted in quotas, stored before it is
// returned, listed, cancellable and tracked. The account is told.
func (rl *resetLinks) Reset(ctx context.Context, a Actor, account string) (Invite, error) {
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
		invitedBy, err := rl.invitedBy(ctx, target.String())
		if err != nil {
			return Invite{}, err
		}
		if !policy.CanReset(a.role, a.jid, invitedBy, rl.inviterResets.Load()) {
			return Invite{}, ErrNotYourAccount
		}
	}
	mint := func(ctx context.Context) (Minted, error) { return issuer.MintReset(ctx, target) }
	inv, err := rl.minter.mintAndRecord(ctx, a, minting{mint: mint, action: ActionResetCreate, resetFor: target.String()})
	if err != nil {
		return Invite{}, err
	}
	rl.notify(ctx, target.String(), ResetCreated{Account: target.String(), By: a.jid, At: inv.Created})
	return inv, nil
}

// invitedBy returns the inviters of the account invites that created
// account (password resets of it do not count).
func (rl *resetLinks) invitedBy(ctx context.Context, account string) ([]string, error) {
	invs, err := rl.store.InvitesUsedBy(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("reset: who invited %s: %w", account, err)
	}
	var out []string
	for _, inv := range invs {
		if inv.ResetFor == "" {
			out = append(out, inv.Inviter)
		}
	}
	return out, nil
}
