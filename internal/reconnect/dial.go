package reconnect

import (
	"context"
	"fmt"
	"net"
	"time"

	"mellium.im/xmpp"
)

// Dial dials addr and opens an XMPP session on the connection with
// open (a component handshake, a client login), all within timeout.
//
// mellium arms the connection's deadline from the context given to a
// session constructor and can fire it after the handshake, when that
// context is cancelled on return, under the session's first read or
// write. So open gets a context that never ends, and the timeout bounds
// the handshake by closing the connection instead.
//
// A failure to connect comes back as "dial ADDR: …"; a failed or timed-out
// handshake as a *HandshakeError, for the caller to explain.
func Dial(ctx context.Context, addr string, timeout time.Duration, open func(context.Context, net.Conn) (*xmpp.Session, error)) (net.Conn, *xmpp.Session, error) {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	stop := context.AfterFunc(hctx, func() { conn.Close() })
	sess, err := open(context.WithoutCancel(hctx), conn)
	if !stop() {
		conn.Close()
		return nil, nil, &HandshakeError{Err: context.Cause(hctx), CutOff: true}
	}
	if err != nil {
		conn.Close()
		return nil, nil, &HandshakeError{Err: err}
	}
	return conn, sess, nil
}

// HandshakeError is a session that could not be opened on a connected
// stream: refused by the server, or not done in time.
type HandshakeError struct {
	// Err is the cause.
	Err error
	// CutOff is true when the timeout or the caller's context ended the
	// handshake, not the server.
	CutOff bool
}

// Error is the cause's text: callers add what was being opened.
func (e *HandshakeError) Error() string { return e.Err.Error() }

// Unwrap gives the cause, for errors.Is on stream errors and timeouts.
func (e *HandshakeError) Unwrap() error { return e.Err }
