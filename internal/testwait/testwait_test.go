package testwait

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatalf instead of ending the
// test, and counts calls to Helper.
type recorder struct {
	testing.TB
	helpers int
	fatals  []string
}

func (r *recorder) Helper() { r.helpers++ }

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}

func TestForReturnsOnceCondHolds(t *testing.T) {
	for _, n := range []int{1, 3} {
		r := &recorder{TB: t}
		calls := 0
		start := time.Now()
		For(r, time.Minute, "cond to hold", func() bool {
			calls++
			return calls == n
		})
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("cond true on call %d: For returned after %v", n, took)
		}
		if calls != n || len(r.fatals) != 0 {
			t.Errorf("cond true on call %d: called %d times, failures %q", n, calls, r.fatals)
		}
		if r.helpers == 0 {
			t.Error("For did not call t.Helper")
		}
	}
}

func TestForFailsOnTimeout(t *testing.T) {
	r := &recorder{TB: t}
	calls := 0
	start := time.Now()
	For(r, 50*time.Millisecond, "the moon", func() bool { calls++; return false })
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", took)
	}
	if len(r.fatals) != 1 || r.fatals[0] != "timed out after 50ms waiting for the moon" {
		t.Errorf("failures %q, want one naming what was awaited", r.fatals)
	}
	if calls < 2 {
		t.Errorf("cond called %d times in 50ms", calls)
	}
	if r.helpers == 0 {
		t.Error("For did not call t.Helper")
	}
}

func TestForNil(t *testing.T) {
	r := &recorder{TB: t}
	calls := 0
	ForNil(r, time.Minute, "a nil error", func() error {
		if calls++; calls < 2 {
			return errors.New("once more")
		}
		return nil
	})
	if calls != 2 || len(r.fatals) != 0 {
		t.Errorf("called %d times, failures %q", calls, r.fatals)
	}

	r = &recorder{TB: t}
	calls = 0
	ForNil(r, 30*time.Millisecond, "the sweep", func() error {
		calls++
		return fmt.Errorf("state %d", calls)
	})
	want := fmt.Sprintf("timed out after 30ms waiting for the sweep: state %d", calls)
	if len(r.fatals) != 1 || r.fatals[0] != want {
		t.Errorf("failures %q, want %q (the last error)", r.fatals, want)
	}
	if r.helpers == 0 {
		t.Error("ForNil did not call t.Helper")
	}
}
