package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// Sign-up confirmed by mail (requests.verify: email): the request page asks
// for a mail address as well; the status page of a request whose address
// waits to be confirmed takes the code from the mail, and the link in the
// mail opens a page with one button that confirms (a link alone changes
// nothing: mail scanners open links too).

// confirmCSRFID binds the confirmation form's CSRF token to this form.
const confirmCSRFID = "confirm-mail"

// Refusal labels of the request page's metrics for addresses.
const (
	refusedMail = "mail_"
)

// Signup is what the pages need for sign-ups confirmed by mail.
type Signup interface {
	// VerifiesMail reports whether the request page asks for a mail
	// address and confirms it.
	VerifiesMail() bool
	// ConfirmRequest confirms the address of the request whose status
	// page key is key with code; see invites.Service.ConfirmRequest.
	ConfirmRequest(ctx context.Context, key, code string) (invites.Request, error)
}

// ConfirmURL is the link a confirmation mail carries: the status page of
// the request whose key is key, with the code to confirm.
func ConfirmURL(publicURL, key, code string) string {
	return strings.TrimRight(publicURL, "/") + "/r/" + url.PathEscape(key) + "/confirm/" + url.PathEscape(code)
}

// codeForm is the confirmation form's state.
type codeForm struct {
	CSRF, Key, Code, Error string
	// Hidden says the code came in the link: the form shows only the
	// button.
	Hidden bool
}

// asksMail reports whether the request page asks for a mail address.
func (h *requestPages) asksMail() bool { return h.signup != nil && h.signup.VerifiesMail() }

// mailRefusal is the message for an address the service refused.
func (h *requestPages) mailRefusal(err error) (string, bool) {
	var refused *invites.MailRefusedError
	if !errors.As(err, &refused) {
		return "", false
	}
	h.metrics.requestRefused(refusedMail + string(refused.Limit))
	switch refused.Limit {
	case invites.MailBlockedDomain:
		return h.text.ErrMailBlocked, true
	case policy.MailPerAddress:
		return h.text.ErrMailPerAddress, true
	case policy.MailPerDomain:
		return h.text.ErrMailPerDomain, true
	default:
		// Whether an account or an open request holds it is not said.
		return h.text.ErrMailTaken, true
	}
}

// confirmPage shows the status page of a request whose address waits to
// be confirmed: the form that takes the code.
func (h *requestPages) confirmPage(w http.ResponseWriter, r *http.Request, status int, req invites.Request, f codeForm) {
	f.CSRF = h.csrf.token(h.csrf.cookieValue(w, r), confirmCSRFID)
	d := pageData{Title: h.text.ConfirmTitle, Message: fmt.Sprintf(h.text.ConfirmBody, req.Name), Code: f}
	if f.Hidden {
		d.Message = h.text.ConfirmLinkBody
	}
	h.render(w, r, status, "confirm", d)
}

// confirmLink serves GET /r/{key}/confirm/{code}, the link in the mail: a
// page with the button that confirms.
func (h *requestPages) confirmLink(w http.ResponseWriter, r *http.Request) {
	if h.reqs == nil || !h.asksMail() {
		h.notFound(w, r)
		return
	}
	key := r.PathValue("key")
	req, err := h.reqs.RequestStatus(r.Context(), key)
	if err != nil || !req.Unconfirmed || req.Outcome(h.now()) != invites.RequestOpen {
		// Confirmed already, answered, lapsed or no such request: the
		// status page says which.
		http.Redirect(w, r, h.base+"/r/"+url.PathEscape(key), http.StatusSeeOther)
		return
	}
	h.confirmPage(w, r, http.StatusOK, req, codeForm{Key: key, Code: r.PathValue("code"), Hidden: true})
}

// confirm serves POST /r/{key}/confirm.
func (h *requestPages) confirm(w http.ResponseWriter, r *http.Request) {
	if h.reqs == nil || !h.asksMail() {
		h.notFound(w, r)
		return
	}
	if !h.readForm(w, r) {
		return
	}
	key := r.PathValue("key")
	req, err := h.reqs.RequestStatus(r.Context(), key)
	if errors.Is(err, invites.ErrNoSuchRequest) {
		h.renderError(w, r, http.StatusNotFound, h.text.StatusNotFoundTitle, h.text.StatusNotFoundBody, "")
		return
	} else if err != nil {
		h.log.ErrorContext(r.Context(), "request status", slog.Any("err", err))
		h.internal(w, r)
		return
	}
	f := codeForm{Key: key}
	if err := h.origin.Check(r); err != nil {
		f.Error = h.text.ErrFormExpired
		h.confirmPage(w, r, http.StatusForbidden, req, f)
		return
	}
	if err := h.csrf.check(r, confirmCSRFID, r.PostFormValue("csrf")); err != nil {
		f.Error = h.text.ErrFormExpired
		h.confirmPage(w, r, http.StatusForbidden, req, f)
		return
	}
	_, err = h.signup.ConfirmRequest(r.Context(), key, r.PostFormValue("code"))
	var wrong *invites.ConfirmError
	switch {
	case err == nil, errors.Is(err, invites.ErrAlreadyConfirmed):
		h.log.InfoContext(r.Context(), "account request confirmed", slog.String("request", req.ID))
		http.Redirect(w, r, h.base+"/r/"+url.PathEscape(key), http.StatusSeeOther)
	case errors.As(err, &wrong):
		f.Error = fmt.Sprintf(h.text.ErrConfirmWrong, wrong.Left)
		h.confirmPage(w, r, http.StatusUnprocessableEntity, req, f)
	case errors.Is(err, invites.ErrWrongCode):
		f.Error = h.text.ErrConfirmMalformed
		h.confirmPage(w, r, http.StatusUnprocessableEntity, req, f)
	case errors.Is(err, invites.ErrCodeUsedUp):
		d := pageData{Title: h.text.ConfirmUsedUpTitle, Message: h.text.ConfirmUsedUpBody}
		if h.cfg.RequestForm {
			d.AskAgain = h.base + "/request"
		}
		h.render(w, r, http.StatusGone, "status", d)
	case errors.Is(err, invites.ErrPaused):
		h.requestClosed(w, r, err)
	default:
		h.log.ErrorContext(r.Context(), "confirming an account request failed", slog.String("request", req.ID), slog.Any("err", err))
		h.internal(w, r)
	}
}
