package bot

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/reconnect"
)

// Link tunables. Tests shorten them through LinkConfig.
const (
	// handshakeTimeout bounds dialling plus the XEP-0114 handshake, so a
	// server that accepts TCP but never answers cannot stall reconnection.
	handshakeTimeout = 15 * time.Second
	// defaultWriteTimeout bounds writing one stanza to the connection. It is
	// the writer's own deadline, never a caller's: a write that takes this
	// long means the server stopped reading, and the link is rebuilt.
	defaultWriteTimeout = 10 * time.Second
	// DefaultMaxStanzaBytes is the largest stanza the link sends unless
	// LinkConfig says otherwise. Prosody closes a component stream that
	// carries a stanza over its limit (component_stanza_size_limit, else
	// s2s_stanza_size_limit, 512 KiB by default), which would cut off every
	// reply in flight. Half of that leaves room for a server configured
	// lower and for a stanza re-serialised longer on its way to a remote
	// server with the same limit.
	DefaultMaxStanzaBytes = 256 << 10
	// iqIDBytes is the entropy of the ids the link gives IQs: the id is what
	// matches an answer to its request, so it must not be guessable.
	iqIDBytes = 8
)

// ErrLinkDown is returned when a stanza must go out while there is no
// component link.
var ErrLinkDown = errors.New("component link is down")

// ErrStanzaTooLarge is returned for a stanza over the link's maximum. The
// stanza is not sent and the link stays up.
var ErrStanzaTooLarge = errors.New("stanza too large for the component link")

// errWriteFailed marks a session that ended because a write failed.
var errWriteFailed = errors.New("write failed")

// LinkConfig says where and how the component connects.
type LinkConfig struct {
	// Component is the component's JID (e.g. invites.example.org).
	Component jid.JID
	// Server is host:port of the server's XEP-0114 listener.
	Server string
	// Secret is the shared component secret.
	Secret []byte
	// PingTarget is pinged to detect a dead link (the server's domain).
	PingTarget jid.JID

	// PingInterval, PingTimeout, MinBackoff, MaxBackoff and WriteTimeout
	// default to the tunables above when zero.
	PingInterval, PingTimeout, MinBackoff, MaxBackoff, WriteTimeout time.Duration

	// MaxStanzaBytes is the largest stanza, as written on the wire, that the
	// link sends; larger ones are refused with ErrStanzaTooLarge. Zero means
	// DefaultMaxStanzaBytes. It must stay below the server's own limit
	// (Prosody: 512 KiB), past which the server drops the whole link.
	MaxStanzaBytes int

	// OnUp, when set, is called after each successful handshake (metrics,
	// tests).
	OnUp func()
}

// Link keeps one XEP-0114 component session alive: it dials, serves
// stanzas to the handler, pings, and dials again with exponential backoff
// and jitter after any drop. Outgoing stanzas go through Encode and
// SendIQElement, which hand them to the current session's writer.
//
// One writer goroutine per session does every write the link makes, with a
// deadline of its own per write. Callers' contexts only bound their wait
// for a turn: mellium arms the shared connection's write deadline from the
// context given to Session.Encode, and a context that ends (a request
// finishing) moves that deadline into the past under whatever write is in
// progress, after which mellium's buffered encoder fails every write.
type Link struct {
	cfg LinkConfig
	log *slog.Logger

	mu  sync.Mutex
	cur *linkSession // nil while the link is down
	// upCh is closed when a session becomes current, and replaced by an
	// open one when it ends: what a stanza waits on while the link is
	// down (current). running is set while Run keeps the link up; no
	// stanza waits for a link nobody runs.
	upCh    chan struct{}
	running bool

	// pending holds the IQs waiting for an answer, by id. The link matches
	// answers itself rather than through mellium's SendIQ, which would arm
	// the connection's deadline from the caller's context.
	pendingMu sync.Mutex
	pending   map[string]*pendingIQ

	reconnects atomic.Uint64
	// heard is when the last stanza arrived (Unix nanoseconds): any
	// stanza proves the link alive, so the keepalive pings only a quiet
	// link and never drops one whose server is merely slow.
	heard atomic.Int64
}

// lastHeard is when the last stanza arrived from the server.
func (l *Link) lastHeard() time.Time { return time.Unix(0, l.heard.Load()) }

