package ibr

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// errStreamEnded reports that the server ended the stream (or the connection
// dropped) while we were waiting for an answer. It wraps net.ErrClosed so a
// long-lived Checker's owner can tell "redial" from "token rejected".
var errStreamEnded = fmt.Errorf("stream ended by server: %w", net.ErrClosed)

// scramMechanisms are the SASL mechanisms Remove offers, strongest first.
// Only SCRAM: the password never crosses the wire, even inside TLS. The -PLUS
// variants bind to the TLS channel where the server supports it (Prosody 0.12
// only has tls-unique, so over TLS 1.3 it offers plain SCRAM).
var scramMechanisms = []sasl.Mechanism{
	sasl.ScramSha256Plus, sasl.ScramSha1Plus, sasl.ScramSha256, sasl.ScramSha1,
}

// stream is one negotiated c2s stream with its read loop running.
type stream struct {
	conn      net.Conn // the TCP connection; closing it stops everything
	sess      *xmpp.Session
	ended     chan struct{} // closed when the read loop returns
	endErr    error         // why the read loop returned; read after ended is closed
	closeOnce sync.Once
	closeErr  error
}

// informational is a stream feature we only want to see advertised, never to
// negotiate. Listing it also keeps mellium from failing with "features
// advertised out of order" when a post-TLS feature list holds nothing it can
// negotiate, so a missing feature can be reported as ErrUnsupported instead.
func informational(space, local string) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:      xml.Name{Space: space, Local: local},
		Necessary: xmpp.Secure,
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, interface{}, error) {
			return false, nil, d.Skip()
		},
	}
}

// requireTLS wraps mellium's STARTTLS so that every way of not getting a
// verified TLS channel is reported as ErrTLS. mellium already sends STARTTLS
// even when the server does not advertise it (downgrade protection), so a
// plaintext-only server fails here rather than being used in the clear. The
// explicit handshake turns a certificate problem into an error at this point
// instead of a confusing failure on the next stream header.
func requireTLS(cfg *tls.Config) xmpp.StreamFeature {
	f := xmpp.StartTLS(cfg)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data interface{}) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil {
			return mask, rw, fmt.Errorf("%w: starttls: %w", ErrTLS, err)
		}
		tc, ok := rw.(*tls.Conn)
		if !ok {
			return mask, rw, fmt.Errorf("%w: starttls produced %T, not a TLS connection", ErrTLS, rw)
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			return mask, rw, fmt.Errorf("%w: %w", ErrTLS, err)
		}
		return mask, rw, nil
	}
	return f
}

// authenticate wraps mellium's SASL feature so that a refused login is
// distinguishable (ErrAuthFailed) from a dropped connection.
func authenticate(password string) xmpp.StreamFeature {
	f := xmpp.SASL("", password, scramMechanisms...)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data interface{}) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil && !isTransportError(ctx, err) {
			return mask, rw, fmt.Errorf("%w: %w", ErrAuthFailed, err)
		}
		return mask, rw, err
	}
	return f
}

