package prosodytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Client tunables.
const (
	// ReplyTimeout is how long Chat and Next wait for a message. The bot
	// answers in milliseconds; the rest is slack for -race on a busy host.
	ReplyTimeout = 10 * time.Second
	// loginTimeout bounds dialling, TLS, SASL and resource binding.
	loginTimeout = 15 * time.Second
	// clientCloseGrace is how long Close waits for the server to end its
	// side of the stream before dropping the connection.
	clientCloseGrace = 2 * time.Second
)

// Message is a message stanza the Client received.
type Message struct {
	From  jid.JID
	To    jid.JID
	ID    string
	Type  stanza.MessageType
	Body  string // first <body/>, "" if none
	Inner string // the raw children re-encoded as XML, for finding extension elements
}

// Client is a real logged-in XMPP client (STARTTLS, SCRAM, bound resource,
// initial presence sent) for driving the bot the way a person would.
type Client struct {
	sess *xmpp.Session
	conn net.Conn
	tag  string // the server's failure prefix, naming its Prosody version

	ended  chan struct{} // closed when the read loop returns
	endErr error         // why it returned; read after ended is closed

	mu     sync.Mutex
	queue  []Message
	notify chan struct{} // capacity 1: "the queue changed"

	closeOnce sync.Once
}

// Endpoint is a server's client port as a Client reaches it. Servers
// other than this package's (ejabberdtest's) describe theirs with one.
type Endpoint struct {
	// Addr is the c2s address, 127.0.0.1:PORT.
	Addr string
	// TLS returns the configuration that trusts the server's certificate
	// for a host.
	TLS func(serverName string) *tls.Config
	// Tag names the server and version in failures.
	Tag string
}

// endpoint is srv's client port.
func (s *Server) endpoint() Endpoint {
	return Endpoint{Addr: s.C2SAddr, TLS: s.TLSConfig, Tag: s.tag()}
}

// Login logs user in on srv with pass and closes the client in t.Cleanup.
// Any failure fails the test; use Dial to test a login that should fail.
func Login(t testing.TB, srv *Server, user jid.JID, pass string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	c, err := Dial(ctx, srv, user, pass)
	if err != nil {
		srv.fatalf(t, "login as %s: %v", user, err) // with the server's log
	}
	t.Cleanup(c.Close)
	return c
}

// LoginAt is Login on any server's client port.
func LoginAt(t testing.TB, ep Endpoint, user jid.JID, pass string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	c, err := DialAt(ctx, ep, user, pass)
	if err != nil {
		t.Fatalf("%s: login as %s: %v", ep.Tag, user, err)
	}
	t.Cleanup(c.Close)
	return c
}

// Dial is Login without the testing.TB: it returns the error, and the caller
// must Close the client.
func Dial(ctx context.Context, srv *Server, user jid.JID, pass string) (*Client, error) {
	return DialAt(ctx, srv.endpoint(), user, pass)
}

// DialAt is Dial on any server's client port.
func DialAt(ctx context.Context, ep Endpoint, user jid.JID, pass string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ep.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", ep.Addr, err)
	}
	// Close on ctx end: mellium's own negotiation deadline handling can miss
	// a blocked read (it sets a past deadline and clears it right away).
	// For the same reason the session gets a context that never ends:
	// mellium arms the connection's deadline from it and can fire that
	// deadline after the handshake, when the caller's context is cancelled
	// on return, under the session's first write (a chat message failed
	// with "i/o timeout" that way on a busy machine).
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sess, err := xmpp.NewClientSession(context.WithoutCancel(ctx), user.Bare(), conn,
		xmpp.StartTLS(ep.TLS(user.Domainpart())),
		xmpp.SASL("", pass, sasl.ScramSha256Plus, sasl.ScramSha1Plus, sasl.ScramSha256, sasl.ScramSha1),
		xmpp.BindResource(),
	)
	if !stop() {
		conn.Close()
		return nil, fmt.Errorf("negotiate session: %w (%v)", context.Cause(ctx), err)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("negotiate session: %w", err)
	}
	c := &Client{
		sess:   sess,
		conn:   conn,
		tag:    ep.Tag,
		ended:  make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	go func() {
		defer close(c.ended)
		c.endErr = sess.Serve(xmpp.HandlerFunc(c.handle))
		c.wake()
	}()
	// Initial presence: without it Prosody treats the resource as not
	// available and stores messages to the bare JID offline.
	if err := c.send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		c.Close()
		return nil, fmt.Errorf("send initial presence: %w", err)
	}
	return c, nil
}