// linkSession is one established component session and its writer.
type linkSession struct {
	sess *xmpp.Session
	// queue hands stanzas to the writer. It is unbuffered, so a caller
	// whose context ends before the writer takes its stanza knows the
	// stanza was not sent.
	queue chan writeRequest
	// done is closed when the session has ended.
	done chan struct{}
	// broken is closed by the writer when a write failed, after it set
	// writeErr. The session then ends at once instead of at the next
	// keepalive, and nobody waits for this stream any more.
	broken   chan struct{}
	writeErr error
}

// failure returns the write error that broke st, or nil.
func (st *linkSession) failure() error {
	select {
	case <-st.broken:
		return st.writeErr
	default:
		return nil
	}
}

// writeRequest is one stanza, already encoded, for the writer.
type writeRequest struct {
	data   []byte
	result chan<- error // buffered: the writer never waits on it
}

// pendingIQ is an IQ waiting for its answer.
type pendingIQ struct {
	// to is whom the IQ was addressed to: only an answer from there counts.
	to    jid.JID
	reply chan []xml.Token // buffered, receives once
}

// NewLink returns a Link; Run starts it.
func NewLink(cfg LinkConfig, log *slog.Logger) *Link {
	if cfg.PingInterval == 0 {
		cfg.PingInterval = reconnect.DefaultPingInterval
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = reconnect.DefaultPingTimeout
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = reconnect.DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = reconnect.DefaultMaxBackoff
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = defaultWriteTimeout
	}
	if cfg.MaxStanzaBytes == 0 {
		cfg.MaxStanzaBytes = DefaultMaxStanzaBytes
	}
	return &Link{cfg: cfg, log: log, pending: make(map[string]*pendingIQ), upCh: make(chan struct{})}
}

// Up reports whether a component session is established right now.
func (l *Link) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur != nil
}

// Reconnects counts the sessions established after the first one.
func (l *Link) Reconnects() uint64 { return l.reconnects.Load() }

// Run keeps the link up until ctx ends, handing incoming stanzas to h, then
// closes the stream gracefully. It returns nil on a clean stop. The handler
// is given here, not to NewLink, because the bot that handles stanzas
// replies through the link.
func (l *Link) Run(ctx context.Context, h xmpp.Handler) error {
	l.mu.Lock()
	l.running = true
	l.mu.Unlock()
	defer func() {
		// Whoever waits for the link to come back is told it will not.
		l.mu.Lock()
		l.running = false
		close(l.upCh)
		l.upCh = make(chan struct{})
		l.mu.Unlock()
	}()
	loop := reconnect.Loop{
		Backoff:   reconnect.Backoff{Min: l.cfg.MinBackoff, Max: l.cfg.MaxBackoff},
		Log:       l.log,
		What:      "component link",
		Permanent: func(err error) bool { return errors.Is(err, ErrSecretRejected) },
		// A failed write leaves the stream unusable while the server may be
		// fine, and every reply is lost until a new session is up: dial
		// again at once (the Loop does not do so twice in a row unless the
		// session in between proved stable).
		RedialNow: func(err error) (string, bool) { return "write failed", errors.Is(err, errWriteFailed) },
	}
	return loop.Run(ctx, func(ctx context.Context, again bool) error { return l.session(ctx, h, again) })
}

// ErrSecretRejected means the server refused the component secret. Run
// gives up on it: retrying cannot help until someone changes a
// configuration, and a bot that keeps knocking with a wrong secret only
// fills two logs.
var ErrSecretRejected = errors.New("the server rejected the component secret")

