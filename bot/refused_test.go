package bot

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
)

// TestRefusalLogsTheServersFix: when the server refuses its invite
// command, the inviter gets the short answer and the log gets what the
// server's package says to change, word for word.
func TestRefusalLogsTheServersFix(t *testing.T) {
	var logs bytes.Buffer
	b := &Bot{log: slog.New(slog.NewTextHandler(&logs, nil))}
	refused := &invites.RefusedError{Node: invites.NodeCreateAccount, As: jid.MustParse("minter@durare.test"),
		Condition: "forbidden", Err: fmt.Errorf("forbidden"),
		Fix: invites.Remedy{Message: "add the role", Attrs: []slog.Attr{slog.String("prosody_13", "custom_roles = {...}")}}}
	got := b.userMessage(context.Background(), operation{name: "invite"}, request{}, fmt.Errorf("create invite: %w", refused))
	if got != msgIssuerRefuse {
		t.Errorf("reply %q, want %q", got, msgIssuerRefuse)
	}
	for _, want := range []string{"level=ERROR", `msg="add the role"`, `prosody_13="custom_roles = {...}"`, "minter@durare.test"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestUnreachableServerAnswersUnavailable: whatever carries the server's
// commands (the link, the minter account's session), its being down is
// answered the same way.
func TestUnreachableServerAnswersUnavailable(t *testing.T) {
	b := &Bot{log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	err := fmt.Errorf("create invite: %w", fmt.Errorf("minter session is down: %w", invites.ErrServerUnreachable))
	if got := b.userMessage(context.Background(), operation{name: "invite"}, request{}, err); got != msgUnavailable {
		t.Errorf("reply %q, want %q", got, msgUnavailable)
	}
}
