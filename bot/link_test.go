package bot

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/prosodytest"
)

// Test tunables.
const (
	// upTimeout bounds waiting for the link's first handshake.
	upTimeout = 15 * time.Second
	// deliveryTimeout bounds waiting for every sent message to reach the
	// receiving client once the senders are done. Delivery takes well under
	// a second; the slack is for -race on a shared two-core host.
	deliveryTimeout = 30 * time.Second
	// encodeTimeout is each sender's context: generous, because the point is
	// that it is cancelled right after Encode returns, not that it expires.
	encodeTimeout = 20 * time.Second
)

// startLink runs a Link as srv's component until the test ends and waits
// for it to come up. adjust, when set, changes the configuration first; an
// OnUp it sets is still called. The handler answers nothing; mellium still answers
// IQs addressed to the component with service-unavailable.
func startLink(t *testing.T, srv *prosodytest.Server, adjust func(*LinkConfig)) *Link {
	t.Helper()
	up := make(chan struct{}, 1)
	cfg := LinkConfig{
		Component:  jid.MustParse(srv.Component),
		Server:     srv.ComponentAddr,
		Secret:     []byte(srv.ComponentSecret),
		PingTarget: jid.MustParse(srv.Domain),
	}
	if adjust != nil {
		adjust(&cfg)
	}
	next := cfg.OnUp
	cfg.OnUp = func() {
		select {
		case up <- struct{}{}:
		default:
		}
		if next != nil {
			next()
		}
	}
	link := NewLink(cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- link.Run(ctx, xmpp.HandlerFunc(func(xmlstream.TokenReadEncoder, *xml.StartElement) error { return nil }))
	}()
	// Run must have returned before the test ends: it logs through t.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("link.Run: %v", err)
		}
	})
	select {
	case <-up:
	case <-time.After(upTimeout):
		t.Fatalf("component link not up after %v", upTimeout)
	}
	return link
}

// counter is a logged-in client that only counts the distinct bodies of the
// messages it receives. It is leaner than prosodytest.Client, which keeps
// every message in a queue: thousands of them would make the test measure
// the queue instead of the link.
type counter struct {
	jid  jid.JID
	mu   sync.Mutex
	seen map[string]bool
	// changed is signalled (capacity 1) whenever seen grows.
	changed chan struct{}
}

// dialCounter logs user in on srv and counts what it receives until the
// test ends.
func dialCounter(t *testing.T, srv *prosodytest.Server, user jid.JID, pass string) *counter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	conn, err := new(net.Dialer).DialContext(ctx, "tcp", srv.C2SAddr)
	if err != nil {
		t.Fatal(err)
	}
	// A plain deadline bounds the login: mellium would arm one from ctx
	// and, when ctx ends, move it into the past under a later read.
	_ = conn.SetDeadline(time.Now().Add(upTimeout))
	sess, err := xmpp.NewClientSession(context.WithoutCancel(ctx), user, conn,
		xmpp.StartTLS(srv.TLSConfig(user.Domainpart())),
		xmpp.SASL("", pass, sasl.ScramSha256, sasl.ScramSha1),
		xmpp.BindResource(),
	)
	if err != nil {
		conn.Close()
		t.Fatalf("login as %s: %v", user, err)
	}
	_ = conn.SetDeadline(time.Time{})
	c := &counter{jid: sess.LocalAddr(), seen: make(map[string]bool), changed: make(chan struct{}, 1)}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = sess.Serve(xmpp.HandlerFunc(c.handle))
	}()
	t.Cleanup(func() {
		_ = sess.Close()
		conn.Close()
		<-served
	})
	// Without initial presence Prosody stores messages offline instead of
	// delivering them.
	if err := sess.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		t.Fatalf("initial presence: %v", err)
	}
	return c
}

func (c *counter) handle(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local != "message" {
		return nil
	}
	var m struct {
		Body string `xml:"body"`
	}
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&m); err != nil {
		return nil
	}
	c.mu.Lock()
	c.seen[m.Body] = true
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return nil
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// await waits until n distinct bodies arrived or d passed, and returns how
// many did.
func (c *counter) await(n int, d time.Duration) int {
	deadline := time.After(d)
	for {
		if got := c.count(); got >= n {
			return got
		}
		select {
		case <-c.changed:
		case <-deadline:
			return c.count()
		}
	}
}

