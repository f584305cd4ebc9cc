package bot

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"durare.org/invitebot/invites"
)

// logIssuerRefused logs, for an operator, what the server must grant so
// that whoever ran its command (the component or the minter account) may:
// the server's package knows what its configuration needs and says so in
// the refusal.
func (b *Bot) logIssuerRefused(ctx context.Context, err error) {
	var re *invites.RefusedError
	if errors.As(err, &re) && re.Fix.Message != "" {
		attrs := append(slices.Clone(re.Fix.Attrs), slog.Any("err", err))
		b.log.LogAttrs(ctx, slog.LevelError, re.Fix.Message, attrs...)
		return
	}
	b.log.ErrorContext(ctx, "the server refused to mint an invite: let the component or the minter account run its invite command",
		slog.String("domain", b.svc.Domain()), slog.String("component", b.component.String()), slog.Any("err", err))
}
