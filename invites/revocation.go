package invites

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/store"
)

// revoker makes the tokens of cancelled invites, and of minted tokens
// nobody was handed (orphan.go), unusable at the server, in whichever way
// the server offers right now (serverModule.revocation).
type revoker struct {
	*core
	registrar Registrar
	module    *serverModule
}

// revokeCancelled makes a just-cancelled invite's token unusable at the
// server. A failure is logged and left to usage tracking to retry; the
// returned invite's Revoked field tells the caller which happened.
func (rv *revoker) revokeCancelled(ctx context.Context, actor string, inv store.Invite) store.Invite {
	if err := rv.revokeToken(ctx, actor, inv); err != nil {
		rv.log.WarnContext(ctx, "cancelled invite's token still valid at the server; will retry",
			slog.String("id", inv.ID), slog.Any("err", err))
		return inv
	}
	inv.Revoked = true
	return inv
}

// revokeToken makes a cancelled invite's token unusable at the server and
// records that it did. It returns nil when the server refuses the token
// now.
func (rv *revoker) revokeToken(ctx context.Context, actor string, inv store.Invite) error {
	var err error
	switch rv.module.revocation() {
	case RevokeByDeletion:
		err = rv.module.deleteToken(ctx, inv.Token)
	case RevokeByConsumption:
		err = rv.consumeToken(ctx, inv)
	default:
		return errors.New("the server offers no way to revoke a token; it stays valid until it expires")
	}
	if err != nil {
		return err
	}
	return rv.store.MarkRevoked(ctx, inv.ID, store.AuditEntry{
		Time: rv.now().UTC(), Actor: actor, Action: ActionTokenRevoked, Subject: inv.ID,
	})
}

// consumeToken uses a token up: it registers a throwaway account with it,
// removes that account again, and confirms the server now refuses the
// token.
func (rv *revoker) consumeToken(ctx context.Context, inv store.Invite) error {
	username := "revoked-" + randomHex(6)
	password := randomHex(16)
	account, err := rv.registrar.Register(ctx, inv.Token, username, password)
	switch {
	case errors.Is(err, ErrTokenRejected):
		// Already unusable (used, expired or consumed before): confirmed
		// below all the same.
	case err != nil:
		// The server may have created the account and lost the answer:
		// try to remove it, so no account nobody can log in to remains.
		if j, jerr := jid.New(username, rv.domain, ""); jerr == nil {
			if rerr := rv.registrar.Remove(ctx, j, password); rerr == nil {
				rv.log.WarnContext(ctx, "removed a throwaway account whose registration reply was lost",
					slog.String("account", j.String()))
			}
		}
		return fmt.Errorf("consume token of %s (throwaway account %s): %w", inv.ID, username, err)
	default:
		if err := rv.registrar.Remove(ctx, account, password); err != nil {
			// The token is spent, which is what matters; the stray
			// account must go by hand.
			rv.log.ErrorContext(ctx, "throwaway account left behind after consuming a token; delete it on the server",
				slog.String("account", account.String()), slog.String("invite", inv.ID), slog.Any("err", err))
		}
	}
	if err := checkToken(ctx, rv.registrar, inv.Token); !errors.Is(err, ErrTokenRejected) {
		return fmt.Errorf("token of %s still accepted after consuming it (check: %v)", inv.ID, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// checkToken asks the server once whether token is still accepted.
func checkToken(ctx context.Context, r Registrar, token string) error {
	c, err := r.DialChecker(ctx)
	if err != nil {
		return err
	}
	// The answer is in once Check returns; a close error changes nothing.
	defer func() { _ = c.Close() }()
	return c.Check(ctx, token)
}
