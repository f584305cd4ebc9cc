package invites

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"durare.org/invitebot/store"
)

// A token the server minted is an account waiting to be created. The
// server cannot list its tokens, so one the ledger does not know about
// cannot be found again, and one nobody was handed is of use only to
// whoever finds it in a log or a lost reply. Create therefore ends in one
// of two ways: the invite is recorded and handed back to a caller still
// waiting for it, or its token is revoked at the server. The functions
// here are the second way.

// orphanTimeout bounds the clean-up of a minted token that will not be
// handed out. It runs after the request gave up, or instead of its
// answer, so it has a budget of its own.
const orphanTimeout = 20 * time.Second

// dropMinted deals with a token minted for a that was not recorded as
// handed out because of why: the inviter's grant was revoked or invites
// were paused while the server minted it, an account request was answered
// by someone else or an event link closed meanwhile, or the store failed.
// It records the invite (inv, as it would have been stored) as cancelled,
// so that usage tracking retries the revocation should the server be out
// of reach now, and revokes the token; when the store cannot take even
// that, it revokes the token without a record.
func (rv *revoker) dropMinted(ctx context.Context, a Actor, inv store.Invite, why error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orphanTimeout)
	defer cancel()
	if errors.Is(why, store.ErrExists) {
		// The ledger holds this token for another invite already: it is no
		// orphan, and revoking it would take that invite away.
		rv.log.ErrorContext(ctx, "server minted a token the ledger already holds; left alone",
			slog.String("inviter", a.jid), slog.String("token", RedactToken(inv.Token)))
		return
	}
	reason := "not handed out: " + dropReason(why)
	token := inv.Token
	if errors.Is(why, ErrRequestAnswered) || errors.Is(why, ErrEventClosed) {
		// Someone else settled the request, or the link was closed: the
		// invite was never the inviter's to hand out, so the ledger keeps
		// no record of it, and the token is revoked straight away. Only
		// if that fails for now is it recorded (cancelled, outside the
		// request and the link) so that usage tracking retries.
		err := rv.revokeUnrecorded(ctx, token)
		if err == nil {
			rv.log.InfoContext(ctx, "minted token revoked: "+reason, slog.String("inviter", a.jid))
			return
		}
		if rv.module.revocation() == RevokeUnsupported {
			rv.log.WarnContext(ctx, "minted token dropped ("+reason+"); the server cannot revoke it, so it stays valid until it expires",
				slog.String("inviter", a.jid), slog.String("token", RedactToken(token)))
			return
		}
		rv.log.WarnContext(ctx, "revoking a dropped token failed; recording it for a retry",
			slog.String("inviter", a.jid), slog.Any("err", err))
		inv.Event, inv.Request = "", ""
	}
	inv.State = store.StateCancelled
	inv, err := rv.store.AddInvite(ctx, inv,
		store.AuditEntry{Time: inv.Created, Actor: systemActor, Action: ActionInviteCancel, Detail: reason})
	if err == nil {
		rv.log.InfoContext(ctx, "minted invite cancelled: "+reason, slog.String("id", inv.ID), slog.String("inviter", a.jid))
		rv.revokeCancelled(ctx, systemActor, inv) // logs a failure, which usage tracking retries
		return
	}
	if err := rv.revokeUnrecorded(ctx, token); err != nil {
		rv.log.ErrorContext(ctx, "minted token neither recorded nor revoked; it stays valid at the server until it expires",
			slog.String("inviter", a.jid), slog.String("token", RedactToken(token)), slog.Any("err", err))
		return
	}
	rv.log.WarnContext(ctx, "minted token revoked at the server; the ledger could not record it",
		slog.String("inviter", a.jid), slog.String("token", RedactToken(token)))
}

// dropReason says in the audit log why a minted invite was not handed out.
func dropReason(why error) string {
	var paused *PausedError
	switch {
	case errors.Is(why, ErrForbidden):
		return "the inviter's grant was revoked while the server minted it"
	case errors.As(why, &paused):
		return "invites were paused while the server minted it"
	case errors.Is(why, ErrRequestAnswered):
		return "the account request was answered by someone else while the server minted it"
	case errors.Is(why, ErrEventClosed):
		return "the event link was closed while the server minted it"
	}
	return "it could not be stored"
}

// abandonCreated cancels a just-recorded invite whose request gave up
// before the invite could be handed back, and revokes its token: nobody
// holds the link, so nobody should be able to use it.
func (rv *revoker) abandonCreated(ctx context.Context, inv store.Invite) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orphanTimeout)
	defer cancel()
	cancelled, err := rv.store.SetInviteState(ctx, inv.ID, store.StateCancelled, "", store.AuditEntry{
		Time: rv.now().UTC(), Actor: systemActor, Action: ActionInviteCancel, Subject: inv.ID,
		Detail: "not handed out: the request was abandoned",
	})
	if err != nil {
		rv.log.ErrorContext(ctx, "abandoned invite could not be cancelled; it stays pending until it expires",
			slog.String("id", inv.ID), slog.Any("err", err))
		return
	}
	rv.log.InfoContext(ctx, "invite cancelled: the request was abandoned", slog.String("id", inv.ID), slog.String("inviter", inv.Inviter))
	rv.revokeCancelled(ctx, systemActor, cancelled) // logs a failure, which usage tracking retries
}

// revokeUnrecorded makes a token the ledger does not hold unusable at the
// server, the way revokeToken does for a recorded one (by the module when
// it is there, else as the Issuer offers).
func (rv *revoker) revokeUnrecorded(ctx context.Context, token string) error {
	switch rv.module.revocation() {
	case RevokeByDeletion:
		return rv.module.deleteToken(ctx, token)
	case RevokeByConsumption:
		return rv.consumeToken(ctx, store.Invite{ID: "(unrecorded)", Token: token})
	}
	return errors.New("the server offers no way to revoke a token")
}