// TestLinkConcurrentRepliesNoneLost drives thousands of replies through one
// link from many goroutines at once, each with its own context cancelled
// right after Encode returns, the way a worker's request context ends after
// its reply. Every reply must be accepted and arrive, on the first session.
// Before the link had a writer of its own, each Encode armed the shared
// connection's write deadline from its context; a cancelled context could
// move the deadline into the past under another goroutine's write, and
// every later write failed with i/o timeout.
func TestLinkConcurrentRepliesNoneLost(t *testing.T) {
	t.Parallel()
	const (
		senders = 20 // the "20 clients sending help at once"
		// The old code lost replies in 8 of 8 runs at this size (-race,
		// two cores), in 17 of 20 at half of it: the fault is a race, so
		// fewer writes let it slip through.
		perSender = 2000
		total     = senders * perSender
	)
	srv := prosodytest.Start(t)
	user := srv.AddUser(t, "counter", srv.Domain, "counter-pass")
	rcv := dialCounter(t, srv, user, "counter-pass")
	link := startLink(t, srv, nil)

	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range perSender {
				ctx, cancel := context.WithTimeout(context.Background(), encodeTimeout)
				err := link.Encode(ctx, outboundMessage{To: rcv.jid.String(), From: srv.Component,
					Type: stanza.ChatMessage, Body: fmt.Sprintf("%d/%d", s, i)})
				cancel()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	// Wait only for what was accepted, so that a failing run reports
	// without waiting out the timeout.
	got := rcv.await(total-int(failed.Load()), deliveryTimeout)
	t.Logf("%d senders x %d replies: %d Encode errors, %d of %d received, %d reconnects",
		senders, perSender, failed.Load(), got, total, link.Reconnects())
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d Encode calls failed; first: %v", n, total, firstErr.Load())
	}
	if got != total {
		t.Errorf("receiver got %d of %d replies", got, total)
	}
	if n := link.Reconnects(); n != 0 {
		t.Errorf("link reconnected %d times under load", n)
	}
}

// upSignal returns an OnUp hook and the channel it signals, one value per
// handshake (buffered generously: tests count them).
func upSignal() (func(), chan struct{}) {
	ch := make(chan struct{}, 16)
	return func() { ch <- struct{}{} }, ch
}

// sendBody sends body to c through link and fails the test if Encode does.
func sendBody(t *testing.T, link *Link, c *counter, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), encodeTimeout)
	defer cancel()
	err := link.Encode(ctx, outboundMessage{To: c.jid.String(), From: link.cfg.Component.String(),
		Type: stanza.ChatMessage, Body: body})
	if err != nil {
		t.Fatalf("Encode %q: %v", body, err)
	}
}

// TestLinkRefusesOversizeStanza checks that a stanza over the maximum is
// refused with ErrStanzaTooLarge while the link stays up and carries the
// next one, and that the refusal is needed: Prosody drops the whole link
// for a stanza over its own limit.
func TestLinkRefusesOversizeStanza(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	user := srv.AddUser(t, "counter", srv.Domain, "counter-pass")
	rcv := dialCounter(t, srv, user, "counter-pass")

	t.Run("refused", func(t *testing.T) {
		link := startLink(t, srv, nil)
		ctx, cancel := context.WithTimeout(context.Background(), encodeTimeout)
		defer cancel()
		big := strings.Repeat("x", DefaultMaxStanzaBytes)
		err := link.Encode(ctx, outboundMessage{To: rcv.jid.String(), From: srv.Component,
			Type: stanza.ChatMessage, Body: big})
		if !errors.Is(err, ErrStanzaTooLarge) {
			t.Fatalf("Encode of a %d-byte body = %v, want ErrStanzaTooLarge", len(big), err)
		}
		t.Logf("refused: %v", err)
		sendBody(t, link, rcv, "after-refusal")
		if got := rcv.await(1, deliveryTimeout); got != 1 {
			t.Fatal("the stanza after the refused one did not arrive")
		}
		if !link.Up() || link.Reconnects() != 0 {
			t.Fatalf("link up %v, reconnects %d after a refusal; want up, 0", link.Up(), link.Reconnects())
		}
	})

	t.Run("server drops the link without it", func(t *testing.T) {
		onUp, ups := upSignal()
		link := startLink(t, srv, func(c *LinkConfig) {
			c.MaxStanzaBytes = 1 << 20
			c.MinBackoff = 50 * time.Millisecond
			c.OnUp = onUp
		})
		<-ups // the first handshake, which startLink waited for
		ctx, cancel := context.WithTimeout(context.Background(), encodeTimeout)
		defer cancel()
		// Encode may well succeed: the server reads it and only then hangs up.
		_ = link.Encode(ctx, outboundMessage{To: rcv.jid.String(), From: srv.Component,
			Type: stanza.ChatMessage, Body: strings.Repeat("x", 600<<10)})
		select {
		case <-ups:
		case <-time.After(deliveryTimeout):
			t.Fatal("Prosody kept the link after a 600 KiB stanza: the reason for MaxStanzaBytes is gone")
		}
	})
}

