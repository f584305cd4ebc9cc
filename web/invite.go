package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
)

// invitePages serves an invite's own pages, /i/{id}: the landing page,
// its QR codes and registration in the browser.
type invitePages struct {
	site
	inv Invites
	// limit bounds registration attempts per client address.
	limit *limiter
}

// lookup finds the invite named in the path and answers 404, 410 or 500
// itself when there is no usable one. Only the invite asked for is ever
// read, so a page reveals nothing about other invites.
func (h *invitePages) lookup(w http.ResponseWriter, r *http.Request) (invites.Invite, bool) {
	id := r.PathValue("id")
	if !invites.ValidID(id) {
		h.notFound(w, r)
		return invites.Invite{}, false
	}
	inv, err := h.inv.Lookup(r.Context(), id)
	switch {
	case errors.Is(err, invites.ErrNoSuchInvite):
		h.notFound(w, r)
		return invites.Invite{}, false
	case err != nil:
		h.log.ErrorContext(r.Context(), "look up invite", slog.String("id", id), slog.Any("err", err))
		h.internal(w, r)
		return invites.Invite{}, false
	case !inv.Usable(h.now()):
		if h.welcomeBack(w, r, inv) {
			return invites.Invite{}, false
		}
		h.goneInvite(w, r, inv, false)
		return invites.Invite{}, false
	case !strings.HasPrefix(inv.URI, "xmpp:"):
		// The URI becomes a link and a header: anything else is corrupt data.
		h.log.ErrorContext(r.Context(), "invite has no xmpp: URI", slog.String("id", id))
		h.internal(w, r)
		return invites.Invite{}, false
	}
	return inv, true
}

// goneInvite answers 410 for inv, which can no longer be used, or whose
// token the server refused (tokenRejected). A reset link is called a
// link, and its holder is sent to whoever looks after the service rather
// than to an inviter.
func (h *invitePages) goneInvite(w http.ResponseWriter, r *http.Request, inv invites.Invite, tokenRejected bool) {
	t := h.text
	if inv.ResetFor == "" {
		body := t.GoneBody
		if tokenRejected {
			body = t.TokenUsedBody
		}
		h.gone(w, r, body)
		return
	}
	body := t.ResetGoneBody
	if tokenRejected {
		body = t.ResetTokenUsedBody
	}
	h.renderError(w, r, http.StatusGone, t.ResetGoneTitle, body, t.ResetAskAgain)
}

// landing serves GET /i/{id}.
func (h *invitePages) landing(w http.ResponseWriter, r *http.Request) {
	inv, ok := h.lookup(w, r)
	if !ok {
		return
	}
	h.renderLanding(w, r, http.StatusOK, inv, formData{})
}

// qr serves the invite's QR code rendered by draw.
func qr(contentType string, draw func(string) ([]byte, error)) func(*invitePages, http.ResponseWriter, *http.Request) {
	return func(h *invitePages, w http.ResponseWriter, r *http.Request) {
		inv, ok := h.lookup(w, r)
		if !ok {
			return
		}
		img, err := draw(inv.URI)
		if err != nil {
			h.log.ErrorContext(r.Context(), "draw qr code", slog.String("id", inv.ID), slog.Any("err", err))
			h.internal(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-store") // it encodes the token
		w.Header().Set("Content-Length", strconv.Itoa(len(img)))
		_, _ = w.Write(img)
	}
}

// register serves POST /i/{id}: the browser registration form.
func (h *invitePages) register(w http.ResponseWriter, r *http.Request) {
	// Count the attempt before any work, so that floods of bad requests
	// are limited too.
	if ok, wait := h.limit.allow(clientKey(r, h.cfg.TrustProxy)); !ok {
		h.tooMany(w, r, wait, h.text.ErrTooMany)
		return
	}
	inv, ok := h.lookup(w, r)
	if !ok || !h.readForm(w, r) {
		return
	}
	f, username, ok := h.registrationForm(w, r, inv)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), registerTimeout)
	defer cancel()
	account, err := h.inv.RegisterAccount(ctx, inv.ID, username, r.PostFormValue("password"))
	log := h.log.With(slog.String("id", inv.ID), slog.String("username", username))
	if err != nil {
		h.registerFailed(w, r, log, inv, f, err)
		return
	}
	log.InfoContext(r.Context(), "account registered in the browser", slog.String("jid", account.String()))
	h.registered(w, r, inv, account)
}

// registrationForm checks the posted form before the server is bothered.
// It returns the form to show again and the username to register, or
// answers the request itself and reports false.
func (h *invitePages) registrationForm(w http.ResponseWriter, r *http.Request, inv invites.Invite) (formData, string, bool) {
	f := formData{Username: strings.TrimSpace(r.PostFormValue("username"))}
	if inv.ResetFor != "" {
		// A reset link sets the password of its own account, whatever
		// the form says.
		f.Username = localOf(inv.ResetFor)
	}
	if err := h.origin.Check(r); err != nil {
		h.log.InfoContext(r.Context(), "cross-origin registration refused", slog.String("id", inv.ID), slog.Any("err", err))
		f.Error = h.text.ErrFormExpired
		h.renderLanding(w, r, http.StatusForbidden, inv, f)
		return f, "", false
	}
	if err := h.csrf.check(r, inv.ID, r.PostFormValue("csrf")); err != nil {
		f.Error = h.text.ErrFormExpired
		h.renderLanding(w, r, http.StatusForbidden, inv, f)
		return f, "", false
	}
	username, msg, field := h.checkForm(f.Username, r.PostFormValue("password"), r.PostFormValue("password2"), h.domainOf(inv))
	if msg != "" {
		f.Error, f.Field = msg, field
		h.renderLanding(w, r, http.StatusUnprocessableEntity, inv, f)
		return f, "", false
	}
	return f, username, true
}

