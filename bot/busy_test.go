package bot

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/testwait"
)

// heldOut keeps every reply the bot sends, and holds the workers that send
// them until release: a burst then stays queued while it is being fed.
type heldOut struct {
	mu      sync.Mutex
	bodies  []string
	msgs    []outboundMessage // every message, of batches too
	release chan struct{}
}

func (o *heldOut) Encode(ctx context.Context, v any) error {
	select {
	case <-o.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch m := v.(type) {
	case outboundMessage:
		o.bodies = append(o.bodies, m.Body)
		o.msgs = append(o.msgs, m)
	case []outboundMessage:
		// A reply with an image is one write of two messages; the text
		// is the answer.
		o.bodies = append(o.bodies, m[0].Body)
		o.msgs = append(o.msgs, m...)
	}
	return nil
}

func (o *heldOut) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.bodies...)
}

// feedChat hands the bot one chat message from from, as the link would.
func feedChat(t *testing.T, b *Bot, from, body string) {
	t.Helper()
	raw := fmt.Sprintf(`<message xmlns='jabber:component:accept' from='%s/r' to='invites.durare.test' type='chat'><body>%s</body></message>`, from, body)
	d := xml.NewDecoder(strings.NewReader(raw))
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	start := tok.(xml.StartElement)
	tre := &inlineTRE{TokenReader: d}
	tre.enc = xml.NewEncoder(&tre.sent)
	if err := b.HandleXMPP(tre, &start); err != nil {
		t.Fatalf("HandleXMPP = %v", err)
	}
}

// awaitReplies waits until out holds n replies (each worker sends one).
func awaitReplies(t *testing.T, out *heldOut, n int) []string {
	t.Helper()
	testwait.For(t, deliveryWait, fmt.Sprintf("%d replies", n), func() bool { return len(out.all()) >= n })
	return out.all()
}

// deliveryWait bounds waiting for a burst's replies on a busy machine.
const deliveryWait = 30 * time.Second

func newHeldBot(t *testing.T) (*Bot, *heldOut, *fixture) {
	t.Helper()
	f := newFixture(t)
	out := &heldOut{release: make(chan struct{})}
	b := New(Config{Service: f.bot.svc, Component: jid.MustParse("invites.durare.test"), Log: f.bot.log, Now: f.clock.now, Out: out})
	t.Cleanup(func() { _ = b.Drain(context.Background()) })
	return b, out, f
}

// TestAdminBurstIsNotDropped: a hundred grants pasted at once by an admin
// are all run and all answered (issue 22: 16 of 100 vanished).
func TestAdminBurstIsNotDropped(t *testing.T) {
	b, out, f := newHeldBot(t)
	const burst = 100
	for i := range burst {
		feedChat(t, b, admin, fmt.Sprintf("grant helper%d@elsewhere.test", i))
	}
	close(out.release)
	replies := awaitReplies(t, out, burst)
	for _, r := range replies {
		if strings.Contains(r, "could not take") || strings.Contains(r, "waited too long") {
			t.Fatalf("an admin's request was turned away: %q", r)
		}
	}
	grants, err := b.svc.Inviters(context.Background(), f.actor(t, admin))
	if err != nil || len(grants) != burst {
		t.Errorf("%d grants stored (%v), want %d", len(grants), err, burst)
	}
}

// TestDroppedChatIsAnswered: past a sender's share, a message is not run,
// and the sender is told so (once for the burst) instead of waiting for a
// reply that never comes.
func TestDroppedChatIsAnswered(t *testing.T) {
	b, out, f := newHeldBot(t)
	f.mustSay(t, admin, "grant "+inviter)
	for range maxPerSender + 10 {
		feedChat(t, b, inviter, "help")
	}
	close(out.release)
	replies := awaitReplies(t, out, maxPerSender+1)
	busy := 0
	for _, r := range replies {
		if r == msgBusyDropped {
			busy++
		}
	}
	if busy != 1 {
		t.Errorf("%d busy answers among %d replies, want exactly 1 for the burst", busy, len(replies))
	}
}
