package invites

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/store"
)

// ErrTokenBound means the server accepts a token only for the account it
// was made for (Prosody 13.0.8's password reset tokens), so it cannot be
// used up by registering a throwaway account: a server that cannot delete
// it keeps it valid until it expires. Registrar.Register returns it
// (wrapping ErrUsernameRefused) when the server refuses a name so.
var ErrTokenBound = errors.New("the server accepts this token for its own account only")

// ActionTokenUnrevocable is the audit action recording that the server
// refused to revoke a cancelled invite's token: it stays valid there until
// it expires.
const ActionTokenUnrevocable = "invite.token-unrevocable"

// revoker makes the tokens of cancelled invites, and of minted tokens
// nobody was handed (orphan.go), unusable at the server, in whichever way
// the server offers right now (serverModule.revocation).
type revoker struct {
	*core
	registrar Registrar
	module    *serverModule
	// boundTokens says that the server refused, since the bot started, to
	// let a token be used up because the token is bound to its account
	// (ErrTokenBound), or that usage tracking found a live link recorded so
	// earlier. It is learnt from the server's answer, not from a version
	// number.
	boundTokens atomic.Bool
}

// revokeCancelled makes a just-cancelled invite's token unusable at the
// server, and returns the invite as it now stands: Revoked when the server
// refuses the token now, Unrevocable when the server refused to revoke it
// (it then works until it expires, and nothing retries). Any other failure
// is logged and left to usage tracking to retry, and the invite comes back
// as it was.
func (rv *revoker) revokeCancelled(ctx context.Context, actor string, inv store.Invite) store.Invite {
	done, err := rv.revoke(ctx, actor, inv)
	if err != nil {
		rv.log.WarnContext(ctx, "cancelled invite's token still valid at the server; will retry",
			slog.String("id", inv.ID), slog.Any("err", err))
		return inv
	}
	return done
}

// revokeToken is revoke for usage tracking's retries: nil when there is
// nothing left to retry (the token is revoked, or the server will not
// revoke it and cannot delete tokens).
func (rv *revoker) revokeToken(ctx context.Context, actor string, inv store.Invite) error {
	_, err := rv.revoke(ctx, actor, inv)
	return err
}

// revoke makes a cancelled invite's token unusable at the server and
// records what happened: revoked, or unrevocable when the server accepts
// the token for its own account only and cannot delete it. An invite
// already found unrevocable is tried again only once the server can delete
// tokens (mod_invitebot loaded since): consuming it would be refused again.
func (rv *revoker) revoke(ctx context.Context, actor string, inv store.Invite) (store.Invite, error) {
	how := rv.module.revocation()
	if inv.Unrevocable && how != RevokeByDeletion {
		// Usage tracking passes these by while they live: after a restart,
		// that is how the bot learns again that reset links cannot be
		// cancelled here.
		rv.boundTokens.Store(true)
		return inv, nil
	}
	var err error
	switch how {
	case RevokeByDeletion:
		err = rv.module.deleteToken(ctx, inv.Token)
	case RevokeByConsumption:
		err = rv.consumeToken(ctx, inv)
	default:
		return inv, errors.New("the server offers no way to revoke a token; it stays valid until it expires")
	}
	if errors.Is(err, ErrTokenBound) {
		return rv.markUnrevocable(ctx, actor, inv)
	}
	if err != nil {
		return inv, err
	}
	if err := rv.store.MarkRevoked(ctx, inv.ID, store.AuditEntry{
		Time: rv.now().UTC(), Actor: actor, Action: ActionTokenRevoked, Subject: inv.ID,
	}); err != nil {
		return inv, err
	}
	inv.Revoked, inv.Unrevocable = true, false
	return inv, nil
}

// markUnrevocable records that the server will not revoke inv's token, so
// that usage tracking stops trying, and says so in the log for the
// operator, who can change it by loading mod_invitebot.
func (rv *revoker) markUnrevocable(ctx context.Context, actor string, inv store.Invite) (store.Invite, error) {
	rv.boundTokens.Store(true)
	detail := "the server accepts the token for its own account only and cannot delete it: valid there until it expires"
	if !inv.Expires.IsZero() {
		detail += " (" + inv.Expires.UTC().Format(time.RFC3339) + ")"
	}
	marked, err := rv.store.MarkUnrevocable(ctx, inv.ID, store.AuditEntry{
		Time: rv.now().UTC(), Actor: actor, Action: ActionTokenUnrevocable, Subject: inv.ID, Detail: detail,
	})
	if err != nil {
		return inv, fmt.Errorf("record that the token of %s cannot be revoked: %w", inv.ID, err)
	}
	rv.log.WarnContext(ctx, "cancelled invite's token cannot be revoked at this server: it works until it expires; load mod_invitebot so that the bot can delete tokens",
		slog.String("id", inv.ID), slog.String("reset_for", inv.ResetFor), slog.Time("expires", inv.Expires))
	return marked, nil
}

// boundTokensUnrevocable reports whether tokens bound to their account
// (reset links) cannot be revoked right now: the server refused to let one
// be used up, and cannot delete tokens either.
func (rv *revoker) boundTokensUnrevocable() bool {
	return rv.boundTokens.Load() && rv.module.revocation() != RevokeByDeletion
}

// consumeToken uses a token up: it registers a throwaway account with it,
// removes that account again, and confirms the server now refuses the
// token.
func (rv *revoker) consumeToken(ctx context.Context, inv store.Invite) error {
	username := "revoked-" + randomHex(6)
	password := randomHex(16)
	account, err := rv.registrar.Register(ctx, inv.Token, username, password)
	switch {
	case errors.Is(err, ErrTokenBound):
		// The server refused the name before creating anything: the token
		// registers its own account only, and no throwaway can use it up.
		return fmt.Errorf("consume token of %s: %w", inv.ID, err)
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
