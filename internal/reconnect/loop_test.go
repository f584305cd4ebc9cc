package reconnect

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// attempt is what one scripted session does: it lasts lasted on the fake
// clock, then ends with err.
type attempt struct {
	lasted time.Duration
	err    error
}

// script runs a Loop whose sessions play attempts in order on a fake
// clock, with no jitter. When the attempts run out, the next session
// cancels ctx and returns its error, as a session does when the bot stops.
type script struct {
	attempts []attempt
	clock    time.Time
	calls    int
	again    []bool
	waits    []time.Duration
	logs     bytes.Buffer
	cancel   context.CancelFunc
	// waitFn, when set, replaces the recording wait.
	waitFn func(ctx context.Context, d time.Duration) bool
}

func (s *script) loop(l Loop) Loop {
	l.Log = slog.New(slog.NewTextHandler(&s.logs, nil))
	if l.What == "" {
		l.What = "test link"
	}
	l.now = func() time.Time { return s.clock }
	l.jitter = func(d time.Duration) time.Duration { return d }
	l.wait = func(ctx context.Context, d time.Duration) bool {
		s.waits = append(s.waits, d)
		if s.waitFn != nil {
			return s.waitFn(ctx, d)
		}
		return true
	}
	return l
}

func (s *script) session(ctx context.Context, again bool) error {
	s.again = append(s.again, again)
	if s.calls >= len(s.attempts) {
		s.calls++
		s.cancel()
		return ctx.Err()
	}
	a := s.attempts[s.calls]
	s.calls++
	s.clock = s.clock.Add(a.lasted)
	return a.err
}

func (s *script) run(l Loop) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.cancel = cancel
	return s.loop(l).Run(ctx, s.session)
}

var errDrop = errors.New("dropped")

func TestLoopBackoffGrowsAndResets(t *testing.T) {
	quick := attempt{time.Millisecond, errDrop}
	stable := attempt{StableAfter, errDrop}
	almost := attempt{StableAfter - time.Nanosecond, errDrop}
	s := &script{attempts: []attempt{quick, quick, quick, quick, quick, almost, stable, quick, quick}}
	err := s.run(Loop{Backoff: Backoff{Min: time.Second, Max: 8 * time.Second},
		Attrs: []slog.Attr{slog.String("account", "a@b")}})
	if err != nil {
		t.Fatalf("Run = %v, want nil after ctx ended", err)
	}
	want := []time.Duration{1, 2, 4, 8, 8, 8, 1, 2, 4}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(s.waits, want) {
		t.Errorf("waits %v, want %v", s.waits, want)
	}
	if s.calls != len(s.attempts)+1 {
		t.Errorf("%d sessions, want %d", s.calls, len(s.attempts)+1)
	}
	if len(s.again) == 0 || s.again[0] || slices.Contains(s.again[1:], false) {
		t.Errorf("again %v, want false then true", s.again)
	}
	logs := s.logs.String()
	if n := strings.Count(logs, `msg="test link down" account=a@b err=dropped retry_in=`); n != len(want) {
		t.Errorf("%d down lines, want %d:\n%s", n, len(want), logs)
	}
	if strings.Contains(logs, "err=<nil>") || strings.Contains(logs, "context canceled") {
		t.Errorf("the stop was logged as a drop:\n%s", logs)
	}
}

func TestLoopStopsOnPermanent(t *testing.T) {
	errRefused := errors.New("refused")
	s := &script{attempts: []attempt{{0, errDrop}, {0, errDrop}, {0, errRefused}, {0, errDrop}}}
	err := s.run(Loop{Backoff: Backoff{Min: time.Second, Max: time.Minute},
		Permanent: func(err error) bool { return errors.Is(err, errRefused) }})
	if !errors.Is(err, errRefused) {
		t.Fatalf("Run = %v, want the permanent error", err)
	}
	if s.calls != 3 {
		t.Errorf("%d sessions, want 3: none after the refusal", s.calls)
	}
	if len(s.waits) != 2 {
		t.Errorf("waits %v, want two, none after the refusal", s.waits)
	}
	if strings.Contains(s.logs.String(), "refused") {
		t.Errorf("the refusal was logged as a drop:\n%s", s.logs.String())
	}
}

func TestLoopStopsOnCtxDuringWait(t *testing.T) {
	s := &script{attempts: []attempt{{0, errDrop}, {0, errDrop}}}
	s.waitFn = func(context.Context, time.Duration) bool {
		s.cancel()
		return false
	}
	if err := s.run(Loop{Backoff: Backoff{Min: time.Second, Max: time.Minute}}); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if s.calls != 1 || len(s.waits) != 1 {
		t.Errorf("%d sessions, %d waits; want 1, 1", s.calls, len(s.waits))
	}
}

func TestLoopStopsOnCtxBeforePermanent(t *testing.T) {
	// A session ended by the stop returns whatever it returns; Run still
	// reports a clean stop.
	errRefused := errors.New("refused")
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	l := Loop{Backoff: Backoff{Min: time.Hour, Max: time.Hour}, Log: slog.New(slog.DiscardHandler),
		Permanent: func(error) bool { return true }}
	err := l.Run(ctx, func(context.Context, bool) error {
		calls++
		cancel()
		return errRefused
	})
	if err != nil || calls != 1 {
		t.Errorf("Run = %v after %d sessions, want nil after 1", err, calls)
	}
}

func TestLoopRedialNow(t *testing.T) {
	errWrite := errors.New("write failed")
	quickWrite := attempt{time.Millisecond, errWrite}
	stableWrite := attempt{StableAfter, errWrite}
	s := &script{attempts: []attempt{
		quickWrite,                  // at once
		quickWrite,                  // not twice in a row: wait Min
		quickWrite,                  // at once again, after a wait
		quickWrite,                  // wait 2*Min: the redial did not grow the backoff
		quickWrite,                  // at once
		stableWrite,                 // at once again: the session in between was stable; backoff reset
		{time.Millisecond, errDrop}, // an ordinary drop: wait Min
	}}
	err := s.run(Loop{Backoff: Backoff{Min: time.Second, Max: time.Minute},
		RedialNow: func(err error) (string, bool) { return "write failed", errors.Is(err, errWrite) }})
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, time.Second}
	if !slices.Equal(s.waits, want) {
		t.Errorf("waits %v, want %v", s.waits, want)
	}
	logs := s.logs.String()
	if n := strings.Count(logs, `msg="test link write failed; reconnecting now" err="write failed"`); n != 4 {
		t.Errorf("%d immediate redials logged, want 4:\n%s", n, logs)
	}
	if n := strings.Count(logs, `msg="test link down"`); n != len(want) {
		t.Errorf("%d down lines, want %d:\n%s", n, len(want), logs)
	}
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !sleep(ctx, time.Microsecond) {
		t.Error("sleep did not wait out a tiny duration")
	}
	cancel()
	// An hour would time the test out: only ctx can end this one.
	if sleep(ctx, time.Hour) {
		t.Error("sleep waited although ctx had ended")
	}
}

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{2, time.Millisecond, 3 * time.Second, time.Minute} {
		for range 1000 {
			if j := Jitter(d); j < d/2 || j > d {
				t.Fatalf("Jitter(%v) = %v, outside [%v, %v]", d, j, d/2, d)
			}
		}
	}
}
