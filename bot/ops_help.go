package bot

import (
	"context"
	"fmt"
	"strings"

	"durare.org/invitebot/policy"
)

// Help, and the usage lines that help and chat refusals show.

// usage renders an operation's chat syntax for role, e.g. "grant <jid> [note]".
func (op operation) usage(role policy.Role) string {
	var b strings.Builder
	b.WriteString(op.name)
	for _, p := range op.params {
		if !p.visible(role) {
			continue
		}
		switch {
		case p.keyword != "":
			value := p.spec().keywordValue
			if value == "" {
				value = "N"
			}
			fmt.Fprintf(&b, " [%s %s]", p.keyword, value)
		case p.required:
			fmt.Fprintf(&b, " <%s>", p.name)
		default:
			fmt.Fprintf(&b, " [%s]", p.name)
		}
	}
	return b.String()
}

func runHelp(_ context.Context, bot *Bot, req request) (reply, error) {
	var b strings.Builder
	b.WriteString("Commands:")
	for _, op := range operations() {
		if policy.Allows(req.role(), op.perm) && op.available(bot) {
			fmt.Fprintf(&b, "\n  %s: %s", op.usage(req.role()), op.summaryFor(req.role()))
		}
	}
	if req.role() == policy.Stranger {
		b.WriteString("\nAsk an admin of this service if you should be able to invite people.")
	} else {
		b.WriteString("\nClients with an ad-hoc command menu offer the same commands as forms.")
	}
	return reply{text: b.String()}, nil
}
