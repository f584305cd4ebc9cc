package prosody

import (
	"context"
	"log/slog"
	"slices"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/invites"
)

// CheckRights is the minter session's check after each login on Prosody
// (minter.Config.CheckRights): it asks which commands Prosody offers the
// account and, when account invites are not among them, logs what to add
// to the configuration.
func CheckRights(ctx context.Context, log *slog.Logger, account jid.JID, link adhoc.IQSender) {
	iss := adhoc.Issuer{Server: account.Domain(), From: account, Link: link}
	nodes, err := iss.Commands(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.WarnContext(ctx, "could not ask the server what the minter account may run", slog.Any("err", err))
		}
		return
	}
	if slices.Contains(nodes, invites.NodeCreateAccount) {
		log.InfoContext(ctx, "the minter account may create invites", slog.String("minter", account.String()),
			slog.Bool("password_resets", slices.Contains(nodes, NodePasswordReset)))
		return
	}
	log.LogAttrs(ctx, slog.LevelError, "the server does not let the minter account create invites; "+MinterFixMessage,
		MinterFix(account)...)
}
