package web

import (
	"errors"
	"net/http"
	"strconv"
	"testing"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// TestUnavailableSaysWhenToRetry: every 503 carries Retry-After, a whole
// number of seconds above zero, whether the service knows when it will
// hand out again (the daily limit) or not (a pause, a full queue, a link
// down). Over a real HTTP server.
func TestUnavailableSaysWhenToRetry(t *testing.T) {
	check := func(t *testing.T, what string, resp *http.Response) {
		t.Helper()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: %d, want 503", what, resp.StatusCode)
			return
		}
		n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || n <= 0 {
			t.Errorf("%s: 503 with Retry-After %q, want seconds", what, resp.Header.Get("Retry-After"))
		}
	}

	t.Run("event link paused", func(t *testing.T) {
		e, ev := newEventEnv(t)
		ev.paused = true
		resp, _ := e.serve(t).get("/e/" + evOpen)
		check(t, "paused event page", resp)
	})
	t.Run("daily limit without a known end", func(t *testing.T) {
		e, ev := newEventEnv(t)
		v := e.serve(t)
		_, body := v.get("/e/" + evOpen)
		ev.mu.Lock()
		ev.claimErr = &invites.QuotaError{Refusal: policy.Refusal{Limit: "global per day", Count: 100, Max: 100}}
		ev.mu.Unlock()
		resp, _ := v.post("/e/"+evOpen, map[string][]string{"csrf": {v.token(body)}})
		check(t, "event claim over the daily limit", resp)
	})
	for name, err := range map[string]error{"paused": &invites.PausedError{}, "full": invites.ErrRequestsFull} {
		t.Run("requests "+name, func(t *testing.T) {
			e, reqs := newRequestEnv(t)
			reqs.intake = err
			resp, _ := e.serve(t).get("/request")
			check(t, "request page "+name, resp)
		})
	}
	t.Run("healthz", func(t *testing.T) {
		e := newEnv(t, fakeHealth{up: true, pingErr: errors.New("timeout")})
		resp, _ := e.serve(t).get("/healthz")
		check(t, "/healthz with the store down", resp)
	})
}
