package reconnect

import (
	"context"
	"log/slog"
	"time"
)

// Backoff bounds the wait before the next attempt: it starts at Min,
// doubles after each attempt that failed, up to Max, and is back at Min
// after a session that lasted StableAfter.
type Backoff struct {
	Min, Max time.Duration
}

// Loop keeps a connection up: it runs one session after another, waiting
// a jittered, growing backoff between them, until ctx ends or a session
// fails in a way retrying cannot cure. The fields name the connection in
// the log and say which failures are special; the zero value of each
// optional one means "none".
type Loop struct {
	Backoff Backoff
	Log     *slog.Logger
	// What names the connection: before each wait Run logs a warning
	// "<What> down" with Attrs, the error as err and the wait as retry_in.
	What  string
	Attrs []slog.Attr
	// Permanent reports a failure that retrying cannot cure (a refused
	// secret or password): Run returns it.
	Permanent func(error) bool
	// RedialNow, when set, reports a failure after which dialling again at
	// once is worth it, and why ("write failed"), for the warning
	// "<What> <why>; reconnecting now". Run does so at most once in a row
	// unless the session in between lasted StableAfter, so that a server
	// that breaks every session does not make it spin.
	RedialNow func(error) (why string, ok bool)

	// Tests replace the clock and the wait; nil means the real ones.
	now    func() time.Time
	wait   func(ctx context.Context, d time.Duration) bool
	jitter func(time.Duration) time.Duration
}

// Run runs session until ctx ends, again after each time it returns. again
// is false for the first session only. session should return when ctx
// ends; Run then returns nil. It returns a failure only when Permanent says
// it is one.
func (l Loop) Run(ctx context.Context, session func(ctx context.Context, again bool) error) error {
	now, wait, jitter := l.now, l.wait, l.jitter
	if now == nil {
		now = time.Now
	}
	if wait == nil {
		wait = sleep
	}
	if jitter == nil {
		jitter = Jitter
	}
	backoff := l.Backoff.Min
	// redialed says the last attempt skipped the backoff.
	redialed := false
	for attempt := 0; ; attempt++ {
		started := now()
		err := session(ctx, attempt > 0)
		if ctx.Err() != nil {
			return nil
		}
		if l.Permanent != nil && l.Permanent(err) {
			return err
		}
		stable := now().Sub(started) >= StableAfter
		if stable {
			backoff = l.Backoff.Min
		}
		if why, ok := l.redialNow(err); ok && (!redialed || stable) {
			redialed = true
			l.Log.WarnContext(ctx, l.What+" "+why+"; reconnecting now", slog.Any("err", err))
			continue
		}
		redialed = false
		d := jitter(backoff)
		attrs := append(append([]slog.Attr(nil), l.Attrs...), slog.Any("err", err), slog.Duration("retry_in", d))
		l.Log.LogAttrs(ctx, slog.LevelWarn, l.What+" down", attrs...)
		if !wait(ctx, d) {
			return nil
		}
		backoff = min(2*backoff, l.Backoff.Max)
	}
}

func (l Loop) redialNow(err error) (string, bool) {
	if l.RedialNow == nil {
		return "", false
	}
	return l.RedialNow(err)
}

// sleep waits d, or less when ctx ends first; it reports whether it waited
// all of d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
