package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"durare.org/invitebot/invites"
)

// The password recovery page (http.recovery): /recover takes an account's
// name, and answers the same for every name, at once. Whether a reset
// link is mailed or the account's inviter is asked in chat, and whether
// the account exists at all, is decided after the answer (invites).

// Tunables of the recovery page.
const (
	// recoverCSRFID binds the recovery form's CSRF token to this form.
	recoverCSRFID = "recover-password"
	// maxRecoverName bounds what the name field takes, in bytes.
	maxRecoverName = 1100
)

// Recoverer is what the recovery page needs from the invites service.
type Recoverer interface {
	// RecoveryEnabled reports whether recovery is on.
	RecoveryEnabled() bool
	// Recover takes a recovery request for username from a page in
	// lang; see invites.Service.Recover.
	Recover(ctx context.Context, username, lang string) error
}

// recoverPages serves /recover.
type recoverPages struct {
	site
	rec   Recoverer
	limit *limiter
}

// recoverForm is the recovery form's state.
type recoverForm struct {
	CSRF, Error string
	MaxName     int
	Domain      string
}

func (h *recoverPages) open(w http.ResponseWriter, r *http.Request) bool {
	if h.rec == nil || !h.rec.RecoveryEnabled() {
		h.notFound(w, r)
		return false
	}
	return true
}

// page serves GET /recover.
func (h *recoverPages) page(w http.ResponseWriter, r *http.Request) {
	if !h.open(w, r) {
		return
	}
	h.renderRecover(w, r, http.StatusOK, recoverForm{})
}

func (h *recoverPages) renderRecover(w http.ResponseWriter, r *http.Request, status int, f recoverForm) {
	f.CSRF = h.csrf.token(h.csrf.cookieValue(w, r), recoverCSRFID)
	f.MaxName, f.Domain = maxRecoverName, h.cfg.Domain
	h.render(w, r, status, "recover", pageData{Title: h.text.RecoverTitle,
		Message: fmt.Sprintf(h.text.RecoverIntro, h.cfg.Domain), Recover: f})
}

// submit serves POST /recover. Whatever the name, the answer is the same
// page.
func (h *recoverPages) submit(w http.ResponseWriter, r *http.Request) {
	if !h.open(w, r) {
		return
	}
	client := clientKey(r, h.cfg.TrustProxy)
	if ok, wait := h.limit.allow(client); !ok {
		h.tooMany(w, r, wait, h.text.ErrRecoverTooMany)
		return
	}
	if !h.readForm(w, r) {
		return
	}
	if h.origin.Check(r) != nil || h.csrf.check(r, recoverCSRFID, r.PostFormValue("csrf")) != nil {
		h.renderRecover(w, r, http.StatusForbidden, recoverForm{Error: h.text.ErrFormExpired})
		return
	}
	name := r.PostFormValue("username")
	if name == "" || len(name) > maxRecoverName {
		h.renderRecover(w, r, http.StatusUnprocessableEntity, recoverForm{Error: h.text.ErrRecoverName})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	err := h.rec.Recover(ctx, name, h.text.Lang)
	switch {
	case err == nil:
		// Neither the name nor anything about it goes to the log here.
		h.render(w, r, http.StatusOK, "status", pageData{Title: h.text.RecoverSentTitle, Message: h.text.RecoverSentBody,
			Hint: h.text.RecoverSentHint})
	case errors.Is(err, invites.ErrPaused):
		// Paused for every name alike.
		h.unavailable(w, r, retryUnknown, h.text.RecoverClosedTitle, h.text.RequestClosedPaused)
	default:
		h.log.ErrorContext(r.Context(), "password recovery", slog.Any("err", err))
		h.internal(w, r)
	}
}
