package ejabberd

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
)

// Suspend implements invites.Suspender with ban_account: ejabberd keeps
// the account and its data, refuses its logins and ends its sessions.
// Accounts of other domains are refused before ejabberd is asked.
func (e *Issuer) Suspend(ctx context.Context, account jid.JID, reason string) (invites.SuspendHow, error) {
	if err := e.ownAccount(account); err != nil {
		return "", fmt.Errorf("suspend: %w", err)
	}
	// ejabberd bans a name it has no account for as well, and that ban
	// would meet whoever registers the name later.
	exists, err := e.AccountExists(ctx, account)
	switch {
	case err != nil:
		return "", fmt.Errorf("suspend: %w", e.refusal(err))
	case !exists:
		return "", fmt.Errorf("%w: %s does not exist", invites.ErrSuspendRefused, account.Bare())
	}
	if reason == "" {
		reason = "suspended by invitebot"
	}
	res, err := e.API(ctx, CmdBan, "user", account.Localpart(), "reason", reason)
	if err == nil {
		err = resCode(res.Value("res"))
	}
	if err != nil {
		return "", fmt.Errorf("suspend %s: %w", account.Bare(), e.refusal(err))
	}
	return invites.SuspendDisabled, nil
}

// Unsuspend implements invites.Suspender with unban_account.
func (e *Issuer) Unsuspend(ctx context.Context, account jid.JID) error {
	if err := e.ownAccount(account); err != nil {
		return fmt.Errorf("unsuspend: %w", err)
	}
	res, err := e.API(ctx, CmdUnban, "user", account.Localpart())
	if err == nil {
		err = resCode(res.Value("res"))
	}
	if err != nil {
		return fmt.Errorf("unsuspend %s: %w", account.Bare(), e.refusal(err))
	}
	return nil
}

// resCode reads the "res" of a command whose result is a code: 0 is
// success (ejabberd's rescode).
func resCode(v string) error {
	if v != "0" {
		return &APIError{Code: "res", Message: "answered " + v}
	}
	return nil
}

// ownAccount refuses what is not an account of the Issuer's domain.
func (e *Issuer) ownAccount(account jid.JID) error {
	if account.Domainpart() != e.Server.Domainpart() || account.Localpart() == "" {
		return fmt.Errorf("%w: %s is not an account of %s", invites.ErrSuspendRefused, account, e.Server)
	}
	return nil
}

// refusal marks an answer of ejabberd's (an unknown account, a refused
// command) as a refusal that asking again will not change; a link that
// failed stays a plain error.
func (e *Issuer) refusal(err error) error {
	var apiErr *APIError
	if errors.As(err, &apiErr) || errors.Is(err, invites.ErrIssuerForbidden) {
		return fmt.Errorf("%w: %w", invites.ErrSuspendRefused, err)
	}
	return err
}
