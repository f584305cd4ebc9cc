package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"time"

	"durare.org/invitebot/invites"
)

// After a browser registration the browser keeps a cookie saying "I created
// account A with invite I", signed with a key derived from the CSRF key.
// Coming back to the invitation, by reloading the success page (which sends
// the form again) or by opening the link again, then shows the new address
// instead of "this invitation can no longer be used", which would tell the
// person who just signed up that it failed. Every other browser still gets
// the 410. A restart changes the key, and the 410 comes back for everyone.
const (
	// registeredCookie names the cookie; its path is the one invite's
	// pages, so a browser that used two invites holds one per invite.
	registeredCookie = "invitebot_registered"
	// registeredCookieMaxAge is how long the browser remembers: well past
	// the days in which someone comes back to an invitation they used.
	registeredCookieMaxAge = 30 * 24 * time.Hour
	// registeredLabel separates these MACs from the CSRF tokens made with
	// the same key.
	registeredLabel = "invitebot registered browser"
)

// setRegistered gives the browser the cookie saying it registered account
// with invite id.
func (c *csrf) setRegistered(w http.ResponseWriter, id, account string) {
	v := base64.RawURLEncoding.EncodeToString([]byte(account)) + "." +
		base64.RawURLEncoding.EncodeToString(c.registeredMAC(id, account))
	http.SetCookie(w, &http.Cookie{
		Name:     registeredCookie,
		Value:    v,
		Path:     c.path + id,
		MaxAge:   int(registeredCookieMaxAge / time.Second),
		HttpOnly: true,
		Secure:   c.secure,
		// Lax, not Strict: following the invitation link from a chat app
		// or webmail is a cross-site navigation, and Strict would leave
		// the cookie behind. It only changes what this browser is shown.
		SameSite: http.SameSiteLaxMode,
	})
}

// registeredAccount returns the account the request's cookie says this
// browser registered with invite id.
func (c *csrf) registeredAccount(r *http.Request, id string) (string, bool) {
	ck, err := r.Cookie(registeredCookie)
	if err != nil {
		return "", false
	}
	accountPart, macPart, ok := strings.Cut(ck.Value, ".")
	if !ok {
		return "", false
	}
	account, err1 := base64.RawURLEncoding.DecodeString(accountPart)
	mac, err2 := base64.RawURLEncoding.DecodeString(macPart)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, c.registeredMAC(id, string(account))) {
		return "", false
	}
	return string(account), true
}

// registeredMAC signs (id, account) under a key of its own, derived from
// the CSRF key, so that neither kind of MAC can stand in for the other.
func (c *csrf) registeredMAC(id, account string) []byte {
	kh := hmac.New(sha256.New, c.key[:])
	kh.Write([]byte(registeredLabel))
	h := hmac.New(sha256.New, kh.Sum(nil))
	for _, f := range []string{id, account} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

// welcomeBack shows the success page, and reports true, when the invite on
// a page request (not its QR code) was used by an account this browser
// registered with it.
func (h *invitePages) welcomeBack(w http.ResponseWriter, r *http.Request, inv invites.Invite) bool {
	if inv.State != invites.StateUsed || !strings.HasSuffix(r.Pattern, "/i/{id}") {
		return false
	}
	account, ok := h.csrf.registeredAccount(r, inv.ID)
	// The store names the account once the use is recorded; the cookie
	// must agree with it then.
	if !ok || (inv.UsedBy != "" && inv.UsedBy != account) {
		return false
	}
	h.renderSuccess(w, r, inv, account)
	return true
}

// usernameError is the form's message for a username that
// invites.PrepareUsername refused.
func (h *invitePages) usernameError(err error) string {
	switch {
	case errors.Is(err, invites.ErrUsernameTooLong):
		return h.text.ErrUsernameLong
	case errors.Is(err, invites.ErrUsernameConfusable):
		return h.text.ErrUsernameLookalike
	default:
		return h.text.ErrUsernameInvalid
	}
}