// JID returns the full JID the server bound for this client.
func (c *Client) JID() jid.JID { return c.sess.LocalAddr() }

// Session returns the underlying session (its read loop is running), for
// tests that need raw IQs such as disco or ad-hoc commands.
func (c *Client) Session() *xmpp.Session { return c.sess }

// Send sends a message with body to to.
func (c *Client) Send(ctx context.Context, to jid.JID, typ stanza.MessageType, body string) error {
	msg := stanza.Message{To: to, Type: typ, ID: randomID()}
	payload := xmlstream.Wrap(
		xmlstream.Token(xml.CharData(body)),
		xml.StartElement{Name: xml.Name{Local: "body"}},
	)
	if err := c.send(ctx, msg.Wrap(payload)); err != nil {
		return fmt.Errorf("send message to %s: %w", to, err)
	}
	return nil
}

// send writes a stanza, giving up (and closing the connection) when ctx
// ends first. mellium is not handed ctx itself: it arms a write deadline
// in the past when ctx ends, from a goroutine that can still run after
// Send returned, so a caller cancelling ctx right after (Login does) made
// the next write fail with "i/o timeout" on a busy machine.
func (c *Client) send(ctx context.Context, r xml.TokenReader) error {
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	return c.sess.Send(context.WithoutCancel(ctx), r)
}

// Chat sends body to to as a chat message and returns the body of the next
// message with a body from to (compared as bare JIDs). Messages from others
// and bodiless ones (chat states) stay queued for Next. An error reply or no
// reply within ReplyTimeout fails the test.
func (c *Client) Chat(t testing.TB, to jid.JID, body string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ReplyTimeout)
	defer cancel()
	if err := c.Send(ctx, to, stanza.ChatMessage, body); err != nil {
		t.Fatalf(c.tag+": chat: %v", err)
	}
	m, err := c.take(ctx, func(m Message) bool {
		return m.From.Bare().Equal(to.Bare()) && (m.Body != "" || m.Type == stanza.ErrorMessage)
	})
	if err != nil {
		t.Fatalf(c.tag+": %s got no reply from %s to %q: %v", c.JID(), to, body, err)
	}
	if m.Type == stanza.ErrorMessage {
		t.Fatalf(c.tag+": %s sent %q to %s and got an error: %s", c.JID(), body, to, m.Inner)
	}
	return m.Body
}

// Next returns the oldest received message not yet taken, waiting up to
// ReplyTimeout; none in time fails the test.
func (c *Client) Next(t testing.TB) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ReplyTimeout)
	defer cancel()
	m, err := c.take(ctx, func(Message) bool { return true })
	if err != nil {
		t.Fatalf(c.tag+": %s expected a message: %v", c.JID(), err)
	}
	return m
}

// NextWithin returns the next message if one arrives within d (or is
// already queued), and false otherwise, without failing the test: for
// collecting however many replies a fault left.
func (c *Client) NextWithin(d time.Duration) (Message, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := c.take(ctx, func(Message) bool { return true })
	return m, err == nil
}

// NoMessage fails the test if a message arrives (or is already queued)
// within d. Absence can only be observed over time, so d is the assertion's
// window, not a synchronisation sleep.
func (c *Client) NoMessage(t testing.TB, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := c.take(ctx, func(Message) bool { return true })
	switch {
	case err == nil:
		t.Fatalf(c.tag+": %s expected no message, got %s from %s: %q %s", c.JID(), m.Type, m.From, m.Body, m.Inner)
	case errors.Is(err, context.DeadlineExceeded):
	default:
		t.Fatalf(c.tag+": %s: %v", c.JID(), err)
	}
}

