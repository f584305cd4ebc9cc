package web

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"durare.org/invitebot/internal/plaintext"
	"durare.org/invitebot/invites"
)

// The account request pages. /request takes a request from someone who
// knows nobody with invite rights; /r/<key> is their private status page,
// which says the request waits, was declined or lapsed, and once it is
// approved is the invitation itself: the landing page of the invite the
// approval made, whose form posts to that invite's registration path.

// DefaultRequestsPerHour is how many requests one client address may send
// per hour unless configured: a person asks once, perhaps twice after a
// mistake; a script asks all the time.
const DefaultRequestsPerHour = 3

// Tunables of the request pages.
const (
	// requestCSRFID binds the request form's CSRF token to this form: it
	// cannot be an invite id (those are 16 base32 characters), so a token
	// for one form never passes for the other.
	requestCSRFID = "account-request"
	// honeypotField is a form field people never see and robots fill in.
	honeypotField = "website"
	// submitTimeout bounds recording a request and telling approvers.
	submitTimeout = 20 * time.Second
)

// Requests is what the request pages need from the invites service.
type Requests interface {
	// RequestIntake says whether a request would be taken now: nil, or
	// invites.ErrRequestsOff, a *invites.PausedError or
	// invites.ErrRequestsFull.
	RequestIntake(ctx context.Context) error
	// SubmitRequest records a request and returns its status page key;
	// see invites.Service.SubmitRequest for the errors.
	SubmitRequest(ctx context.Context, nr invites.NewRequest) (string, error)
	// RequestStatus returns the request whose status page key is key;
	// invites.ErrNoSuchRequest if there is none.
	RequestStatus(ctx context.Context, key string) (invites.Request, error)
}

// requestPages serves the account request pages, /request and /r/{key}.
type requestPages struct {
	site
	// inv finds the invite an approved request made.
	inv     Invites
	metrics *Metrics
	// reqs and reqLimit serve account requests; reqs is nil without them.
	reqs     Requests
	reqLimit *limiter
	// signup confirms mail addresses; nil without (signup.go).
	signup Signup
}

// requestForm is the request form's state, as typed (once normalised).
type requestForm struct {
	CSRF, Name, Contact, Message, Error string
	// Field is the id of the field Error is about ("name", "contact",
	// "message"); empty when it is about none.
	Field string
	// The length limits, for the fields' maxlength.
	MaxName, MaxContact, MaxMessage int
	// Email is the mail address, asked for when AskEmail
	// (requests.verify: email); Recovery the consent to keep it for
	// password recovery, offered when AskRecovery.
	Email                 string
	Recovery              bool
	AskEmail, AskRecovery bool
}

// requestsOpen answers the request page itself, and reports false, when
// requests are not taken: 404 when the page is off, a page saying they
// are closed for now while paused or full.
func (h *requestPages) requestsOpen(w http.ResponseWriter, r *http.Request) bool {
	if h.reqs == nil || !h.cfg.RequestForm {
		h.notFound(w, r)
		return false
	}
	err := h.reqs.RequestIntake(r.Context())
	if err != nil {
		h.requestClosed(w, r, err)
		return false
	}
	return true
}

// requestClosed answers a request page that cannot take a request for the
// reason err gives; paused and full count as refusals.
func (h *requestPages) requestClosed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, invites.ErrPaused):
		// The pause reason is for inviters; the public learns only that
		// it is paused.
		h.unavailable(w, r, retryUnknown, h.text.RequestClosedTitle, h.text.RequestClosedPaused)
	case errors.Is(err, invites.ErrRequestsFull):
		h.unavailable(w, r, retryUnknown, h.text.RequestClosedTitle, h.text.RequestClosedFull)
	case errors.Is(err, invites.ErrRequestsOff):
		h.notFound(w, r)
	default:
		h.log.ErrorContext(r.Context(), "account requests", slog.Any("err", err))
		h.internal(w, r)
	}
}

// requestPage serves GET /request.
func (h *requestPages) requestPage(w http.ResponseWriter, r *http.Request) {
	if !h.requestsOpen(w, r) {
		return
	}
	h.renderRequest(w, r, http.StatusOK, requestForm{})
}

