package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// minter makes invites: each one admitted by the gate, minted at the
// server, and recorded with its audit entry before it is handed back, or
// else its token revoked (revoker.dropMinted). Account invites, password
// reset links, approved requests and event link visitors all come through
// here.
type minter struct {
	*core
	issuer  Issuer
	gate    *quotaGate
	revoker *revoker
}

// Create mints one single-use account invite for a and records it, with
// its audit entry, before returning it: a token is never handed out that the
// database does not hold. A token the server minted that is not handed
// back (the request gave up, the inviter was revoked or invites paused
// meanwhile, the store failed) is revoked at the server (orphan.go).
func (mt *minter) Create(ctx context.Context, a Actor) (Invite, error) {
	if err := a.may(policy.CreateInvite); err != nil {
		mt.observer.InviteDenied()
		return Invite{}, err
	}
	return mt.mintAndRecord(ctx, a, minting{action: ActionInviteCreate})
}

// minting says what kind of invite mintAndRecord makes and how it is
// recorded.
type minting struct {
	// mint makes the token at the server; nil means the Issuer's Mint.
	mint func(context.Context) (Minted, error)
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
// quotas, has m.mint make it at the server, and records it as an invite of
// the kind m says, with its audit entry, before returning it.
func (mt *minter) mintAndRecord(ctx context.Context, a Actor, m minting) (Invite, error) {
	m = mt.defaults(a, m)
	resetFor := m.resetFor
	held, err := m.admit(ctx)
	if err != nil {
		return Invite{}, err
	}
	// Settling twice is harmless; this covers a panicking Issuer.
	defer held.settle(func() error { return nil })
	// Not bounded by the request: a request giving up while the server
	// mints would leave a token that nobody ever learns of. The Issuer
	// bounds the wait itself.
	mintDone := mt.revoker.module.mintStarted()
	minted, err := m.mint(context.WithoutCancel(ctx))
	if err != nil {
		// Unless the server refused, it may have minted a token whose
		// answer was lost: usage tracking asks (inflight.go).
		mintDone(!errors.Is(err, ErrIssuerForbidden) && !errors.Is(err, ErrIssuerUnsupported))
		return Invite{}, fmt.Errorf("create invite: %w", err)
	}
	// Recorded or revoked by the time this returns.
	defer mintDone(false)
	// The token exists at the server now: record it even if the request's
	// own time ran out while minting.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	now := mt.now().UTC()
	template := store.Invite{
		Token:      minted.Token,
		URI:        minted.URI,
		LandingURL: minted.LandingURL,
		Domain:     mt.domain,
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
		// both serialise with this under the gate's lock. The token is
		// then revoked instead of handed out.
		if err := mt.gate.stillAdmitted(wctx, a); err != nil {
			return err
		}
		var err error
		inv, err = m.record(wctx, template, store.AuditEntry{Time: now, Actor: a.jid, Action: m.action, Detail: m.detail})
		return err
	})
	if err != nil {
		// Revoked, paused, answered by someone else, event link closed
		// meanwhile, or the store failed: the token is revoked.
		mt.revoker.dropMinted(ctx, a, template, err)
		var paused *PausedError
		if errors.Is(err, ErrForbidden) || errors.As(err, &paused) || errors.Is(err, ErrRequestAnswered) || errors.Is(err, ErrEventClosed) {
			return Invite{}, err
		}
		return Invite{}, fmt.Errorf("create invite: store: %w", err)
	}
	if err := ctx.Err(); err != nil {
		// Nobody is waiting to hand the invite out any more.
		mt.revoker.abandonCreated(ctx, inv)
		return Invite{}, fmt.Errorf("create invite: %w", err)
	}
	mt.observer.InviteCreated()
	mt.log.InfoContext(ctx, "invite created", slog.String("id", inv.ID), slog.String("inviter", a.jid),
		slog.Time("expires", inv.Expires), slog.String("reset_for", resetFor), slog.String("event", inv.Event))
	return viewOf(inv), nil
}

// defaults fills in what m leaves to the minter: an account invite for a,
// minted by the Issuer, admitted under the pause switch and a's quotas,
// stored as it is.
func (mt *minter) defaults(a Actor, m minting) minting {
	if m.mint == nil {
		m.mint = mt.issuer.Mint
	}
	if m.record == nil {
		m.record = mt.store.AddInvite
	}
	if m.detail == "" {
		m.detail = m.resetFor
	}
	if m.admit == nil {
		m.admit = func(ctx context.Context) (*reservation, error) { return mt.gate.admitCreate(ctx, a) }
	}
	return m
}
