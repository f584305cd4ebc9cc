package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// TestFormErrorsTiedToTheirField: a form sent back with an error about one
// field marks that field aria-invalid and names the error in its
// aria-describedby (with its hint, if it has one), so a screen reader on
// the field reads what is wrong; no other field is marked. An error about
// no field (an expired form) marks none. Over a real HTTP server.
func TestFormErrorsTiedToTheirField(t *testing.T) {
	type sent struct {
		name   string
		vals   url.Values
		regErr error
		field  string // "" for none
	}
	check := func(t *testing.T, s sent, body string, fields []string) {
		t.Helper()
		if !strings.Contains(body, `id="form-error"`) {
			t.Fatalf("%s: no error on the page\n%s", s.name, body)
		}
		checkARIARefs(t, s.name, body)
		for _, f := range fields {
			tag := inputTag(body, f)
			if tag == "" {
				t.Fatalf("%s: no field %q", s.name, f)
			}
			invalid := strings.Contains(tag, `aria-invalid="true"`)
			described := slices.Contains(describedBy(body, f), "form-error")
			switch {
			case f == s.field && (!invalid || !described):
				t.Errorf("%s: the error is about %s, whose field is %s", s.name, f, tag)
			case f != s.field && (invalid || described):
				t.Errorf("%s: field %s is marked, but the error is about %q: %s", s.name, f, s.field, tag)
			}
		}
	}
	regFields := []string{"username", "password", "password2"}
	t.Run("registration", func(t *testing.T) {
		for _, s := range []sent{
			{"empty username", formValues("", "", testPass, testPass), nil, "username"},
			{"invalid username", formValues("", "a b", testPass, testPass), nil, "username"},
			{"taken username", formValues("", "alice", testPass, testPass), invites.ErrUsernameTaken, "username"},
			{"short password", formValues("", "alice", "short", "short"), nil, "password"},
			{"passwords differ", formValues("", "alice", testPass, testPass+"x"), nil, "password2"},
			{"expired form", formValues("stale", "alice", testPass, testPass), nil, ""},
		} {
			e := newEnv(t, nil)
			e.inv.regErr = s.regErr
			v := e.serve(t)
			_, body := v.get("/i/" + idPending)
			if s.vals.Get("csrf") == "" {
				s.vals.Set("csrf", v.token(body))
			}
			_, body = v.post("/i/"+idPending, s.vals)
			check(t, s, body, regFields)
		}
	})
	t.Run("reset", func(t *testing.T) {
		for _, s := range []sent{
			{"reset: short password", formValues("", "alice", "short", "short"), nil, "password"},
			{"reset: passwords differ", formValues("", "alice", testPass, testPass+"x"), nil, "password2"},
		} {
			e := newEnv(t, nil)
			inv := e.inv.invites[idPending]
			inv.ResetFor = "alice@" + testDomain
			e.inv.invites[idPending] = inv
			v := e.serve(t)
			_, body := v.get("/i/" + idPending)
			s.vals.Set("csrf", v.token(body))
			_, body = v.post("/i/"+idPending, s.vals)
			check(t, s, body, []string{"password", "password2"})
		}
	})
	t.Run("account request", func(t *testing.T) {
		for _, s := range []sent{
			{"no name", requestValues("", "", "", "hi"), nil, "name"},
			{"name too long", requestValues("", strings.Repeat("a", invites.MaxRequestName+1), "", "hi"), nil, "name"},
			{"bad contact", requestValues("", "Anna", "not an address", "hi"), nil, "contact"},
			{"no message", requestValues("", "Anna", "", ""), nil, "message"},
			{"message too long", requestValues("", "Anna", "", strings.Repeat("a", invites.MaxRequestMessage+1)), nil, "message"},
		} {
			e, _ := newRequestEnv(t)
			v := e.serve(t)
			_, body := v.get("/request")
			s.vals.Set("csrf", v.token(body))
			_, body = v.post("/request", s.vals)
			check(t, s, body, []string{"name", "contact", "message"})
		}
	})
}
