package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"durare.org/invitebot/invites"
)

// Event link pages. /e/{id} is a link someone shares in a room (a
// workshop, a meetup): it names who invites to what, and a button. Each
// visitor who presses it gets an invitation of their own, minted then, and
// is sent on to its landing page; the link hands out no more than its cap,
// whoever it reaches. The browser keeps a signed cookie naming the visitor's
// invitation, so reloading or coming back leads to the same one instead of
// taking another.

// Events is what the event pages need from the invites service.
type Events interface {
	// LookupEvent returns the event link with that id and nil, or the
	// reason a visitor could get no invitation from it now
	// (invites.ErrEventUsedUp, ErrEventExpired, ErrEventClosed,
	// *invites.PausedError); invites.ErrNoSuchEvent when there is none.
	LookupEvent(ctx context.Context, id string) (invites.EventLink, error)
	// ClaimEventInvite mints one visitor's invitation; see
	// invites.Service.ClaimEventInvite for the errors.
	ClaimEventInvite(ctx context.Context, id string) (invites.Invite, error)
}

// Tunables of the event pages.
const (
	// eventAttempts bounds the button presses per address in each
	// rateWindow. A room of people often shares one address (the venue's
	// network), and each needs one press, so it is far above the form's
	// limit; the link's cap, not this, bounds what a leaked link costs.
	eventAttempts = 100
	// claimTimeout bounds minting one visitor's invitation.
	claimTimeout = 30 * time.Second
	// eventCookie names the cookie remembering a visitor's invitation;
	// its path is the one link's page.
	eventCookie = "invitebot_event"
	// eventCookieMaxAge outlasts both the link (a day at most) and, for
	// the usual server setting, the invitation it handed out (a week).
	eventCookieMaxAge = 30 * 24 * time.Hour
	// eventLabel separates these MACs from the others made with the CSRF
	// key.
	eventLabel = "invitebot event visitor"
	// eventCSRFPrefix binds a form token to the event page rather than to
	// an invite page of the same id.
	eventCSRFPrefix = "e/"
)

// eventPages serves the event link pages, /e/{id}.
type eventPages struct {
	site
	events Events
	// eventLimit bounds event link claims per address (see
	// eventAttempts).
	eventLimit *limiter
}

// EventURL is the page of event link id under publicURL, for the bot's
// replies.
func EventURL(publicURL, id string) string {
	return strings.TrimRight(publicURL, "/") + "/e/" + url.PathEscape(id)
}

// EventQRURL is the PNG QR code of event link id's page under publicURL,
// for showing on a projector.
func EventQRURL(publicURL, id string) string {
	return EventURL(publicURL, id) + "/qr.png"
}

// eventPath is where an event link's page lives, as the browser sees it.
func (h *eventPages) eventPath(id string) string { return h.base + "/e/" + url.PathEscape(id) }

// eventPage serves GET /e/{id}.
func (h *eventPages) eventPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !invites.ValidID(id) {
		h.eventNotFound(w, r)
		return
	}
	if h.returningVisitor(w, r, id) {
		return
	}
	ev, ok := h.openEvent(w, r, id)
	if !ok {
		return
	}
	h.renderEvent(w, r, http.StatusOK, ev, "")
}

