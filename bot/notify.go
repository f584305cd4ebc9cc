package bot

import (
	"context"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/invites"
)

// Notifier sends chat messages from the component to people, for news they
// did not ask for right then (an invite of theirs was used). It implements
// invites.Notifier: the service says what happened, this says it in words.
type Notifier struct {
	out  Encoder
	from jid.JID
}

// NewNotifier returns a Notifier sending through out as from.
func NewNotifier(out Encoder, from jid.JID) *Notifier {
	return &Notifier{out: out, from: from}
}

// Notify tells the bare JID to about ev in a chat message. News about
// account requests repeats what a stranger wrote, so it asks clients not
// to style it.
func (n *Notifier) Notify(ctx context.Context, to string, ev invites.Event) error {
	var plain bool
	switch ev.(type) {
	case invites.RequestReceived, invites.RequestAnswered:
		plain = true
	}
	return n.out.Encode(ctx, outboundMessage{To: to, From: n.from.String(), Type: stanza.ChatMessage, Body: eventText(ev),
		Unstyled: unstyled(plain)})
}
