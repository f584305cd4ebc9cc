// Package reconnect holds what the two long-lived XMPP connections the
// bot keeps (the component link and the minter account's session) share:
// dialling with a bounded handshake (Dial), serving a session while pinging
// it (Keepalive), dialling again with backoff after a drop (Loop), and the
// timing of both.
package reconnect

import (
	"math/rand/v2"
	"time"
)

// Timing shared by both connections. Their configurations default to these
// when zero, so the two are kept alike; tests shorten them.
const (
	// DefaultPingInterval is how often an idle connection is pinged.
	DefaultPingInterval = 30 * time.Second
	// DefaultPingTimeout is how long a ping may go unanswered.
	DefaultPingTimeout = 10 * time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait before the
	// next attempt, which doubles after each failed one.
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = time.Minute
	// StableAfter is how long a session must stay up before the backoff
	// resets; otherwise a server that drops us right after the handshake
	// (conflict) would be hammered at the minimum interval.
	StableAfter = 30 * time.Second
	// CloseTimeout is how long a graceful close waits for the server to end
	// its side of the stream.
	CloseTimeout = 3 * time.Second
)

// Jitter spreads retries over [d/2, d) so that many bots, or one bot after
// a server restart, do not reconnect in lockstep.
func Jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(half+1)
}