// eventClaim serves POST /e/{id}: one visitor presses the button.
func (h *eventPages) eventClaim(w http.ResponseWriter, r *http.Request) {
	// Counted before any work, so floods are limited too.
	if ok, wait := h.eventLimit.allow(clientKey(r, h.cfg.TrustProxy)); !ok {
		h.tooMany(w, r, wait, h.text.ErrTooMany)
		return
	}
	id := r.PathValue("id")
	if !invites.ValidID(id) {
		h.eventNotFound(w, r)
		return
	}
	// Pressing again, or a form sent twice, leads to the invitation this
	// browser already has.
	if h.returningVisitor(w, r, id) {
		return
	}
	ev, ok := h.openEvent(w, r, id)
	if !ok {
		return
	}
	if !h.readForm(w, r) {
		return
	}
	if err := h.origin.Check(r); err != nil {
		h.log.InfoContext(r.Context(), "cross-origin event claim refused", slog.String("event", id), slog.Any("err", err))
		h.renderEvent(w, r, http.StatusForbidden, ev, h.text.ErrFormExpired)
		return
	}
	if err := h.csrf.check(r, eventCSRFPrefix+id, r.PostFormValue("csrf")); err != nil {
		h.renderEvent(w, r, http.StatusForbidden, ev, h.text.ErrFormExpired)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), claimTimeout)
	defer cancel()
	inv, err := h.events.ClaimEventInvite(ctx, id)
	if err != nil {
		h.eventUnavailable(w, r, ev, err)
		return
	}
	h.log.InfoContext(r.Context(), "event link handed out an invitation", slog.String("event", id), slog.String("invite", inv.ID))
	h.csrf.setEventVisitor(w, h.eventPath(id), id, inv.ID)
	// 303: the browser fetches the invitation with GET, so reloading it
	// never sends the form again.
	http.Redirect(w, r, h.base+"/i/"+url.PathEscape(inv.ID), http.StatusSeeOther)
}

// openEvent looks the event link up and answers the visitor itself, and
// reports false, when it hands out nothing now.
func (h *eventPages) openEvent(w http.ResponseWriter, r *http.Request, id string) (invites.EventLink, bool) {
	ev, err := h.events.LookupEvent(r.Context(), id)
	if err != nil {
		h.eventUnavailable(w, r, ev, err)
		return invites.EventLink{}, false
	}
	return ev, true
}

// eventUnavailable answers a visitor whom the link gives no invitation:
// 404 for no such link, 410 for one used up, expired or closed (it will
// not come back), 503 while invitations are paused or the day's limit is
// reached (they may come back), and the page again with a message for a
// failure of ours.
func (h *eventPages) eventUnavailable(w http.ResponseWriter, r *http.Request, ev invites.EventLink, err error) {
	var quota *invites.QuotaError
	switch {
	case errors.Is(err, invites.ErrNoSuchEvent):
		h.eventNotFound(w, r)
	case errors.Is(err, invites.ErrEventUsedUp):
		h.renderError(w, r, http.StatusGone, h.text.EventUsedUpTitle, h.text.EventUsedUpBody, h.text.EventAskAgain)
	case errors.Is(err, invites.ErrEventExpired):
		h.renderError(w, r, http.StatusGone, h.text.EventExpiredTitle, h.text.EventExpiredBody, h.text.EventAskAgain)
	case errors.Is(err, invites.ErrEventClosed):
		h.renderError(w, r, http.StatusGone, h.text.EventClosedTitle, h.text.EventClosedBody, h.text.EventAskAgain)
	case errors.Is(err, invites.ErrPaused):
		// The admin's reason is for the inviters, not for the public.
		h.unavailable(w, r, retryUnknown, h.text.PausedTitle, h.text.PausedBody)
	case errors.As(err, &quota):
		wait := retryUnknown
		if !quota.Next.IsZero() {
			wait = quota.Next.Sub(h.now())
		}
		h.unavailable(w, r, wait, h.text.DailyLimitTitle, h.text.DailyLimitBody)
	case ev.ID == "":
		h.log.ErrorContext(r.Context(), "event link", slog.String("event", r.PathValue("id")), slog.Any("err", err))
		h.internal(w, r)
	default:
		h.log.ErrorContext(r.Context(), "event link: no invitation for a visitor", slog.String("event", ev.ID), slog.Any("err", err))
		h.renderEvent(w, r, http.StatusInternalServerError, ev, h.text.ErrInternal)
	}
}

func (h *eventPages) eventNotFound(w http.ResponseWriter, r *http.Request) {
	h.renderError(w, r, http.StatusNotFound, h.text.EventNotFoundTitle, h.text.NotFoundBody, "")
}

