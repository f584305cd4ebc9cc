package ejabberd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
)

// NodeAPIPrefix starts the ad-hoc node under which mod_adhoc_api offers
// an API command: "api-commands/NAME".
const NodeAPIPrefix = "api-commands/"

// ErrTooManyInvites means ejabberd refused to mint because the minter's
// invites reached its limit: mod_invites allows an inviter 1000 tokens,
// used ones and those of the accounts they created included, and
// max_invites fewer unless the inviter is an admin. Deleting tokens at the
// server frees room.
var ErrTooManyInvites = errors.New("ejabberd refused: the minter account has reached its invite limit")

// Issuer mints on ejabberd as the minter account, and runs the API
// commands for resets, usage, deletion and the account check. Its methods
// implement invites.Issuer, ResetIssuer, AccountChecker, Revoker, Deleter
// and UsageLister.
//
// It must be used as a pointer: it remembers what Detect found.
type Issuer struct {
	adhoc.Issuer

	caps atomic.Pointer[Capabilities] // nil until Detect answered
}

// NewIssuer returns an Issuer that runs the commands as minter (a bare
// JID of the domain accounts are created on) over link, the minter
// account's session.
func NewIssuer(minter jid.JID, link adhoc.IQSender) *Issuer {
	minter = minter.Bare()
	return &Issuer{Issuer: adhoc.Issuer{Server: minter.Domain(), From: minter, Link: link}}
}

// Mint runs urn:xmpp:invite#create-account: the first stage asks for a
// username (left empty: the invitee chooses) and a roster subscription
// (none: the minter is no contact of anyone), the result is the XEP-0401
// invitation form.
func (e *Issuer) Mint(ctx context.Context) (invites.Minted, error) {
	m, err := e.Run(ctx, invites.NodeCreateAccount, func(f *dataform.Form) {
		f.Set("username", "")
		f.Set("roster-subscription", "false")
	})
	return m, e.classify(err)
}

// MintReset runs generate_reset_token for account: its token lets the
// account's owner set a new password by registering as the account
// (ejabberd binds it to the username). ejabberd refuses an account it
// does not have.
func (e *Issuer) MintReset(ctx context.Context, account jid.JID) (invites.Minted, error) {
	if account.Domainpart() != e.Server.Domainpart() || account.Localpart() == "" {
		return invites.Minted{}, fmt.Errorf("reset link for %s: not an account of %s", account, e.Server)
	}
	res, err := e.API(ctx, CmdResetToken, "username", account.Localpart())
	if err != nil {
		return invites.Minted{}, fmt.Errorf("reset link for %s: %w", account.Bare(), err)
	}
	return mintedFromInvite(res.Value("invite"))
}

// AccountExists runs check_account (mod_admin_extra) for account.
func (e *Issuer) AccountExists(ctx context.Context, account jid.JID) (bool, error) {
	if account.Domainpart() != e.Server.Domainpart() || account.Localpart() == "" {
		return false, fmt.Errorf("does %s exist: not an account of %s", account, e.Server)
	}
	res, err := e.API(ctx, CmdCheck, "user", account.Localpart())
	if err != nil {
		return false, fmt.Errorf("does %s exist: %w", account.Bare(), err)
	}
	switch v := res.Value("res"); v {
	case "0":
		return true, nil
	case "1":
		return false, nil
	default:
		return false, fmt.Errorf("does %s exist: check_account answered %q", account.Bare(), v)
	}
}

// Delete runs delete_invite_by_token. Deleting, unlike expiring, also
// stops a stream that passed preauth with the token earlier. A token
// ejabberd does not know is gone already: that is no error.
func (e *Issuer) Delete(ctx context.Context, token string) error {
	res, err := e.API(ctx, CmdDelete, "token", token)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.notFound() {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete token %s: %w", invites.RedactToken(token), err)
	}
	if v := res.Value("res"); v != "0" {
		return fmt.Errorf("delete token %s: delete_invite_by_token answered %q", invites.RedactToken(token), v)
	}
	return nil
}

// Revocation reports deletion, unless Detect found that ejabberd refuses
// the minter delete_invite_by_token: tokens are then consumed instead.
func (e *Issuer) Revocation() invites.Revocation {
	if c := e.caps.Load(); c != nil && !c.Delete {
		return invites.RevokeByConsumption
	}
	return invites.RevokeByDeletion
}

// API runs api-commands/NAME with the domain as host and args as pairs of
// field name and value, and returns the completed form. An API error (a
// completed form whose field "error" says "Error CODE: ...") is an
// *APIError, a refusal of the permission also an *invites.RefusedError.
func (e *Issuer) API(ctx context.Context, name string, args ...string) (*dataform.Form, error) {
	if len(args)%2 != 0 {
		return nil, fmt.Errorf("api %s: odd arguments", name)
	}
	node := NodeAPIPrefix + name
	res, err := e.Complete(ctx, node, func(f *dataform.Form) {
		f.Set("host", e.Server.Domainpart())
		for i := 0; i < len(args); i += 2 {
			f.Set(args[i], args[i+1])
		}
	})
	if err != nil {
		return nil, e.classify(err)
	}
	if res.Form == nil {
		return nil, fmt.Errorf("api %s: completed without a form", name)
	}
	if res.Form.Has("error") {
		return nil, e.apiError(node, res.Form)
	}
	return res.Form, nil
}

// mintedFromInvite reads the "invite" result of generate_reset_token,
// "URI : LANDING", or "URI :" without a landing page (the form's value
// loses its trailing space). The URI holds no space, so the first " :"
// ends it.
func mintedFromInvite(v string) (invites.Minted, error) {
	uri, landing, _ := strings.Cut(strings.TrimSpace(v), " :")
	p, err := invites.ParseURI(uri)
	if err != nil {
		return invites.Minted{}, fmt.Errorf("reset link: %w", err)
	}
	return invites.Minted{URI: uri, Token: p.Token, LandingURL: strings.TrimSpace(landing)}, nil
}
