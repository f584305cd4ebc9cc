package web

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// moduleHealth is a fakeHealth that also knows the server's module.
type moduleHealth struct {
	fakeHealth
	module string
}

func (h moduleHealth) ServerModule() string { return h.module }

// serverHealth also knows the server program.
type serverHealth struct {
	moduleHealth
	software string
}

func (h serverHealth) ServerSoftware() string { return h.software }

// TestHealthzNamesModule: /healthz says whether the server runs
// mod_invitebot, which never makes the bot unhealthy by itself.
func TestHealthzNamesModule(t *testing.T) {
	tests := []struct {
		name   string
		health Health
		want   int
		lines  []string
	}{
		{"loaded", moduleHealth{fakeHealth{up: true}, "loaded"}, http.StatusOK,
			[]string{"ok", "prosody module mod_invitebot: loaded"}},
		{"not loaded", moduleHealth{fakeHealth{up: true}, "not loaded"}, http.StatusOK,
			[]string{"ok", "prosody module mod_invitebot: not loaded"}},
		{"link down", moduleHealth{fakeHealth{pingErr: errors.New("x")}, "unknown"}, http.StatusServiceUnavailable,
			[]string{"component link down", "database not answering", "prosody module mod_invitebot: unknown"}},
		{"health without module state", fakeHealth{up: true}, http.StatusOK, []string{"ok"}},
		{"server named", serverHealth{moduleHealth{fakeHealth{up: true}, "loaded"}, "Prosody 13.0.8"}, http.StatusOK,
			[]string{"ok", "server: Prosody 13.0.8", "prosody module mod_invitebot: loaded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newEnv(t, tt.health).get("/healthz")
			got := strings.Split(strings.TrimSpace(w.Body.String()), "\n")
			if w.Code != tt.want || strings.Join(got, "|") != strings.Join(tt.lines, "|") {
				t.Errorf("GET /healthz = %d %q, want %d %q", w.Code, got, tt.want, tt.lines)
			}
		})
	}
}