// registered shows the new account, and has the browser remember it so
// that coming back to the used invitation says so instead of "gone".
func (h *invitePages) registered(w http.ResponseWriter, r *http.Request, inv invites.Invite, account jid.JID) {
	h.csrf.setRegistered(w, inv.ID, account.String())
	h.renderSuccess(w, r, inv, account.String())
}

// renderSuccess shows account as what inv made: a new account, or a new
// password for the account of a reset link.
func (h *invitePages) renderSuccess(w http.ResponseWriter, r *http.Request, inv invites.Invite, account string) {
	title := h.text.SuccessTitle
	if inv.ResetFor != "" {
		title = h.text.ResetDoneTitle
	}
	h.render(w, r, http.StatusOK, "success", pageData{Title: title, JID: account, ResetFor: inv.ResetFor})
}

// registerFailed answers a registration the service refused with err: the
// form again when the visitor can fix it, an error page when not.
func (h *invitePages) registerFailed(w http.ResponseWriter, r *http.Request, log *slog.Logger, inv invites.Invite, f formData, err error) {
	switch {
	case errors.Is(err, invites.ErrNoSuchInvite):
		h.notFound(w, r)
	case errors.Is(err, invites.ErrTokenRejected):
		log.InfoContext(r.Context(), "browser registration: token rejected by the server")
		h.goneInvite(w, r, inv, true)
	case errors.Is(err, invites.ErrNotPending):
		h.goneInvite(w, r, inv, false)
	case errors.Is(err, invites.ErrRegistrationInProgress):
		// A double click, or two people with the same link: the other
		// attempt decides; this one may retry once it is over.
		f.Error = h.text.ErrInProgress
		if inv.ResetFor != "" {
			f.Error = h.text.ResetErrInProgress
		}
		h.renderLanding(w, r, http.StatusConflict, inv, f)
	case errors.Is(err, invites.ErrUsernameTaken):
		f.Error, f.Field = h.text.ErrUsernameTaken, "username"
		h.renderLanding(w, r, http.StatusConflict, inv, f)
	case errors.Is(err, invites.ErrUsernameInvalid), errors.Is(err, invites.ErrUsernameTooLong),
		errors.Is(err, invites.ErrUsernameConfusable):
		// checkForm applies the same rules; this is for a service whose
		// rules grew stricter than the form's.
		f.Error, f.Field = h.usernameError(err), "username"
		h.renderLanding(w, r, http.StatusUnprocessableEntity, inv, f)
	case errors.Is(err, invites.ErrPasswordTooLong), errors.Is(err, invites.ErrPasswordInvalid):
		// checkForm applies the same rule; this is for a service whose
		// rule grew stricter than the form's.
		f.Error, f.Field = h.passwordError(err), "password"
		h.renderLanding(w, r, http.StatusUnprocessableEntity, inv, f)
	case errors.Is(err, invites.ErrUsernameRefused):
		// The server said no (a name it cannot store, say): the user can
		// pick another, so it is a form error, not a failure of ours.
		log.InfoContext(r.Context(), "browser registration: not acceptable", slog.Any("err", err))
		f.Error = h.text.ErrNotAcceptable
		h.renderLanding(w, r, http.StatusUnprocessableEntity, inv, f)
	default:
		log.ErrorContext(r.Context(), "browser registration failed", slog.Any("err", err))
		f.Error = h.text.ErrInternal
		h.renderLanding(w, r, http.StatusInternalServerError, inv, f)
	}
}

// checkForm validates the form before the server is bothered, returning
// the username as the server will create it, or the message to show and
// the field it is about.
// Someone typing their whole future address (name@domain) gets the name
// taken from it.
func (h *invitePages) checkForm(username, password, password2, domain string) (prepared, msg, field string) {
	if local, dom, ok := strings.Cut(username, "@"); ok && strings.EqualFold(dom, domain) {
		username = local
	}
	if username == "" {
		return "", h.text.ErrUsernameEmpty, "username"
	}
	// The service's rules: the server's own mapping ("Alice" and "straße"
	// become the "alice" and "strasse" it creates), a length every server
	// can store, and no names that pass for others.
	prepared, err := invites.PrepareUsername(username)
	if err != nil {
		return "", h.usernameError(err), "username"
	}
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return "", fmt.Sprintf(h.text.ErrPasswordShort, MinPasswordLen), "password"
	}
	// What the server would refuse after the form went out (Prosody:
	// "password fails SASLprep"), refused here, in words that say why.
	if err := invites.CheckPassword(password); err != nil {
		return "", h.passwordError(err), "password"
	}
	if password != password2 {
		return "", h.text.ErrPasswordMatch, "password2"
	}
	return prepared, "", ""
}

// passwordError is the form's message for a password the server would
// refuse (invites.CheckPassword).
func (h *invitePages) passwordError(err error) string {
	if errors.Is(err, invites.ErrPasswordTooLong) {
		return h.text.ErrPasswordLong
	}
	return h.text.ErrPasswordChars
}
