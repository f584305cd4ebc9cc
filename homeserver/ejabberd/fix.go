package ejabberd

import (
	"log/slog"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
)

// Fix says what ejabberd.yml needs so that minter may run node: the
// fragment (invitebot ejabberd-config prints it for the bot's
// configuration).
func Fix(minter jid.JID, node string) invites.Remedy {
	return invites.Remedy{
		Message: "ejabberd refused the minter account a command: merge the invitebot fragment into ejabberd.yml (docs/ejabberd-setup.md) and reload ejabberd",
		Attrs: []slog.Attr{
			slog.String("minter", minter.Bare().String()),
			slog.String("command", node),
			slog.String("ejabberd_acl", MinterACL),
			slog.String("ejabberd_access_create_account", CreateAccountRule),
			slog.String("ejabberd_api_permissions", PermissionName),
		},
	}
}
