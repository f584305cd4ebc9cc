package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/invites"
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

// mainOf is the page's own content, without the footer every page shares.
func mainOf(body string) string {
	_, after, _ := strings.Cut(body, "<main>")
	content, _, _ := strings.Cut(after, "</main>")
	return content
}

// TestResetPagesSayLink: a reset link's pages call it a link, not an
// invitation: its landing page, the form sent while it is in use, and
// the pages once it no longer works.
func TestResetPagesSayLink(t *testing.T) {
	invitation := map[string]string{"en": "invitation", "de": "einladung"}
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			e := newEnv(t, nil)
			for _, id := range []string{idPending, idUsed, idExpired} {
				inv := e.inv.invites[id]
				inv.ResetFor = "alice@" + testDomain
				e.inv.invites[id] = inv
			}
			v := e.serve(t)
			v.lang = lang
			check := func(what string, resp *http.Response, body string, status int) {
				t.Helper()
				if resp.StatusCode != status {
					t.Errorf("%s: %d, want %d", what, resp.StatusCode, status)
				}
				if strings.Contains(strings.ToLower(mainOf(body)), invitation[lang]) {
					t.Errorf("%s calls the reset link an invitation:\n%s", what, mainOf(body))
				}
			}
			resp, body := v.get("/i/" + idPending)
			check("reset page", resp, body, http.StatusOK)
			token := v.token(body)

			setRegErr := func(err error) { e.inv.mu.Lock(); e.inv.regErr = err; e.inv.mu.Unlock() }
			setRegErr(invites.ErrRegistrationInProgress)
			resp, body = v.post("/i/"+idPending, formValues(token, "alice", testPass, testPass))
			check("reset page while in use", resp, body, http.StatusConflict)
			setRegErr(invites.ErrTokenRejected)
			resp, body = v.post("/i/"+idPending, formValues(token, "alice", testPass, testPass))
			check("reset link the server refused", resp, body, http.StatusGone)
			setRegErr(nil)

			resp, body = v.get("/i/" + idUsed)
			check("used reset link", resp, body, http.StatusGone)
			resp, body = v.get("/i/" + idExpired)
			check("expired reset link", resp, body, http.StatusGone)

			// Without an expiry the page says how often the link works.
			e.inv.mu.Lock()
			inv := e.inv.invites[idPending]
			inv.Expires = time.Time{}
			e.inv.invites[idPending] = inv
			e.inv.mu.Unlock()
			resp, body = v.get("/i/" + idPending)
			check("reset page without expiry", resp, body, http.StatusOK)
		})
	}
}
