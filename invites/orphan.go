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
// were paused while the server minted it, or the store failed. It records the invite as cancelled, so that usage
// tracking retries the revocation should the server be out of reach now,
// and revokes the token; when the store cannot take even that, it
// revokes the token without a record.
func (s *Service) dropMinted(ctx context.Context, a Actor, minted Minted, created time.Time, why error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orphanTimeout)
	defer cancel()
	if errors.Is(why, store.ErrExists) {
		// The ledger holds this token for another invite already: it is no
		// orphan, and revoking it would take that invite away.
		s.log.ErrorContext(ctx, "server minted a token the ledger already holds; left alone",
			slog.String("inviter", a.jid), slog.String("token", RedactToken(minted.Token)))
		return
	}
	reason := "not handed out: " + dropReason(why)
	inv, err := s.store.AddInvite(ctx, store.Invite{
		Token:      minted.Token,
		URI:        minted.URI,
		LandingURL: minted.LandingURL,
		Domain:     s.domain,
		Inviter:    a.jid,
		Created:    created,
		Expires:    minted.Expires,
		State:      store.StateCancelled,
	}, store.AuditEntry{Time: created, Actor: systemActor, Action: ActionInviteCancel, Detail: reason})
	if err == nil {
		s.log.InfoContext(ctx, "minted invite cancelled: "+reason, slog.String("id", inv.ID), slog.String("inviter", a.jid))
		s.revokeCancelled(ctx, systemActor, inv) // logs a failure, which usage tracking retries
		return
	}
	if err := s.revokeUnrecorded(ctx, minted.Token); err != nil {
		s.log.ErrorContext(ctx, "minted token neither recorded nor revoked; it stays valid at the server until it expires",
			slog.String("inviter", a.jid), slog.String("token", RedactToken(minted.Token)), slog.Any("err", err))
		return
	}
	s.log.WarnContext(ctx, "minted token revoked at the server; the ledger could not record it",
		slog.String("inviter", a.jid), slog.String("token", RedactToken(minted.Token)))
}

// dropReason says in the audit log why a minted invite was not handed out.
func dropReason(why error) string {
	var paused *PausedError
	switch {
	case errors.Is(why, ErrForbidden):
		return "the inviter's grant was revoked while the server minted it"
	case errors.As(why, &paused):
		return "invites were paused while the server minted it"
	}
	return "it could not be stored"
}

// abandonCreated cancels a just-recorded invite whose request gave up
// before the invite could be handed back, and revokes its token: nobody
// holds the link, so nobody should be able to use it.
func (s *Service) abandonCreated(ctx context.Context, inv store.Invite) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orphanTimeout)
	defer cancel()
	cancelled, err := s.store.SetInviteState(ctx, inv.ID, store.StateCancelled, "", store.AuditEntry{
		Time: s.now().UTC(), Actor: systemActor, Action: ActionInviteCancel, Subject: inv.ID,
		Detail: "not handed out: the request was abandoned",
	})
	if err != nil {
		s.log.ErrorContext(ctx, "abandoned invite could not be cancelled; it stays pending until it expires",
			slog.String("id", inv.ID), slog.Any("err", err))
		return
	}
	s.log.InfoContext(ctx, "invite cancelled: the request was abandoned", slog.String("id", inv.ID), slog.String("inviter", inv.Inviter))
	s.revokeCancelled(ctx, systemActor, cancelled) // logs a failure, which usage tracking retries
}

// revokeUnrecorded makes a token the ledger does not hold unusable at the
// server, the way revokeToken does for a recorded one.
func (s *Service) revokeUnrecorded(ctx context.Context, token string) error {
	method := RevokeUnsupported
	if r, ok := s.issuer.(Revoker); ok {
		method = r.Revocation()
	}
	switch method {
	case RevokeByDeletion:
		d, ok := s.issuer.(Deleter)
		if !ok {
			return errors.New("issuer claims deletion but cannot delete")
		}
		return d.Delete(ctx, token)
	case RevokeByConsumption:
		return s.consumeToken(ctx, store.Invite{ID: "(unrecorded)", Token: token})
	}
	return errors.New("the server offers no way to revoke a token")
}