// session runs one component session from dial to drop.
func (l *Link) session(ctx context.Context, h xmpp.Handler, again bool) error {
	conn, sess, err := l.dial(ctx)
	if err != nil {
		return err
	}
	st := &linkSession{
		sess:   sess,
		queue:  make(chan writeRequest),
		done:   make(chan struct{}),
		broken: make(chan struct{}),
	}
	var writer sync.WaitGroup
	writer.Go(func() { l.writeLoop(st) })
	defer func() {
		// New stanzas see the link down first, then those waiting for a
		// turn are told, then the writer (which may be in a write on the
		// closed connection, failing fast) is awaited.
		l.mu.Lock()
		l.cur = nil
		l.upCh = make(chan struct{})
		l.mu.Unlock()
		close(st.done)
		conn.Close()
		writer.Wait()
	}()

	l.mu.Lock()
	l.cur = st
	close(l.upCh)
	l.mu.Unlock()
	if again {
		l.reconnects.Add(1)
	}
	l.log.InfoContext(ctx, "component link up", slog.String("component", l.cfg.Component.String()),
		slog.String("server", l.cfg.Server))
	if l.cfg.OnUp != nil {
		l.cfg.OnUp()
	}

	keep := reconnect.Keepalive{
		Log:       l.log,
		What:      "component link",
		Interval:  l.cfg.PingInterval,
		Ping:      l.ping,
		LastHeard: l.lastHeard,
		Broken:    st.broken,
		Failure: func() error {
			if werr := st.failure(); werr != nil {
				return fmt.Errorf("%w: %w", errWriteFailed, werr)
			}
			return nil
		},
	}
	return keep.Serve(ctx, conn, sess, l.route(h))
}

func (l *Link) dial(ctx context.Context) (net.Conn, *xmpp.Session, error) {
	conn, sess, err := reconnect.Dial(ctx, l.cfg.Server, handshakeTimeout, func(ctx context.Context, conn net.Conn) (*xmpp.Session, error) {
		return component.NewSession(ctx, l.cfg.Component, l.cfg.Secret, conn)
	})
	var refused *reconnect.HandshakeError
	if errors.As(err, &refused) {
		if !refused.CutOff {
			err = explainHandshake(refused.Err)
		}
		return nil, nil, fmt.Errorf("component handshake as %s: %w", l.cfg.Component, err)
	}
	return conn, sess, err
}

// explainHandshake adds what an admin should check to the stream errors
// servers answer a component handshake with.
func explainHandshake(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "not-authorized"):
		return fmt.Errorf("%w: %w (compare xmpp.secret with the component_secret of the server's Component block)", ErrSecretRejected, err)
	case strings.Contains(msg, "conflict"):
		return fmt.Errorf("%w (another process is connected as this component)", err)
	case strings.Contains(msg, "host-unknown"), strings.Contains(msg, "improper-addressing"):
		return fmt.Errorf("%w (the server has no Component block for this JID)", err)
	}
	return err
}

// ping proves the link carries stanzas both ways. Any answer counts, an
// error IQ included: only silence means the link is dead.
func (l *Link) ping(ctx context.Context) error {
	return reconnect.Ping(ctx, l, stanza.IQ{From: l.cfg.Component, To: l.cfg.PingTarget}, l.cfg.PingTimeout)
}

// downWait bounds how long a stanza waits for a link that is down to come
// back. A request in flight when the link dropped is then answered after
// the reconnect instead of being lost (issue 22), but nothing waits long
// for a link that stays gone.
const downWait = 30 * time.Second

// current returns the current session. While Run is reconnecting it waits
// for the next one, within ctx and downWait.
func (l *Link) current(ctx context.Context) (*linkSession, error) {
	var timeout <-chan time.Time
	for {
		l.mu.Lock()
		cur, up, running := l.cur, l.upCh, l.running
		l.mu.Unlock()
		if cur != nil {
			return cur, nil
		}
		if !running {
			return nil, ErrLinkDown
		}
		if timeout == nil {
			timer := time.NewTimer(downWait)
			defer timer.Stop()
			timeout = timer.C
		}
		select {
		case <-up:
		case <-timeout:
			return nil, ErrLinkDown
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited for it to come back: %w)", ErrLinkDown, ctx.Err())
		}
	}
}

// SendIQElement sends an IQ on the current session and waits for the
// answer until ctx ends: the IQ sender the server's packages mint with
// (adhoc.IQSender). The IQ gets an id when it has none, and the component
// as from when it has none.
func (l *Link) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	if iq.ID == "" {
		iq.ID = randomID()
	}
	if iq.From.Equal(jid.JID{}) {
		iq.From = l.cfg.Component
	}
	data, err := l.marshal(iq.Wrap(payload))
	if err != nil {
		return nil, err
	}
	st, err := l.current(ctx)
	if err != nil {
		return nil, err
	}
	p := &pendingIQ{to: iq.To, reply: make(chan []xml.Token, 1)}
	l.pendingMu.Lock()
	l.pending[iq.ID] = p
	l.pendingMu.Unlock()
	defer func() {
		l.pendingMu.Lock()
		delete(l.pending, iq.ID)
		l.pendingMu.Unlock()
	}()
	if err := l.write(ctx, st, data); err != nil {
		return nil, err
	}
	select {
	case toks := <-p.reply:
		return &tokenSlice{toks: toks}, nil
	case <-st.done:
		return nil, fmt.Errorf("%w: it dropped before the answer from %s came", ErrLinkDown, iq.To)
	case <-st.broken:
		return nil, fmt.Errorf("%w: a write failed before the answer from %s came", ErrLinkDown, iq.To)
	case <-ctx.Done():
		return nil, fmt.Errorf("await answer from %s: %w", iq.To, ctx.Err())
	}
}