// Receive removes and returns the oldest queued message for which ok
// reports true, waiting for one until ctx ends or the stream does. It is
// Next without the testing.TB, for programs that are not tests
// (cmd/invitebench). With ctx already ended it still returns a message
// that is queued, so it can drain the queue.
func (c *Client) Receive(ctx context.Context, ok func(Message) bool) (Message, error) {
	return c.take(ctx, ok)
}

// Close ends the session and the connection; safe to call more than once.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		select {
		case <-c.ended:
		default:
			_ = c.sess.Close()
			select {
			case <-c.ended:
			case <-time.After(clientCloseGrace):
			}
		}
		_ = c.conn.Close()
		<-c.ended
	})
}

// take removes and returns the first queued message matching ok, waiting for
// one until ctx ends or the stream does.
func (c *Client) take(ctx context.Context, ok func(Message) bool) (Message, error) {
	for {
		if m, found := c.pop(ok); found {
			return m, nil
		}
		select {
		case <-c.notify:
		case <-c.ended:
			// Drain anything that arrived before the end first.
			if m, found := c.pop(ok); found {
				return m, nil
			}
			return Message{}, fmt.Errorf("stream ended: %v", c.endErr)
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

// pop removes and returns the first queued message matching ok.
func (c *Client) pop(ok func(Message) bool) (Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.queue {
		if ok(m) {
			c.queue = append(c.queue[:i:i], c.queue[i+1:]...)
			return m, true
		}
	}
	return Message{}, false
}

// wake tells a waiting take that the queue or the stream changed.
func (c *Client) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// handle runs in the read loop: it queues messages and ignores everything
// else (mellium answers unhandled IQs with service-unavailable). It never
// returns an error, because that would end the stream.
func (c *Client) handle(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local != "message" {
		return nil
	}
	m, err := readMessage(r, *start)
	if err != nil {
		m.Inner = "prosodytest: unreadable message: " + err.Error()
	}
	c.mu.Lock()
	c.queue = append(c.queue, m)
	c.mu.Unlock()
	c.wake()
	return nil
}

// readMessage decodes the attributes and children of a message stanza.
func readMessage(r xml.TokenReader, start xml.StartElement) (Message, error) {
	var m Message
	hdr, err := stanza.NewMessage(start)
	if err != nil {
		return m, err
	}
	m.From, m.To, m.ID, m.Type = hdr.From, hdr.To, hdr.ID, hdr.Type

	var inner bytes.Buffer
	enc := xml.NewEncoder(&inner)
	depth, inBody, haveBody := 0, false, false
	var body bytes.Buffer
	for {
		tok, err := r.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && t.Name.Local == "body" && !haveBody {
				inBody = true
			}
			t = stripNSDecls(t)
			tok = t
		case xml.EndElement:
			if depth == 0 {
				// The message's own end element: not part of the inner XML.
				continue
			}
			if depth == 1 && inBody {
				inBody, haveBody = false, true
			}
			depth--
		case xml.CharData:
			if inBody {
				body.Write(t)
			}
		}
		if err := enc.EncodeToken(xml.CopyToken(tok)); err != nil {
			return m, err
		}
	}
	if err := enc.Flush(); err != nil {
		return m, err
	}
	m.Body = body.String()
	m.Inner = inner.String()
	return m, nil
}

// stripNSDecls drops namespace declaration attributes: the encoder writes
// xmlns itself from the element's resolved name, and keeping both would
// produce duplicate attributes.
func stripNSDecls(t xml.StartElement) xml.StartElement {
	attrs := make([]xml.Attr, 0, len(t.Attr))
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		attrs = append(attrs, a)
	}
	t.Attr = attrs
	return t
}

// randomID returns a fresh stanza id.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b[:])
}
