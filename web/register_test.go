package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRegisterMapsUsernameLikeTheServer: the name sent to the server, and
// shown on the success page, is the one the server will create (Prosody
// folds ß to ss and a final sigma to σ), not the one typed.
func TestRegisterMapsUsernameLikeTheServer(t *testing.T) {
	for _, tt := range []struct{ typed, sent string }{
		{"straße", "strasse"},
		{"Λόγος", "λόγοσ"},
		{"ALICE", "alice"},
	} {
		t.Run(tt.typed, func(t *testing.T) {
			e := newEnv(t, nil)
			cookie, token := e.form(t, idPending)
			w := e.do(postForm(idPending, formValues(token, tt.typed, testPass, testPass), cookie))
			if w.Code != http.StatusOK {
				t.Fatalf("POST = %d, want 200\n%s", w.Code, w.Body)
			}
			calls := e.inv.registrations()
			if len(calls) != 1 || calls[0].username != tt.sent {
				t.Fatalf("RegisterAccount calls %+v, want one with username %q", calls, tt.sent)
			}
			if want := tt.sent + "@" + testDomain; !strings.Contains(w.Body.String(), want) {
				t.Errorf("success page lacks %s", want)
			}
		})
	}
}

// TestRegisterRefusesUnusableUsernames: names the server cannot store and
// names that imitate other names are form errors, and the server is not
// asked.
func TestRegisterRefusesUnusableUsernames(t *testing.T) {
	for _, tt := range []struct{ name, username, message string }{
		{"50 Cyrillic letters", strings.Repeat("ж", 50), English.ErrUsernameLong},
		{"1000 ASCII letters", strings.Repeat("a", 1000), English.ErrUsernameLong},
		{"Cyrillic a in a Latin name", "\u0430dmin", English.ErrUsernameLookalike},
		{"Greek omicron in a Latin name", "r\u03bfot", English.ErrUsernameLookalike},
		{"all-Cyrillic look-alike of scope", "\u0455\u0441\u043e\u0440\u0435", English.ErrUsernameLookalike},
		{"Latin alpha for a", "\u0251dmin", English.ErrUsernameLookalike},
		{"dotless i", "adm\u0131n", English.ErrUsernameLookalike},
		{"underscore, which the hint does not offer", "a_b", English.ErrUsernameInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			cookie, token := e.form(t, idPending)
			w := e.do(postForm(idPending, formValues(token, tt.username, testPass, testPass), cookie))
			if w.Code != http.StatusUnprocessableEntity {
				t.Errorf("POST = %d, want 422", w.Code)
			}
			if !strings.Contains(w.Body.String(), `id="form-error"`) {
				t.Error("no form error shown")
			}
			if !strings.Contains(w.Body.String(), htmlEscape(tt.message)) {
				t.Errorf("form error is not %q", tt.message)
			}
			if n := len(e.inv.registrations()); n != 0 {
				t.Errorf("RegisterAccount called %d times", n)
			}
		})
	}
}

// TestRegisterAcceptsNamesInOneScript: the look-alike rules leave names
// written in one script (or in Japanese's usual mix) alone.
func TestRegisterAcceptsNamesInOneScript(t *testing.T) {
	for _, name := range []string{
		"josé", "иван", "δημήτρης", "山田", "やまだ太郎", "김민준", "chen.wei-2", "ж" + strings.Repeat("ы", 31),
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			cookie, token := e.form(t, idPending)
			w := e.do(postForm(idPending, formValues(token, name, testPass, testPass), cookie))
			if w.Code != http.StatusOK {
				t.Errorf("POST %q = %d, want 200\n%s", name, w.Code, w.Body)
			}
		})
	}
}

// TestRegisteredBrowserSeesItsAddress: after signing up, reloading the
// success page (a repeated POST) or opening the invitation link again in
// the same browser shows the new address, not "this invitation can no
// longer be used". Any other browser still gets the 410.
func TestRegisteredBrowserSeesItsAddress(t *testing.T) {
	e := newEnv(t, nil)
	csrfCk, token := e.form(t, idPending)
	post := func() *http.Request {
		return postForm(idPending, formValues(token, "alice", testPass, testPass), csrfCk)
	}
	w := e.do(post())
	if w.Code != http.StatusOK {
		t.Fatalf("registration: %d", w.Code)
	}
	cookies := w.Result().Cookies()
	with := func(r *http.Request) *http.Request {
		for _, c := range cookies {
			r.AddCookie(c)
		}
		return r
	}
	const address = "alice@" + testDomain

	for name, r := range map[string]*http.Request{
		"open the link again": with(httptest.NewRequest(http.MethodGet, "/i/"+idPending, nil)),
		"reload the success page": func() *http.Request {
			r := post()
			for _, c := range cookies {
				r.AddCookie(c)
			}
			return r
		}(),
	} {
		w := e.do(r)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), address) {
			t.Errorf("%s: %d, want 200 with %s\n%s", name, w.Code, address, w.Body)
		}
	}
	if n := len(e.inv.registrations()); n != 1 {
		t.Errorf("RegisterAccount called %d times, want once", n)
	}

	if w := e.get("/i/" + idPending); w.Code != http.StatusGone {
		t.Errorf("another browser: %d, want 410", w.Code)
	}
	// The cookie speaks for one invite only.
	if w := e.do(with(httptest.NewRequest(http.MethodGet, "/i/"+idUsed, nil))); w.Code != http.StatusGone {
		t.Errorf("another used invite with this browser's cookie: %d, want 410", w.Code)
	}
	// A forged cookie proves nothing.
	r := httptest.NewRequest(http.MethodGet, "/i/"+idPending, nil)
	for _, c := range cookies {
		c.Value = strings.Repeat("A", len(c.Value))
		r.AddCookie(c)
	}
	if w := e.do(r); w.Code != http.StatusGone {
		t.Errorf("forged cookie: %d, want 410", w.Code)
	}
}
