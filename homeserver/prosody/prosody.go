// Package prosody is the bot's side of a Prosody server: minting invites
// and password reset links through its ad-hoc commands (mod_invites_adhoc),
// what an operator must add to Prosody's configuration when it refuses
// them, and the protocol of mod_invitebot, the optional module in the
// repository's prosody/ directory.
package prosody

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
)

// NodePasswordReset is Prosody 13's command that mints a password reset
// link for a local account (mod_invites_adhoc). Prosody 0.12 has none.
const NodePasswordReset = "xmpp:prosody.im/mod_invites_adhoc#password-reset"

// NodeUserStats is XEP-0133's Get User Statistics command
// (mod_admin_adhoc, Prosody 0.12 and 13). The bot runs it only to learn
// whether an account exists: Prosody answers "User does not exist" for an
// account it does not have, and statistics for one it has. Nothing else
// Prosody offers a component or an account tells the two apart: disco#info
// and the other IQs to an account's bare JID get service-unavailable from
// a stranger either way, and ping gets a result either way.
const NodeUserStats = "http://jabber.org/protocol/admin#user-stats"

// MinterRole is the Prosody 13 role the minter account needs: the name in
// MinterRoleLua.
const MinterRole = "invitebot:minter"

// MinterRoleLua is the Prosody 13 configuration that defines MinterRole:
// a registered user's rights plus the commands the bot runs, account
// invites, password resets and the account check before a reset (user
// statistics: it reads an account's roster size, online resources and
// their IP addresses, and changes nothing), and nothing else (no user
// deletion, no module loading). It goes in the domain's VirtualHost
// section.
const MinterRoleLua = `custom_roles = {
    { name = "invitebot:minter";
      inherits = { "prosody:registered" };
      allow = {
        "adhoc:urn:xmpp:invite#create-account";
        "adhoc:xmpp:prosody.im/mod_invites_adhoc#password-reset";
        "adhoc:http://jabber.org/protocol/admin#user-stats";
      };
    };
}`

// Issuer mints on Prosody through its ad-hoc commands, run by the component
// (an admin of the domain) or by the minter account. Prosody cannot delete
// a token, so its tokens are revoked by consumption (or through
// mod_invitebot, which the service asks for separately).
type Issuer struct {
	adhoc.Issuer
}

// NewIssuer returns an Issuer that runs the commands on server as from
// over link.
func NewIssuer(server, from jid.JID, link adhoc.IQSender) Issuer {
	return Issuer{adhoc.Issuer{Server: server, From: from, Link: link}}
}

// Mint runs urn:xmpp:invite#create-account.
func (p Issuer) Mint(ctx context.Context) (invites.Minted, error) {
	m, err := p.Issuer.Mint(ctx)
	return m, p.withFix(err)
}

// MintReset runs Prosody 13's password reset command for account: the
// first stage asks for the account, the answer is an XEP-0401 result form
// like create-account's.
func (p Issuer) MintReset(ctx context.Context, account jid.JID) (invites.Minted, error) {
	m, err := p.Run(ctx, NodePasswordReset, func(f *dataform.Form) { f.Set("accountjid", account.String()) })
	return m, p.withFix(err)
}

// noSuchUser is the note Prosody's user statistics command completes with
// for an account it does not have (mod_admin_adhoc, 0.12 and 13).
const noSuchUser = "User does not exist"

// AccountExists asks Prosody whether account exists, by running its user
// statistics command (NodeUserStats) for it as From: the component, an
// admin, may; the minter account needs the command in its role
// (MinterRoleLua), and a refusal says so. Only an answer that says either
// way counts: anything else is an error.
func (p Issuer) AccountExists(ctx context.Context, account jid.JID) (bool, error) {
	res, err := p.Complete(ctx, NodeUserStats, func(f *dataform.Form) { f.Set("accountjid", account.Bare().String()) })
	if err != nil {
		return false, fmt.Errorf("does %s exist: %w", account.Bare(), p.withFix(err))
	}
	switch note := res.ErrorNote(); {
	case note == noSuchUser:
		return false, nil
	case note != "":
		return false, fmt.Errorf("does %s exist: the server said %q", account.Bare(), note)
	case res.Form != nil && res.Form.Has("rostersize"):
		return true, nil
	default:
		return false, fmt.Errorf("does %s exist: the server's answer says neither", account.Bare())
	}
}

// OffersResets asks Prosody whether it offers the reset command to From
// (Prosody 13 does, to admins and to the minter role).
func (p Issuer) OffersResets(ctx context.Context) (bool, error) {
	nodes, err := p.Commands(ctx)
	if err != nil {
		return false, err
	}
	return slices.Contains(nodes, NodePasswordReset), nil
}

// Revocation reports that Prosody has no way to delete a token: it is
// consumed instead.
func (Issuer) Revocation() invites.Revocation { return invites.RevokeByConsumption }

// withFix adds to a refusal what Prosody's configuration needs.
func (p Issuer) withFix(err error) error {
	var re *invites.RefusedError
	if !errors.As(err, &re) {
		return err
	}
	re.Fix = Fix(p.Server, re.As, re.Node)
	return err
}

// Fix says what to add to Prosody so that as may run node on the domain
// server: admins for a component, the minter role (13) or admins (0.12)
// for an account.
func Fix(server, as jid.JID, node string) invites.Remedy {
	if as.Localpart() == "" {
		return invites.Remedy{
			Message: "the server refused to mint an invite: add this component to the admins of the domain's VirtualHost",
			Attrs: []slog.Attr{slog.String("prosody_config",
				fmt.Sprintf(`VirtualHost %q: admins = { %q }`, server.String(), as.String()))},
		}
	}
	return invites.Remedy{
		Message: "the server refused the minter account its command; " + MinterFixMessage,
		Attrs:   append(MinterFix(as), slog.String("command", node)),
	}
}

// MinterFixMessage says what MinterFix's attributes hold.
const MinterFixMessage = "add what prosody_13 says (then restart Prosody and run prosody_13_account), or on Prosody 0.12 what prosody_0_12 says"

// MinterFix returns log attributes with exactly what to add to Prosody so
// that account may run the invite commands, for each Prosody version.
func MinterFix(account jid.JID) []slog.Attr {
	domain := account.Domainpart()
	return []slog.Attr{
		slog.String("minter", account.String()),
		slog.String("prosody_13", fmt.Sprintf("VirtualHost %q: %s", domain, strings.Join(strings.Fields(MinterRoleLua), " "))),
		slog.String("prosody_13_account", fmt.Sprintf("prosodyctl shell user set_role %s %s", account, MinterRole)),
		// 0.12 has no roles: only an admin may run the command, and the
		// account then has every admin right. docs/prosody-setup.md says so.
		slog.String("prosody_0_12", fmt.Sprintf("VirtualHost %q: admins = { %q }", domain, account.String())),
	}
}