// Encode writes v, a stanza struct with its from already set, on the
// current session. ctx bounds only the wait for the writer: once the
// writer has the stanza, Encode returns the write's outcome, which the
// writer's own deadline bounds.
func (l *Link) Encode(ctx context.Context, v any) error {
	data, err := l.marshal(v)
	if err != nil {
		return err
	}
	st, err := l.current(ctx)
	if err != nil {
		return err
	}
	return l.write(ctx, st, data)
}

// write hands data to st's writer and returns the write's outcome.
func (l *Link) write(ctx context.Context, st *linkSession, data []byte) error {
	result := make(chan error, 1)
	select {
	case st.queue <- writeRequest{data: data, result: result}:
	case <-st.done:
		return ErrLinkDown
	case <-st.broken:
		return fmt.Errorf("%w: a write failed", ErrLinkDown)
	case <-ctx.Done():
		return fmt.Errorf("wait to send: %w", ctx.Err())
	}
	// The writer answers within its write timeout once it holds the
	// stream, so this wait ignores ctx: returning early would report a
	// stanza as unsent that may well arrive.
	return <-result
}

// writeLoop is st's writer: the only goroutine that writes stanzas on the
// session, and the only one that sets the connection's write deadline.
func (l *Link) writeLoop(st *linkSession) {
	for {
		select {
		case <-st.done:
			return
		case req := <-st.queue:
			err := l.writeOne(st, req.data)
			req.result <- err
			if err != nil {
				// Run logs it as the session's end.
				st.writeErr = err
				close(st.broken)
				return
			}
		}
	}
}

// writeOne writes one encoded stanza within the write timeout.
func (l *Link) writeOne(st *linkSession, data []byte) (err error) {
	defer func() {
		// A panic here must not take down the process; the session is
		// treated as broken.
		if r := recover(); r != nil {
			l.log.Error("panic in the component link writer", slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("writer panic: %v", r)
		}
	}()
	// TokenWriter takes mellium's output lock, which replies written
	// inline by handlers (and the stream's close) also hold, so stanzas
	// never interleave. Holding it, the deadline set here cannot reach
	// anyone else's write.
	w := st.sess.TokenWriter()
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("release the stream: %w", cerr)
		}
	}()
	// A handler's inline write that failed left its error in mellium's
	// buffered encoder, perhaps after half a stanza; flushing shows it
	// before anything is written after that half.
	if err := w.Flush(); err != nil {
		return fmt.Errorf("stream unusable: %w", err)
	}
	conn := st.sess.Conn()
	if err := conn.SetWriteDeadline(time.Now().Add(l.cfg.WriteTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := conn.Write(data); err != nil {
		return fmt.Errorf("write stanza: %w", err)
	}
	// Inline writes by handlers have no deadline of their own; this one
	// must not outlive the write it was set for.
	if err := conn.SetWriteDeadline(time.Time{}); err != nil {
		return fmt.Errorf("clear write deadline: %w", err)
	}
	return nil
}

// route is h with answers to the link's own IQs taken out first. The
// answer is copied out of the stream here, so the read loop never waits
// for the caller to read it.
func (l *Link) route(h xmpp.Handler) xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		l.heard.Store(time.Now().UnixNano())
		p := l.claimAnswer(start)
		if p == nil {
			return h.HandleXMPP(t, start)
		}
		toks := []xml.Token{start.Copy()}
		for {
			tok, err := t.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				// The stream itself is broken; mellium ends the session.
				return fmt.Errorf("read IQ answer: %w", err)
			}
			toks = append(toks, xml.CopyToken(tok))
		}
		p.reply <- toks
		return nil
	})
}