// isTransportError tells network trouble apart from the server saying no.
func isTransportError(ctx context.Context, err error) bool {
	var ne net.Error
	return ctx.Err() != nil || errors.As(err, &ne) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// tlsConfig returns cfg.TLS with ServerName defaulted to the domain, without
// modifying the caller's config.
func tlsConfig(cfg Config) *tls.Config {
	var tc *tls.Config
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Domain
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	return tc
}

// dialUnauthenticated opens a TLS-secured stream without logging in, as a
// client about to register would.
func dialUnauthenticated(ctx context.Context, cfg Config) (*stream, error) {
	domain, err := jid.Parse(cfg.Domain)
	if err != nil || cfg.Domain == "" || domain.Localpart() != "" || domain.Resourcepart() != "" {
		return nil, fmt.Errorf("invalid domain %q", cfg.Domain)
	}
	s, err := dial(ctx, cfg, domain,
		requireTLS(tlsConfig(cfg)),
		informational(nsRegisterFeature, "register"),
		informational(nsIBRToken, "register"),
		informational(nsSASL, "mechanisms"),
	)
	if err != nil {
		return nil, err
	}
	if !s.hasFeature(nsIBRToken) {
		_ = s.close()
		return nil, fmt.Errorf("%w: no XEP-0445 stream feature", ErrUnsupported)
	}
	return s, nil
}

// dialAuthenticated opens a stream logged in as account with a bound resource.
func dialAuthenticated(ctx context.Context, cfg Config, account jid.JID, password string) (*stream, error) {
	return dial(ctx, cfg, account,
		requireTLS(tlsConfig(cfg)),
		authenticate(password),
		xmpp.BindResource(),
	)
}

// dial connects to cfg.Addr, negotiates the stream and starts its read loop.
func dial(ctx context.Context, cfg Config, origin jid.JID, features ...xmpp.StreamFeature) (*stream, error) {
	if cfg.Addr == "" {
		return nil, errors.New("no server address configured")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", cfg.Addr, err)
	}
	// mellium bounds negotiation by setting a past deadline and immediately
	// clearing it again, which a blocked read can miss (seen hanging against
	// a server that accepts and stays silent). Closing the connection when
	// ctx ends cannot be missed.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sess, err := xmpp.NewClientSession(ctx, origin, conn, features...)
	if !stop() {
		conn.Close()
		if err == nil {
			err = errors.New("connection closed")
		}
		return nil, fmt.Errorf("negotiate stream with %s: %w: %w", cfg.Addr, context.Cause(ctx), err)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("negotiate stream with %s: %w", cfg.Addr, err)
	}
	// Belt and braces: whatever the features did, nothing is sent on a
	// stream that is not encrypted.
	if sess.State()&xmpp.Secure == 0 || !sess.ConnectionState().HandshakeComplete {
		conn.Close()
		return nil, fmt.Errorf("%w: stream to %s is not encrypted", ErrTLS, cfg.Addr)
	}
	s := &stream{conn: conn, sess: sess, ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		// A nil handler answers any IQ the server sends with
		// service-unavailable and drops everything else, which is right for
		// these short single-purpose streams.
		s.endErr = sess.Serve(nil)
	}()
	return s, nil
}

// hasFeature reports whether the server advertised the stream feature with
// the given namespace on the current (post-TLS) stream.
func (s *stream) hasFeature(space string) bool {
	_, ok := s.sess.Feature(space)
	return ok
}

// iq sends an IQ of type typ with payload to the server and waits for the
// answer. An error reply is returned as a stanza.Error. It gives up when ctx
// ends or the stream ends, whichever comes first.
func (s *stream) iq(ctx context.Context, typ stanza.IQType, payload xml.TokenReader) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-s.ended:
			cancel(errStreamEnded)
		case <-ctx.Done():
		}
	}()
	err := s.sess.UnmarshalIQElement(ctx, payload, stanza.IQ{Type: typ}, nil)
	var serr stanza.Error
	if err == nil || errors.As(err, &serr) {
		return err // the server answered
	}
	// No answer. If the stream is gone, say so in a way callers can test
	// for, whichever symptom came first: the read loop ending, or a write
	// failing before the read loop noticed the connection was gone.
	select {
	case <-s.ended:
		if s.endErr != nil {
			// The read loop's error says why (stream error, EOF, reset);
			// err would only be "context canceled".
			return fmt.Errorf("%w: %w", errStreamEnded, s.endErr)
		}
		return fmt.Errorf("%w: %w", errStreamEnded, err)
	default:
	}
	var ne net.Error
	if errors.As(err, &ne) && !ne.Timeout() {
		_ = s.conn.Close() // broken for good; stop the read loop too
		return fmt.Errorf("%w: %w", errStreamEnded, err)
	}
	return err
}

// preauth presents token (XEP-0445). Prosody then remembers the invite for
// the rest of this stream, which is what lets the following registration
// through on an invite-only server.
func (s *stream) preauth(ctx context.Context, token string) error {
	payload := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: nsPreauth, Local: "preauth"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "token"}, Value: token}},
	})
	err := s.iq(ctx, stanza.SetIQ, payload)
	var serr stanza.Error
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &serr):
		return fmt.Errorf("preauth: %w", err)
	case serr.Condition == stanza.Forbidden, serr.Condition == stanza.ItemNotFound,
		serr.Condition == stanza.NotAllowed:
		return fmt.Errorf("%w (%s): %w", ErrTokenRejected, serr.Condition, serr)
	default:
		return fmt.Errorf("preauth refused (%s): %w", serr.Condition, serr)
	}
}

// close ends our side of the stream, gives the server closeGrace to end its
// side, then drops the connection. It always stops the read loop. The error
// is only about ending a stream that was still up; a stream the server had
// already ended closes without error, since nothing was lost.
func (s *stream) close() error {
	s.closeOnce.Do(func() {
		select {
		case <-s.ended:
			// Already over (server closed it, or it broke): just release.
		default:
			if err := s.sess.Close(); err != nil {
				s.closeErr = fmt.Errorf("close stream: %w", err)
			}
			select {
			case <-s.ended:
			case <-time.After(closeGrace):
			}
		}
		_ = s.conn.Close() // also ends the read loop if the server never answered
		<-s.ended
	})
	return s.closeErr
}
