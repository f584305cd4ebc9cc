package reconnect

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"mellium.im/xmpp"
)

// ErrStreamClosed is how a session ends when the server closed the stream
// without an error.
var ErrStreamClosed = errors.New("server closed the stream")

// maxMissed is how many checks in a row may fail before the connection is
// cut. A server busy for longer than a ping's timeout (Prosody on one
// thread, minting with thousands of tokens held) answers late, and a late
// answer proves it alive at the next check: only a server silent through
// two pings, at least an interval apart, is taken for dead.
const maxMissed = 2

// Keepalive serves one established session and watches it: it pings every
// Interval, cuts the connection when pings fail maxMissed times in a row
// with nothing heard meanwhile, and closes the stream gracefully when ctx
// ends.
type Keepalive struct {
	Log *slog.Logger
	// What names the connection in the log: "<What> keepalive failed" when
	// a ping fails, "<What> closed" after a graceful close.
	What     string
	Interval time.Duration
	// Ping proves the session carries stanzas both ways; it bounds its own
	// wait for the answer.
	Ping func(context.Context) error
	// Broken, when not nil, is closed when the session became unusable
	// from outside the read loop (a failed write); Failure then says why,
	// and is what Serve returns. A failed ping is not logged once Failure
	// reports something: it is that failure, reported as such.
	Broken  <-chan struct{}
	Failure func() error
	// LastHeard, when not nil, says when the last stanza came from the
	// server. Any stanza is proof of life: no ping goes out while stanzas
	// arrive, and a ping that times out while others still arrive means a
	// slow server, not a dead one, so the connection stays.
	LastHeard func() time.Time
}

// Serve serves sess with h until the session ends, and returns why it did:
// ctx.Err() when ctx ended, ErrStreamClosed when the server closed the
// stream cleanly, else the error that ended it. It does not close conn on
// return; the caller does, once nothing uses the session any more.
func (k Keepalive) Serve(ctx context.Context, conn net.Conn, sess *xmpp.Session, h xmpp.Handler) error {
	served := make(chan error, 1)
	go func() { served <- sess.Serve(h) }()
	ticker := time.NewTicker(k.Interval)
	defer ticker.Stop()
	missed := 0
	for {
		select {
		case err := <-served:
			if ferr := k.failure(); ferr != nil {
				return ferr
			}
			if err == nil {
				err = ErrStreamClosed
			}
			return err
		case <-k.Broken:
			// The stream may hold half a stanza: it cannot be used again.
			// Closing the connection ends Serve.
			conn.Close()
			<-served
			return k.failure()
		case <-ctx.Done():
			_ = sess.Close()
			select {
			case <-served:
			case <-time.After(CloseTimeout):
			}
			k.Log.Info(k.What + " closed")
			return ctx.Err()
		case <-ticker.C:
			err := k.check(ctx)
			switch {
			case err == nil:
				missed = 0
			case k.failure() != nil:
				// A ping that failed because of a Failure is reported as
				// that by the next round.
			case missed+1 < maxMissed:
				missed++
				k.Log.InfoContext(ctx, k.What+" ping unanswered; the server may be busy, asking again next interval", slog.Any("err", err))
			default:
				// Closing the connection makes Serve return; the select
				// then reports the drop.
				k.Log.WarnContext(ctx, k.What+" keepalive failed", slog.Any("err", err))
				conn.Close()
			}
		}
	}
}

// check proves the session alive: by a stanza heard within the interval,
// else by a ping, whose failure counts only if nothing at all was heard
// while it waited.
func (k Keepalive) check(ctx context.Context) error {
	if k.LastHeard != nil && time.Since(k.LastHeard()) < k.Interval {
		return nil
	}
	sent := time.Now()
	err := k.Ping(ctx)
	if err != nil && k.LastHeard != nil && !k.LastHeard().Before(sent) {
		k.Log.DebugContext(ctx, k.What+" ping unanswered, but the server is still sending: slow, not gone", slog.Any("err", err))
		return nil
	}
	return err
}

func (k Keepalive) failure() error {
	if k.Failure == nil {
		return nil
	}
	return k.Failure()
}
