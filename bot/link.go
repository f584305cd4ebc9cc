// Package bot is the XMPP side of invitebot: the XEP-0114 component link
// with its reconnect and keepalive, stanza routing, the chat command
// grammar, service discovery, and the replies. It turns stanzas into calls
// on invites.Service and never touches the database itself.
package bot

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Link tunables. Tests shorten them through LinkConfig.
const (
	defaultPingInterval = 30 * time.Second
	defaultPingTimeout  = 10 * time.Second
	defaultMinBackoff   = 500 * time.Millisecond
	defaultMaxBackoff   = time.Minute
	// handshakeTimeout bounds dialling plus the XEP-0114 handshake, so a
	// server that accepts TCP but never answers cannot stall reconnection.
	handshakeTimeout = 15 * time.Second
	// stableAfter is how long a link must stay up before the backoff resets;
	// otherwise a server that drops us right after the handshake (conflict)
	// would be hammered at the minimum interval.
	stableAfter = 30 * time.Second
	// closeTimeout is how long a graceful close waits for the server to end
	// its side of the stream.
	closeTimeout = 3 * time.Second
)

// ErrLinkDown is returned when a stanza must go out while there is no
// component link.
var ErrLinkDown = errors.New("component link is down")

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

	// PingInterval, PingTimeout, MinBackoff and MaxBackoff default to the
	// tunables above when zero.
	PingInterval, PingTimeout, MinBackoff, MaxBackoff time.Duration

	// OnUp, when set, is called after each successful handshake (metrics,
	// tests).
	OnUp func()
}

// Link keeps one XEP-0114 component session alive: it dials, serves
// stanzas to the handler, pings, and dials again with exponential backoff
// and jitter after any drop. Outgoing stanzas go through Send and
// SendIQElement, which use whatever session is current.
type Link struct {
	cfg LinkConfig
	log *slog.Logger

	mu   sync.Mutex
	sess *xmpp.Session

	reconnects atomic.Uint64
}

// NewLink returns a Link; Run starts it.
func NewLink(cfg LinkConfig, log *slog.Logger) *Link {
	if cfg.PingInterval == 0 {
		cfg.PingInterval = defaultPingInterval
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = defaultPingTimeout
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = defaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = defaultMaxBackoff
	}
	return &Link{cfg: cfg, log: log}
}

// Up reports whether a component session is established right now.
func (l *Link) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sess != nil
}

// Reconnects counts the sessions established after the first one.
func (l *Link) Reconnects() uint64 { return l.reconnects.Load() }

// Run keeps the link up until ctx ends, handing incoming stanzas to h, then
// closes the stream gracefully. It returns nil on a clean stop. The handler
// is given here, not to NewLink, because the bot that handles stanzas
// replies through the link.
func (l *Link) Run(ctx context.Context, h xmpp.Handler) error {
	backoff := l.cfg.MinBackoff
	for attempt := 0; ; attempt++ {
		started := time.Now()
		err := l.session(ctx, h, attempt > 0)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) >= stableAfter {
			backoff = l.cfg.MinBackoff
		}
		wait := jitter(backoff)
		l.log.WarnContext(ctx, "component link down", slog.Any("err", err), slog.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, l.cfg.MaxBackoff)
	}
}

// jitter spreads retries over [d/2, d) so that many bots, or one bot after
// a server restart, do not reconnect in lockstep.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(half+1)
}

// session runs one component session from dial to drop.
func (l *Link) session(ctx context.Context, h xmpp.Handler, again bool) error {
	conn, sess, err := l.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	l.mu.Lock()
	l.sess = sess
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.sess = nil
		l.mu.Unlock()
	}()
	if again {
		l.reconnects.Add(1)
	}
	l.log.InfoContext(ctx, "component link up", slog.String("component", l.cfg.Component.String()),
		slog.String("server", l.cfg.Server))
	if l.cfg.OnUp != nil {
		l.cfg.OnUp()
	}

	served := make(chan error, 1)
	go func() { served <- sess.Serve(h) }()

	ticker := time.NewTicker(l.cfg.PingInterval)
	defer ticker.Stop()
	for {
		select {
		case err := <-served:
			if err == nil {
				err = errors.New("server closed the stream")
			}
			return err
		case <-ctx.Done():
			l.closeGracefully(sess, conn, served)
			return ctx.Err()
		case <-ticker.C:
			if err := l.ping(ctx, sess); err != nil {
				// Closing the connection makes Serve return; the select
				// then reports the drop.
				l.log.WarnContext(ctx, "component link keepalive failed", slog.Any("err", err))
				conn.Close()
			}
		}
	}
}

func (l *Link) dial(ctx context.Context) (net.Conn, *xmpp.Session, error) {
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(hctx, "tcp", l.cfg.Server)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", l.cfg.Server, err)
	}
	// The handshake reads from conn; a deadline is what makes hctx bind it.
	deadline, _ := hctx.Deadline()
	_ = conn.SetDeadline(deadline)
	sess, err := component.NewSession(hctx, l.cfg.Component, l.cfg.Secret, conn)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("component handshake as %s: %w", l.cfg.Component, explainHandshake(err))
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, sess, nil
}

// explainHandshake adds what an admin should check to the stream errors
// servers answer a component handshake with.
func explainHandshake(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "not-authorized"):
		return fmt.Errorf("%w (the server rejected the secret: compare xmpp.secret with component_secret)", err)
	case strings.Contains(msg, "conflict"):
		return fmt.Errorf("%w (another process is connected as this component)", err)
	case strings.Contains(msg, "host-unknown"), strings.Contains(msg, "improper-addressing"):
		return fmt.Errorf("%w (the server has no Component block for this JID)", err)
	}
	return err
}

// ping proves the link carries stanzas both ways. Any answer counts, an
// error IQ included: only silence means the link is dead.
func (l *Link) ping(ctx context.Context, sess *xmpp.Session) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.PingTimeout)
	defer cancel()
	payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:ping", Local: "ping"}})
	resp, err := sess.SendIQElement(ctx, payload, stanza.IQ{
		Type: stanza.GetIQ, From: l.cfg.Component, To: l.cfg.PingTarget,
	})
	if err != nil {
		return err
	}
	return resp.Close()
}

func (l *Link) closeGracefully(sess *xmpp.Session, conn net.Conn, served <-chan error) {
	_ = sess.Close()
	select {
	case <-served:
	case <-time.After(closeTimeout):
	}
	l.log.Info("component link closed")
}

func (l *Link) current() (*xmpp.Session, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess == nil {
		return nil, ErrLinkDown
	}
	return l.sess, nil
}

// SendIQElement sends an IQ on the current session and waits for the
// answer. It satisfies invites.IQSender.
func (l *Link) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	sess, err := l.current()
	if err != nil {
		return nil, err
	}
	return sess.SendIQElement(ctx, payload, iq)
}

// Encode writes v, a stanza struct with its from already set, on the
// current session.
func (l *Link) Encode(ctx context.Context, v any) error {
	sess, err := l.current()
	if err != nil {
		return err
	}
	return sess.Encode(ctx, v)
}