// claimAnswer returns, and forgets, the pending IQ that start answers, or
// nil if it answers none of the link's IQs.
func (l *Link) claimAnswer(start *xml.StartElement) *pendingIQ {
	if start.Name.Local != "iq" {
		return nil
	}
	var id, typ, from string
	for _, a := range start.Attr {
		switch a.Name.Local {
		case "id":
			id = a.Value
		case "type":
			typ = a.Value
		case "from":
			from = a.Value
		}
	}
	if typ != string(stanza.ResultIQ) && typ != string(stanza.ErrorIQ) {
		return nil
	}
	l.pendingMu.Lock()
	defer l.pendingMu.Unlock()
	p, ok := l.pending[id]
	if !ok {
		return nil
	}
	// Only whom we asked may answer (RFC 6120 8.1.2.1); anyone else
	// knowing the id must not be able to inject a reply.
	if !p.to.Equal(jid.JID{}) {
		f, err := jid.Parse(from)
		if err != nil || !f.Equal(p.to) {
			return nil
		}
	}
	delete(l.pending, id)
	return p
}

// marshal encodes v the way it goes on the wire and refuses it when it is
// over the link's maximum. Top-level stanzas get an id when they have
// none, as mellium gives them.
func (l *Link) marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	w := &stanzaWriter{enc: enc}
	var err error
	switch v := v.(type) {
	case xmlstream.WriterTo:
		_, err = v.WriteXML(w)
	case xmlstream.Marshaler:
		_, err = xmlstream.Copy(w, v.TokenReader())
	case xml.TokenReader:
		_, err = xmlstream.Copy(w, v)
	default:
		var raw []byte
		raw, err = xml.Marshal(v)
		if err == nil {
			_, err = xmlstream.Copy(w, rawTokens{xml.NewDecoder(bytes.NewReader(raw))})
		}
	}
	if err == nil {
		err = enc.Flush()
	}
	if err != nil {
		return nil, fmt.Errorf("encode stanza: %w", err)
	}
	if b.Len() > l.cfg.MaxStanzaBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrStanzaTooLarge, b.Len(), l.cfg.MaxStanzaBytes)
	}
	return b.Bytes(), nil
}

// rawTokens reads tokens without namespace resolution, so that re-encoding
// writes back the xmlns attributes that xml.Marshal wrote.
type rawTokens struct{ d *xml.Decoder }

func (r rawTokens) Token() (xml.Token, error) { return r.d.RawToken() }

// stanzaWriter fixes up what goes on the wire as mellium's own encoder
// does: a stanza's empty id and from attributes are dropped, a stanza
// without an id gets one, and an xmlns attribute that repeats the
// element's namespace is dropped (the encoder writes it from the name;
// both would be a duplicate attribute).
type stanzaWriter struct {
	enc   *xml.Encoder
	depth int
}

// EncodeToken implements xmlstream.TokenWriter.
func (w *stanzaWriter) EncodeToken(t xml.Token) error {
	switch tok := t.(type) {
	case xml.StartElement:
		w.depth++
		attrs := make([]xml.Attr, 0, len(tok.Attr)+1)
		hasID := false
		for _, a := range tok.Attr {
			if w.depth == 1 && a.Name.Space == "" && (a.Name.Local == "id" || a.Name.Local == "from") && a.Value == "" {
				continue
			}
			if a.Name.Local == "xmlns" && a.Name.Space == "" && tok.Name.Space != "" {
				continue
			}
			hasID = hasID || (a.Name.Space == "" && a.Name.Local == "id")
			attrs = append(attrs, a)
		}
		if w.depth == 1 && !hasID {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "id"}, Value: randomID()})
		}
		tok.Attr = attrs
		t = tok
	case xml.EndElement:
		w.depth--
	}
	return w.enc.EncodeToken(t)
}

// tokenSlice replays an IQ answer copied out of the stream.
type tokenSlice struct{ toks []xml.Token }

// Token implements xml.TokenReader.
func (r *tokenSlice) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	t := r.toks[0]
	r.toks = r.toks[1:]
	return t, nil
}

// Close implements io.Closer; the answer is already off the stream.
func (r *tokenSlice) Close() error {
	r.toks = nil
	return nil
}

// randomID returns a fresh stanza id.
func randomID() string {
	b := make([]byte, iqIDBytes)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}
