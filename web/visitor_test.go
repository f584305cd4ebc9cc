package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// visitor is a browser-like client of a real HTTP server: it keeps the
// cookies it is given and sends them back, whatever their Secure flag
// (the handler is configured for an https address, the test server is
// plain http), and follows no redirects.
type visitor struct {
	t       *testing.T
	ts      *httptest.Server
	lang    string
	cookies map[string]*http.Cookie
}

// serve starts a real HTTP server for e's handler, closed in t.Cleanup,
// and returns a visitor of it.
func (e *env) serve(t *testing.T) *visitor {
	t.Helper()
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	return &visitor{t: t, ts: ts, lang: "en", cookies: map[string]*http.Cookie{}}
}

// do sends r with the visitor's cookies and returns the response and its
// body, addresses unmarked as a reader sees them (see env.do).
func (v *visitor) do(r *http.Request) (*http.Response, string) {
	v.t.Helper()
	r.Header.Set("Accept-Language", v.lang)
	for _, c := range v.cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	client := *v.ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(r)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(v.cookies, c.Name)
		} else {
			v.cookies[c.Name] = c
		}
	}
	b = addrBlock.ReplaceAll(b, []byte("$1"))
	return resp, string(addrMarkup.ReplaceAll(b, nil))
}

func (v *visitor) get(path string) (*http.Response, string) {
	v.t.Helper()
	r, err := http.NewRequest(http.MethodGet, v.ts.URL+path, nil)
	if err != nil {
		v.t.Fatal(err)
	}
	return v.do(r)
}

// post sends a form the way a browser on the page's own origin does.
func (v *visitor) post(path string, vals url.Values) (*http.Response, string) {
	v.t.Helper()
	r, err := http.NewRequest(http.MethodPost, v.ts.URL+path, strings.NewReader(vals.Encode()))
	if err != nil {
		v.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return v.do(r)
}

// token is the CSRF token of the form on the page body.
func (v *visitor) token(body string) string {
	v.t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		v.t.Fatal("the page has no form token")
	}
	return m[1]
}
