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