// renderEvent shows the event page, with msg as an error above the button
// when not empty, and a fresh CSRF token (and the cookie it is bound to).
func (h *eventPages) renderEvent(w http.ResponseWriter, r *http.Request, status int, ev invites.EventLink, msg string) {
	domain := ev.Domain
	if domain == "" {
		domain = h.cfg.Domain
	}
	d := pageData{
		Title:    fmt.Sprintf(h.text.LandingTitle, domain),
		Headline: withAddrs(h.text.EventHeadline, ev.Creator, domain),
		Expiry:   fmt.Sprintf(h.text.EventOpenUntil, h.text.timeLeft(ev.Expires.Sub(h.now())), h.text.date(ev.Expires.UTC())),
		Left:     h.text.EventLeft.format(h.text.Lang, ev.Left()),
		Domain:   domain,
		// The page's own address as a QR code: GET, so showing it hands
		// out nothing (eventQR).
		QRPNG: h.eventPath(ev.ID) + "/qr.png",
		Form: formData{
			CSRF:  h.csrf.token(h.csrf.cookieValue(w, r), eventCSRFPrefix+ev.ID),
			Error: msg,
		},
	}
	h.render(w, r, status, "event", d)
}

// returningVisitor sends a browser that already got an invitation from
// link id on to it, and reports true; the invitation's own page says
// whether it still works.
func (h *eventPages) returningVisitor(w http.ResponseWriter, r *http.Request, id string) bool {
	inv, ok := h.csrf.eventVisitor(r, id)
	if !ok {
		return false
	}
	http.Redirect(w, r, h.base+"/i/"+url.PathEscape(inv), http.StatusSeeOther)
	return true
}

// setEventVisitor gives the browser the cookie saying it got invitation
// inv from event link id.
func (c *csrf) setEventVisitor(w http.ResponseWriter, path, id, inv string) {
	http.SetCookie(w, &http.Cookie{
		Name:     eventCookie,
		Value:    inv + "." + base64.RawURLEncoding.EncodeToString(c.eventMAC(id, inv)),
		Path:     path,
		MaxAge:   int(eventCookieMaxAge / time.Second),
		HttpOnly: true,
		Secure:   c.secure,
		// Lax: the link is opened from chats, mails and QR codes, all
		// cross-site navigations that Strict would strip the cookie from.
		// It only decides where this browser is sent.
		SameSite: http.SameSiteLaxMode,
	})
}

// eventVisitor returns the invitation the request's cookie says this
// browser got from event link id.
func (c *csrf) eventVisitor(r *http.Request, id string) (string, bool) {
	ck, err := r.Cookie(eventCookie)
	if err != nil {
		return "", false
	}
	inv, macPart, ok := strings.Cut(ck.Value, ".")
	if !ok || !invites.ValidID(inv) {
		return "", false
	}
	mac, err := base64.RawURLEncoding.DecodeString(macPart)
	if err != nil || !hmac.Equal(mac, c.eventMAC(id, inv)) {
		return "", false
	}
	return inv, true
}

// eventMAC signs (event id, invitation id) under a key of its own, derived
// from the CSRF key, so no other MAC of ours can stand in for it.
func (c *csrf) eventMAC(id, inv string) []byte {
	kh := hmac.New(sha256.New, c.key[:])
	kh.Write([]byte(eventLabel))
	h := hmac.New(sha256.New, kh.Sum(nil))
	for _, f := range []string{id, inv} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

// eventQR serves the QR code of an event link's page, for showing it to a
// room. It encodes the public address of the page, which is no more secret
// than the link itself.
func eventQR(contentType string, draw func(string) ([]byte, error)) func(*eventPages, http.ResponseWriter, *http.Request) {
	return func(h *eventPages, w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !invites.ValidID(id) {
			h.eventNotFound(w, r)
			return
		}
		if _, err := h.events.LookupEvent(r.Context(), id); errors.Is(err, invites.ErrNoSuchEvent) {
			h.eventNotFound(w, r)
			return
		}
		img, err := draw(EventURL(h.cfg.PublicURL, id))
		if err != nil {
			h.log.ErrorContext(r.Context(), "draw qr code", slog.String("event", id), slog.Any("err", err))
			h.internal(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", strconv.Itoa(len(img)))
		_, _ = w.Write(img)
	}
}
