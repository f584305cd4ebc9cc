package web

import (
	"net/http"
	"strings"
	"testing"
)

// TestResetLinkPage: a password reset link's page names the account, asks
// only for the new password, and sets it for that account whatever
// username a crafted form sends.
func TestResetLinkPage(t *testing.T) {
	e := newEnv(t, nil)
	inv := e.inv.invites[idPending]
	inv.ResetFor = "alice@" + testDomain
	e.inv.invites[idPending] = inv

	w := e.get("/i/" + idPending)
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, "Set a new password for") || !strings.Contains(body, "alice@") {
		t.Fatalf("reset page: %d\n%s", w.Code, body)
	}
	if strings.Contains(body, English.OpenInApp) || strings.Contains(body, `id="username" name="username" type="text"`) {
		t.Error("the reset page offers app registration or a username field")
	}

	cookie, token := e.form(t, idPending)
	w = e.do(postForm(idPending, formValues(token, "mallory", testPass, testPass), cookie))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), English.ResetDoneTitle) {
		t.Fatalf("reset POST: %d\n%s", w.Code, w.Body.String())
	}
	calls := e.inv.registrations()
	if len(calls) != 1 || calls[0].username != "alice" {
		t.Errorf("registrations %+v, want one for alice", calls)
	}
}

// TestResetDoneOnReload: coming back to a reset link after setting the
// password, by reloading the page that confirmed it (the form sent again)
// or by opening the link again, says the password was changed, not that
// a new account is ready.
func TestResetDoneOnReload(t *testing.T) {
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			e := newEnv(t, nil)
			inv := e.inv.invites[idPending]
			inv.ResetFor = "alice@" + testDomain
			e.inv.invites[idPending] = inv
			text := languages[0]
			for _, l := range languages {
				if l.Lang == lang {
					text = l
				}
			}
			v := e.serve(t)
			v.lang = lang
			_, body := v.get("/i/" + idPending)
			form := formValues(v.token(body), "alice", testPass, testPass)
			if resp, body := v.post("/i/"+idPending, form); resp.StatusCode != http.StatusOK || !strings.Contains(body, text.ResetDoneTitle) {
				t.Fatalf("setting the password: %d\n%s", resp.StatusCode, body)
			}
			for _, again := range []struct {
				how  string
				send func() (*http.Response, string)
			}{
				{"reloading the confirmation", func() (*http.Response, string) { return v.post("/i/"+idPending, form) }},
				{"opening the link again", func() (*http.Response, string) { return v.get("/i/" + idPending) }},
			} {
				resp, body := again.send()
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, text.ResetDoneTitle) ||
					!strings.Contains(body, text.ResetDoneLead) || strings.Contains(body, text.SuccessTitle) {
					t.Errorf("%s: %d, want the password changed (%q), not %q\n%s", again.how, resp.StatusCode,
						text.ResetDoneTitle, text.SuccessTitle, body)
				}
				if !strings.Contains(body, "alice@"+testDomain) {
					t.Errorf("%s: the page does not name the account", again.how)
				}
			}
		})
	}
}
