package web

import (
	"net/http"
	"strings"
	"testing"
)

// TestWrongMethod: a page asked with a method it does not take answers
// 405 with Allow naming the ones it does, in the reader's language; an
// address that is no page stays 404 whatever the method. Over a real
// HTTP server.
func TestWrongMethod(t *testing.T) {
	e, _ := newEventEnv(t, func(c *Config) {
		c.Requests, c.RequestForm = &fakeRequests{}, true
	})
	v := e.serve(t)
	const getOnly, getPost = "GET, HEAD", "GET, HEAD, POST"
	for _, tt := range []struct {
		method, path, allow string
	}{
		{http.MethodPut, "/i/" + idPending, getPost},
		{http.MethodDelete, "/i/" + idPending, getPost},
		{http.MethodPost, "/i/" + idPending + "/qr.png", getOnly},
		{http.MethodPost, "/i/" + idPending + "/qr.svg", getOnly},
		{http.MethodPut, "/request", getPost},
		{http.MethodPost, "/r/request000000001" + strings.Repeat("s", 26), getOnly},
		{http.MethodPatch, "/e/" + evOpen, getPost},
		{http.MethodPost, "/e/" + evOpen + "/qr.png", getOnly},
		{http.MethodPost, "/e/" + evOpen + "/qr.svg", getOnly},
		{http.MethodPost, "/static/style.css", getOnly},
		{http.MethodPost, "/healthz", getOnly},
		{http.MethodPost, "/metrics", getOnly},
		{http.MethodOptions, "/i/" + idPending, getPost},
	} {
		for _, lang := range []string{"en", "de"} {
			v.lang = lang
			r, err := http.NewRequest(tt.method, v.ts.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := v.do(r)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tt.allow {
				t.Errorf("%s %s: %d, Allow %q; want 405, Allow %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), tt.allow)
				continue
			}
			want := English.MethodNotAllowedTitle
			if lang == "de" {
				want = languages[1].MethodNotAllowedTitle
			}
			if !strings.Contains(body, want) {
				t.Errorf("%s %s (%s): the page does not say %q", tt.method, tt.path, lang, want)
			}
		}
	}
	// No page there: 404, whatever the method.
	for _, path := range []string{"/", "/nothing", "/i/" + idPending + "/secret", "/static/"} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
			r, _ := http.NewRequest(method, v.ts.URL+path, nil)
			if resp, _ := v.do(r); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: %d, want 404", method, path, resp.StatusCode)
			}
		}
	}
	// The right methods still work.
	for _, path := range []string{"/i/" + idPending, "/e/" + evOpen, "/static/style.css", "/healthz"} {
		r, _ := http.NewRequest(http.MethodHead, v.ts.URL+path, nil)
		if resp, _ := v.do(r); resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %d, want 200", path, resp.StatusCode)
		}
	}
}
