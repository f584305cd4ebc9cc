package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"durare.org/invitebot/invites"
)

var (
	idAttrRE   = regexp.MustCompile(`\bid="([^"]+)"`)
	ariaRefsRE = regexp.MustCompile(`\baria-(labelledby|describedby)="([^"]*)"`)
)

// checkARIARefs fails the test for every aria-labelledby or
// aria-describedby of body that names an id the page does not have: a
// screen reader then reads nothing where a label or hint should be.
func checkARIARefs(t *testing.T, page, body string) {
	t.Helper()
	ids := map[string]bool{}
	for _, m := range idAttrRE.FindAllStringSubmatch(body, -1) {
		ids[m[1]] = true
	}
	for _, m := range ariaRefsRE.FindAllStringSubmatch(body, -1) {
		refs := strings.Fields(m[2])
		if len(refs) == 0 {
			t.Errorf("%s: empty aria-%s", page, m[1])
		}
		for _, ref := range refs {
			if !ids[ref] {
				t.Errorf("%s: aria-%s names %q, which is not on the page", page, m[1], ref)
			}
		}
	}
}

// httpGet fetches path from the real HTTP server ts.
func httpGet(t *testing.T, ts *httptest.Server, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// TestARIAReferencesExist: on every page, in every state, the ids that
// aria-labelledby and aria-describedby name are there.
func TestARIAReferencesExist(t *testing.T) {
	e, _ := newEventEnv(t)
	reqs := &fakeRequests{byKey: map[string]invites.Request{}}
	e2 := newEnv(t, nil, func(c *Config) { c.Requests, c.RequestForm = reqs, true })
	inv := e.inv.invites[idOther]
	inv.ResetFor = "alice@" + testDomain
	e.inv.invites[idOther] = inv

	ts := httptest.NewServer(e.h)
	defer ts.Close()
	rs := httptest.NewServer(e2.h)
	defer rs.Close()
	waiting, _ := reqs.SubmitRequest(context.Background(), invites.NewRequest{Name: "Anna", Message: "hi"})
	denied, _ := reqs.SubmitRequest(context.Background(), invites.NewRequest{Name: "Bo", Message: "hi"})
	reqs.set(denied, func(r *invites.Request) { r.State, r.Reason = invites.RequestDenied, "no" })

	for _, lang := range []string{"en", "de"} {
		for _, p := range []struct {
			ts   *httptest.Server
			name string
			path string
		}{
			{ts, "landing page", "/i/" + idPending},
			{ts, "reset page", "/i/" + idOther},
			{ts, "gone page", "/i/" + idUsed},
			{ts, "not found page", "/i/" + idUnknown},
			{ts, "event page", "/e/" + evOpen},
			{rs, "request page", "/request"},
			{rs, "waiting status page", "/r/" + waiting},
			{rs, "declined status page", "/r/" + denied},
		} {
			resp, body := httpGet(t, p.ts, p.path, "Accept-Language", lang)
			if resp.StatusCode >= 500 {
				t.Errorf("%s (%s): %d", p.name, lang, resp.StatusCode)
			}
			checkARIARefs(t, p.name+" ("+lang+")", body)
		}
	}
}

// inputTag is the start tag of the form field with id, or "".
func inputTag(body, id string) string {
	m := regexp.MustCompile(`<(?:input|textarea)\b[^>]*\bid="` + regexp.QuoteMeta(id) + `"[^>]*>`).FindString(body)
	return m
}

// describedBy is the list of ids the form field id names in
// aria-describedby.
func describedBy(body, id string) []string {
	m := regexp.MustCompile(`\baria-describedby="([^"]*)"`).FindStringSubmatch(inputTag(body, id))
	if m == nil {
		return nil
	}
	return strings.Fields(m[1])
}

// TestUsernameRulesUpFront: the registration form says what a username
// may hold under the field, before anything went wrong, and the field
// names that hint as its description.
func TestUsernameRulesUpFront(t *testing.T) {
	e := newEnv(t, nil)
	v := e.serve(t)
	for _, text := range languages {
		v.lang = text.Lang
		_, body := v.get("/i/" + idPending)
		hint := regexp.MustCompile(`<p class="hint" id="username-hint">([^<]*)</p>`).FindStringSubmatch(body)
		if want := htmlEscape(text.UsernameHint); hint == nil || hint[1] != want {
			t.Errorf("%s: username hint %q, want %q", text.Lang, hint, want)
		}
		if refs := describedBy(body, "username"); !slices.Contains(refs, "username-hint") {
			t.Errorf("%s: the username field is described by %q, want the hint", text.Lang, refs)
		}
		checkARIARefs(t, "landing page ("+text.Lang+")", body)
	}
}
