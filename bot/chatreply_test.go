package bot

import (
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"
)

// writeRecorder keeps every value handed to Encode: one call is one write
// on the link.
type writeRecorder struct {
	mu     sync.Mutex
	writes []any
}

func (o *writeRecorder) Encode(_ context.Context, v any) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes = append(o.writes, v)
	return nil
}

func (o *writeRecorder) all() []any {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]any(nil), o.writes...)
}

// TestInviteReplyIsOneWrite: the invite reply and its QR image leave in
// one write on the link, text first, the image as a message whose body is
// its URL, both carrying the thread of the request. Written apart, the
// server's Nagle holds the image and stalls the person's next reply
// (issue 22 #5).
func TestInviteReplyIsOneWrite(t *testing.T) {
	f := newFixture(t)
	out := &writeRecorder{}
	b := New(Config{Service: f.bot.svc, Component: jid.MustParse("invites.durare.test"), Log: f.bot.log, Now: f.clock.now, Out: out,
		Links: func(id string) (string, string) {
			return "https://durare.test/i/" + id, "https://durare.test/i/" + id + "/qr.png"
		}})
	t.Cleanup(func() { _ = b.Drain(context.Background()) })

	raw := fmt.Sprintf(`<message xmlns='jabber:component:accept' from='%s/r' to='invites.durare.test' type='chat' id='m1'>`+
		`<body>invite</body><thread parent='p1'>t-42</thread></message>`, admin)
	feedRaw(t, b, raw)
	if err := b.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	writes := out.all()
	if len(writes) != 1 {
		t.Fatalf("%d writes for one invite reply, want 1: %#v", len(writes), writes)
	}
	l := NewLink(LinkConfig{MaxStanzaBytes: 1 << 19}, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	wire, err := l.marshal(writes[0])
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^<message to="` + regexp.QuoteMeta(admin) + `/r" from="invites.durare.test" type="chat" id="[0-9a-f]{16}">` +
		`<body>[^<]*preauth=[^<]*</body><thread parent="p1">t-42</thread></message>` +
		`<message to="` + regexp.QuoteMeta(admin) + `/r" from="invites.durare.test" type="chat" id="[0-9a-f]{16}">` +
		`<body>(https://durare.test/i/[^<]*/qr.png)</body><thread parent="p1">t-42</thread>` +
		`<x xmlns="jabber:x:oob"><url>(https://durare.test/i/[^<]*/qr.png)</url></x></message>$`)
	m := want.FindSubmatch(wire)
	if m == nil {
		t.Fatalf("on the wire:\n%s\nwant text then image, one thread, matching %s", wire, want)
	}
	if string(m[1]) != string(m[2]) {
		t.Errorf("image body %s differs from its XEP-0066 URL %s: clients would not show it inline", m[1], m[2])
	}
}

// TestReplyThread: a thread is copied into the reply when there is one and
// it is short; an overlong one is not echoed.
func TestReplyThread(t *testing.T) {
	tests := []struct {
		in   *messageThread
		want *messageThread
	}{
		{nil, nil},
		{&messageThread{ID: ""}, nil},
		{&messageThread{ID: "abc"}, &messageThread{ID: "abc"}},
		{&messageThread{ID: "abc", Parent: "p"}, &messageThread{ID: "abc", Parent: "p"}},
		{&messageThread{ID: strings.Repeat("x", maxThreadBytes+1)}, nil},
	}
	for _, tc := range tests {
		got := replyThread(inboundMessage{Thread: tc.in})
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("replyThread(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// feedRaw hands the bot one stanza as the link's read loop would.
func feedRaw(t *testing.T, b *Bot, raw string) {
	t.Helper()
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

// TestBusyAnswerKeepsThread: the answer to a message the bot could not
// take carries the message's thread like any reply, so the sender can tell
// which request was turned away.
func TestBusyAnswerKeepsThread(t *testing.T) {
	b, out, f := newHeldBot(t)
	f.mustSay(t, admin, "grant "+inviter)
	for i := range maxPerSender + 10 {
		feedRaw(t, b, fmt.Sprintf(`<message xmlns='jabber:component:accept' from='%s/r' to='invites.durare.test' type='chat'>`+
			`<body>help</body><thread>t-%d</thread></message>`, inviter, i))
	}
	close(out.release)
	awaitReplies(t, out, maxPerSender+1)
	out.mu.Lock()
	defer out.mu.Unlock()
	busy := 0
	for _, m := range out.msgs {
		if m.Thread == nil || !strings.HasPrefix(m.Thread.ID, "t-") {
			t.Errorf("reply %q without the request's thread: %+v", m.Body, m.Thread)
		}
		if m.Body == msgBusyDropped {
			busy++
		}
	}
	if busy != 1 {
		t.Errorf("%d busy answers, want 1", busy)
	}
}
