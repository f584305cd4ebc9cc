// Package testwait waits in tests for a state that comes about with no
// event to wait on: a line in a log, a roster that changed over presence,
// a reply that changes once the bot has learnt something. It polls, and
// fails the test with what it was waiting for when time runs out, so that
// each test does not write its own deadline loop.
package testwait

import (
	"errors"
	"testing"
	"time"
)

// The first poll comes at once; the pause between later polls starts at
// firstInterval and doubles up to maxInterval: a state that comes about
// quickly is seen quickly, and a slow one (each poll a chat with the bot)
// is not asked about too often.
const (
	firstInterval = 10 * time.Millisecond
	maxInterval   = 100 * time.Millisecond
)

// errNotYet stands for For's cond reporting false.
var errNotYet = errors.New("not yet")

// For calls cond until it reports true and then returns. If timeout has
// passed when cond reports false, For fails t with t.Fatalf saying it timed
// out waiting for what, so what should read well after "waiting for" (for
// example "the bot to log \"up\""). cond runs on the calling goroutine and
// may itself fail t.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	poll(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}, false)
}

// ForNil is For for a check that says why it is not yet satisfied: it
// calls check until it returns nil, and on timeout fails t with what and
// the error check returned last (for example the state it last saw).
func ForNil(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	poll(t, timeout, what, check, true)
}

func poll(t testing.TB, timeout time.Duration, what string, check func() error, showErr bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := firstInterval
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if showErr {
				t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
			} else {
				t.Fatalf("timed out after %v waiting for %s", timeout, what)
			}
			return // for a testing.TB whose Fatalf returns
		}
		time.Sleep(interval)
		interval = min(2*interval, maxInterval)
	}
}
