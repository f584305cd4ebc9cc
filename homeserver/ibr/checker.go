package ibr

import (
	"context"
	"fmt"
)

// Checker checks many tokens over one unauthenticated stream, so that usage
// tracking can sweep every pending invite without a TCP and TLS handshake per
// token. Check is safe for concurrent use.
//
// Servers end idle unauthenticated streams (Prosody after c2s_timeout, 300 s
// by default). A Check on such a stream fails with an error matching
// net.ErrClosed; dial a new Checker then. Keep one for a sweep, not forever.
type Checker struct {
	cfg Config
	s   *stream
}

// DialChecker opens the stream a Checker uses. cfg.Timeout bounds the dial and,
// later, each Check.
func DialChecker(ctx context.Context, cfg Config) (*Checker, error) {
	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()
	s, err := dialUnauthenticated(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("check token: %w", err)
	}
	return &Checker{cfg: cfg, s: s}, nil
}

// Check reports whether token is currently valid: nil if so, an error
// wrapping ErrTokenRejected if it is unknown, used or expired, another error
// if the server could not be asked. It does not consume the token.
func (c *Checker) Check(ctx context.Context, token string) error {
	if token == "" {
		return fmt.Errorf("check token: %w: empty token", ErrTokenRejected)
	}
	ctx, cancel := withTimeout(ctx, c.cfg)
	defer cancel()
	if err := c.s.preauth(ctx, token); err != nil {
		return fmt.Errorf("check token: %w", err)
	}
	return nil
}

// Close ends the stream. It is safe to call more than once.
func (c *Checker) Close() error {
	return c.s.close()
}