// TestLinkRedialsAtOnceAfterWriteFailure breaks the session's stream the
// way the old bug did (a write that fails with a timeout leaves mellium's
// buffered encoder failing for good) and checks that the link notices on
// its next write and reconnects without waiting for the keepalive or the
// backoff, and that the stanza after that arrives.
func TestLinkRedialsAtOnceAfterWriteFailure(t *testing.T) {
	t.Parallel()
	const (
		// The keepalive and backoff are far longer than the test may wait,
		// so only the immediate redial can bring the link back in time.
		pingInterval = time.Hour
		minBackoff   = time.Minute
		redialWithin = 10 * time.Second
	)
	srv := prosodytest.Start(t)
	user := srv.AddUser(t, "counter", srv.Domain, "counter-pass")
	rcv := dialCounter(t, srv, user, "counter-pass")
	onUp, ups := upSignal()
	link := startLink(t, srv, func(c *LinkConfig) {
		c.PingInterval = pingInterval
		c.MinBackoff = minBackoff
		c.MaxBackoff = minBackoff
		c.OnUp = onUp
	})
	<-ups // the first handshake, which startLink waited for

	st, err := link.current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := st.sess.TokenWriter()
	conn := st.sess.Conn()
	_ = conn.SetWriteDeadline(time.Unix(1, 0))
	if err := w.EncodeToken(xml.CharData(" ")); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err == nil {
		t.Fatal("a write past its deadline succeeded; the stream is not broken")
	}
	_ = conn.SetWriteDeadline(time.Time{})
	_ = w.Close()

	ctx, cancel := context.WithTimeout(context.Background(), encodeTimeout)
	defer cancel()
	broke := time.Now()
	err = link.Encode(ctx, outboundMessage{To: rcv.jid.String(), From: srv.Component,
		Type: stanza.ChatMessage, Body: "on-broken-stream"})
	if err == nil {
		t.Fatal("Encode on a broken stream succeeded")
	}
	select {
	case <-ups:
		t.Logf("link back %v after the failed write", time.Since(broke).Round(time.Millisecond))
	case <-time.After(redialWithin):
		t.Fatalf("link not back %v after a failed write", redialWithin)
	}
	sendBody(t, link, rcv, "after-redial")
	if got := rcv.await(1, deliveryTimeout); got != 1 {
		t.Fatal("the stanza after the redial did not arrive")
	}
	if n := link.Reconnects(); n != 1 {
		t.Fatalf("reconnects = %d, want 1", n)
	}
}

// TestLinkIQsUnderConcurrentLoad sends many pings at once, each with its
// own context cancelled as soon as its answer is in, and checks that every
// one is answered: answers are matched by the link, not by mellium, whose
// SendIQ would arm the connection's deadline from each context.
func TestLinkIQsUnderConcurrentLoad(t *testing.T) {
	t.Parallel()
	const (
		senders   = 20
		perSender = 50
	)
	srv := prosodytest.Start(t)
	link := startLink(t, srv, nil)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for range perSender {
				ctx, cancel := context.WithTimeout(context.Background(), encodeTimeout)
				err := link.ping(ctx)
				cancel()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d pings failed; first: %v", n, senders*perSender, firstErr.Load())
	}
	if n := link.Reconnects(); n != 0 {
		t.Fatalf("link reconnected %d times under load", n)
	}
}

// TestLinkMarshal checks the bytes the writer puts on the wire: what
// mellium's encoder used to write, and the size limit.
func TestLinkMarshal(t *testing.T) {
	t.Parallel()
	l := NewLink(LinkConfig{MaxStanzaBytes: 200}, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	ping := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: "urn:xmpp:ping", Local: "ping"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: "urn:xmpp:ping"}},
	})
	tests := []struct {
		name string
		v    any
		want *regexp.Regexp
		err  error
	}{{
		name: "message gets an id, keeps its extension namespace",
		v: outboundMessage{To: "a@b.test", From: "invites.b.test", Type: stanza.ChatMessage, Body: "hi",
			OOB: &oobData{URL: "https://b.test/q.png"}},
		want: regexp.MustCompile(`^<message to="a@b.test" from="invites.b.test" type="chat" id="[0-9a-f]{16}">` +
			`<body>hi</body><x xmlns="jabber:x:oob"><url>https://b.test/q.png</url></x></message>$`),
	}, {
		name: "empty from and id are dropped, a duplicate xmlns too",
		v:    stanza.IQ{Type: stanza.GetIQ, To: jid.MustParse("b.test")}.Wrap(ping),
		want: regexp.MustCompile(`^<iq type="get" to="b.test" id="[0-9a-f]{16}"><ping xmlns="urn:xmpp:ping"></ping></iq>$`),
	}, {
		name: "over the maximum",
		v:    outboundMessage{To: "a@b.test", Body: strings.Repeat("x", 200)},
		err:  ErrStanzaTooLarge,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := l.marshal(tc.v)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("marshal = %q, %v; want %v", b, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want.Match(b) {
				t.Fatalf("marshal = %s\nwant match for %s", b, tc.want)
			}
		})
	}
}