// renderRequest shows the request form in state f with a fresh CSRF token.
func (h *requestPages) renderRequest(w http.ResponseWriter, r *http.Request, status int, f requestForm) {
	f.CSRF = h.csrf.token(h.csrf.cookieValue(w, r), requestCSRFID)
	f.MaxName, f.MaxContact, f.MaxMessage = invites.MaxRequestName, invites.MaxRequestContact, invites.MaxRequestMessage
	f.AskEmail, f.AskRecovery = h.asksMail(), h.asksMail() && h.cfg.Recovery
	domain := h.cfg.Domain
	h.render(w, r, status, "request", pageData{
		Title:    fmt.Sprintf(h.text.RequestTitle, domain),
		Headline: withAddrs(h.text.RequestTitle, domain),
		Message:  fmt.Sprintf(h.text.RequestIntro, domain),
		Request:  f,
	})
}

// submitRequest serves POST /request.
func (h *requestPages) submitRequest(w http.ResponseWriter, r *http.Request) {
	if h.reqs == nil || !h.cfg.RequestForm {
		h.notFound(w, r)
		return
	}
	// The hourly limit counts the requests recorded (and the robots
	// caught): a form sent back for a correction, or refused before
	// anything was stored, gives its place back. The place is taken
	// first, so that requests sent at once cannot overshoot the limit.
	client := clientKey(r, h.cfg.TrustProxy)
	if ok, wait := h.reqLimit.allow(client); !ok {
		h.metrics.requestRefused(refusedPerAddress)
		h.tooMany(w, r, wait, h.text.ErrRequestTooMany)
		return
	}
	counted := false
	defer func() {
		if !counted {
			h.reqLimit.refund(client)
		}
	}()
	if !h.readForm(w, r) {
		return
	}
	f := requestForm{Name: r.PostFormValue("name"), Contact: r.PostFormValue("contact"), Message: r.PostFormValue("message"),
		Email: r.PostFormValue("email"), Recovery: r.PostFormValue("recovery") != ""}
	if err := h.origin.Check(r); err != nil {
		h.log.InfoContext(r.Context(), "cross-origin account request refused", slog.Any("err", err))
		f.Error = h.text.ErrFormExpired
		h.renderRequest(w, r, http.StatusForbidden, h.cleanRequestForm(f))
		return
	}
	if err := h.csrf.check(r, requestCSRFID, r.PostFormValue("csrf")); err != nil {
		f.Error = h.text.ErrFormExpired
		h.renderRequest(w, r, http.StatusForbidden, h.cleanRequestForm(f))
		return
	}
	if r.PostFormValue(honeypotField) != "" {
		// A robot: it is shown what a person would be, a status page to
		// go to, which does not exist. Nothing is stored, nobody is told.
		counted = true
		h.metrics.requestRefused(refusedHoneypot)
		h.log.InfoContext(r.Context(), "account request with the honeypot field filled in dropped", slog.String("client", client))
		http.Redirect(w, r, h.base+"/r/"+decoyKey(), http.StatusSeeOther)
		return
	}
	f = h.cleanRequestForm(f)
	if f.Error, f.Field = h.checkRequestForm(f); f.Error != "" {
		h.renderRequest(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	counted = h.sendRequest(w, r, f)
}

// sendRequest hands a checked request to the service and answers the
// visitor: the status page, or the form again with what went wrong. It
// reports whether the request was recorded (and so counts toward the
// address's hourly limit).
func (h *requestPages) sendRequest(w http.ResponseWriter, r *http.Request, f requestForm) (recorded bool) {
	ctx, cancel := context.WithTimeout(r.Context(), submitTimeout)
	defer cancel()
	nr := invites.NewRequest{Name: f.Name, Contact: f.Contact, Message: f.Message}
	if h.asksMail() {
		// The mails are written in the language of this page.
		nr.Email, nr.Recovery, nr.Lang = f.Email, f.Recovery && h.cfg.Recovery, h.text.Lang
	}
	key, err := h.reqs.SubmitRequest(ctx, nr)
	if h.refusedMail(w, r, f, err) {
		return false
	}
	switch {
	case err == nil:
		recorded = true
		h.log.InfoContext(r.Context(), "account request sent", slog.String("request", key[:16]))
		http.Redirect(w, r, h.base+"/r/"+url.PathEscape(key), http.StatusSeeOther)
	case errors.Is(err, invites.ErrPaused):
		h.metrics.requestRefused(refusedPaused)
		h.requestClosed(w, r, err)
	case errors.Is(err, invites.ErrRequestsFull):
		h.metrics.requestRefused(refusedMaxOpen)
		h.requestClosed(w, r, err)
	case errors.Is(err, invites.ErrRequestInvalid):
		// checkRequestForm applies the same rules; this is for a service
		// whose rules grew stricter than the form's.
		f.Error, f.Field = h.text.ErrRequestContact, "contact"
		h.renderRequest(w, r, http.StatusUnprocessableEntity, f)
	case errors.Is(err, invites.ErrRequestsOff):
		h.notFound(w, r)
	default:
		h.log.ErrorContext(r.Context(), "account request failed", slog.Any("err", err))
		f.Error = h.text.ErrInternal
		h.renderRequest(w, r, http.StatusInternalServerError, f)
	}
	return recorded
}

// refusedMail answers a request refused for its mail address (or a
// confirmation mail that could not be sent), and reports whether it did.
func (h *requestPages) refusedMail(w http.ResponseWriter, r *http.Request, f requestForm, err error) bool {
	if msg, ok := h.mailRefusal(err); ok {
		f.Error, f.Field = msg, "email"
		h.renderRequest(w, r, http.StatusUnprocessableEntity, f)
		return true
	}
	switch {
	case errors.Is(err, invites.ErrMailNotSent):
		f.Error = h.text.ErrMailNotSent
		h.renderRequest(w, r, http.StatusBadGateway, f)
		return true
	case errors.Is(err, invites.ErrRequestInvalid) && h.asksMail():
		if _, aerr := invites.NormalizeAddress(f.Email); aerr != nil {
			f.Error, f.Field = h.text.ErrRequestEmail, "email"
			h.renderRequest(w, r, http.StatusUnprocessableEntity, f)
			return true
		}
	}
	return false
}

// cleanRequestForm makes each field the one plain line it will be stored
// as, so the form shown again holds exactly what would be sent.
func (h *requestPages) cleanRequestForm(f requestForm) requestForm {
	f.Name, f.Contact, f.Message = plaintext.Line(f.Name), plaintext.Line(f.Contact), plaintext.Line(f.Message)
	f.Email = plaintext.Line(f.Email)
	return f
}

// checkRequestForm returns the message for the first field that cannot
// be sent and that field's id, or "" and "".
func (h *requestPages) checkRequestForm(f requestForm) (msg, field string) {
	switch {
	case f.Name == "":
		return h.text.ErrRequestName, "name"
	case utf8.RuneCountInString(f.Name) > invites.MaxRequestName:
		return fmt.Sprintf(h.text.ErrRequestNameLong, invites.MaxRequestName), "name"
	case f.Contact != "" && utf8.RuneCountInString(f.Contact) > invites.MaxRequestContact:
		return h.text.ErrRequestContact, "contact"
	case f.Contact != "":
		if _, err := invites.ParseContact(f.Contact); err != nil {
			return h.text.ErrRequestContact, "contact"
		}
	}
	switch {
	case f.Message == "":
		return h.text.ErrRequestMessage, "message"
	case utf8.RuneCountInString(f.Message) > invites.MaxRequestMessage:
		return fmt.Sprintf(h.text.ErrRequestMessageLong, invites.MaxRequestMessage), "message"
	}
	if h.asksMail() {
		if _, err := invites.NormalizeAddress(f.Email); err != nil {
			return h.text.ErrRequestEmail, "email"
		}
	}
	return "", ""
}

// decoyEncoding writes decoy keys in the alphabet of real ones.
var decoyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// decoyKey is a status page key that opens nothing: an id and a secret,
// shaped like a real key so a robot cannot tell.
func decoyKey() string {
	var id [10]byte
	var secret [16]byte
	rand.Read(id[:])
	rand.Read(secret[:])
	return decoyEncoding.EncodeToString(id[:]) + decoyEncoding.EncodeToString(secret[:])
}

// status serves GET /r/{key}: the requester's status page.
func (h *requestPages) status(w http.ResponseWriter, r *http.Request) {
	if h.reqs == nil {
		h.notFound(w, r)
		return
	}
	key := r.PathValue("key")
	req, err := h.reqs.RequestStatus(r.Context(), key)
	switch {
	case errors.Is(err, invites.ErrNoSuchRequest):
		h.renderError(w, r, http.StatusNotFound, h.text.StatusNotFoundTitle, h.text.StatusNotFoundBody, "")
		return
	case err != nil:
		h.log.ErrorContext(r.Context(), "request status", slog.Any("err", err))
		h.internal(w, r)
		return
	}
	domain := h.cfg.Domain
	if req.Unconfirmed && req.Outcome(h.now()) == invites.RequestOpen {
		h.confirmPage(w, r, http.StatusOK, req, codeForm{Key: key})
		return
	}
	d := pageData{}
	switch req.Outcome(h.now()) {
	case invites.RequestApproved:
		h.approvedStatus(w, r, req)
		return
	case invites.RequestOpen:
		d.Title = h.text.StatusWaitingTitle
		d.Message = fmt.Sprintf(h.text.StatusWaitingBody, req.Name, domain)
		d.Hint = fmt.Sprintf(h.text.StatusOpenUntil, h.text.date(req.Expires.UTC()))
		d.StatusURL = strings.TrimRight(h.cfg.PublicURL, "/") + "/r/" + url.PathEscape(key)
	case invites.RequestDenied:
		d.Title = h.text.StatusDeniedTitle
		d.Message = fmt.Sprintf(h.text.StatusDeniedBody, domain)
		if req.Reason != "" {
			d.Hint = fmt.Sprintf(h.text.StatusDeniedReason, req.Reason)
		}
	default: // expired
		d.Title = h.text.StatusExpiredTitle
		d.Message = fmt.Sprintf(h.text.StatusExpiredBody, h.text.date(req.Expires.UTC()))
		if h.cfg.RequestForm {
			d.AskAgain = h.base + "/request"
		}
	}
	h.render(w, r, http.StatusOK, "status", d)
}

// approvedStatus shows an approved request's invitation: the landing page
// of its invite, right here, while the invite can be used; once it made
// the account, that the account exists, in any browser; otherwise
// (cancelled, lapsed) the invite's own page, which says so.
func (h *requestPages) approvedStatus(w http.ResponseWriter, r *http.Request, req invites.Request) {
	inv, err := h.inv.Lookup(r.Context(), req.Invite)
	if err != nil {
		h.log.ErrorContext(r.Context(), "approved request's invite", slog.String("request", req.ID),
			slog.String("invite", req.Invite), slog.Any("err", err))
		h.internal(w, r)
		return
	}
	invitePage := h.base + "/i/" + url.PathEscape(inv.ID)
	if inv.State == invites.StateUsed {
		d := pageData{Title: h.text.StatusCreatedTitle, Message: h.text.StatusCreatedAnon, Hint: h.text.StatusCreatedHint}
		if inv.UsedBy != "" {
			d.Message = fmt.Sprintf(h.text.StatusCreatedBody, inv.UsedBy)
		}
		h.render(w, r, http.StatusOK, "status", d)
		return
	}
	if !inv.Usable(h.now()) || !strings.HasPrefix(inv.URI, "xmpp:") {
		http.Redirect(w, r, invitePage, http.StatusSeeOther)
		return
	}
	h.renderLanding(w, r, http.StatusOK, inv, formData{}, func(d *pageData) {
		d.Notice = h.text.StatusApproved
		// The invite's own path registers, and answers failures and
		// success as for any invite.
		d.Action = invitePage
	})
}
