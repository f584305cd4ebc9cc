package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"time"
)

// CSRF protection has two layers. Modern browsers are stopped by
// net/http.CrossOriginProtection (Sec-Fetch-Site, Origin). Behind it, every
// form carries a token that is an HMAC, under a random per-process key, of
// a random value held in a SameSite=Strict cookie, the invite id and the
// time the form was made: another site can neither read the cookie nor
// forge the HMAC. A restart changes the key, which costs at most one
// "please try again".
const (
	// csrfCookie names the cookie holding the browser's random value.
	csrfCookie = "invitebot_csrf"
	// csrfValueBytes is the size of that random value.
	csrfValueBytes = 16
	// csrfMaxAge is how long a rendered form stays valid: long enough to
	// install an app in between, short enough to bound replay of a leaked
	// token.
	csrfMaxAge = 2 * time.Hour
	// csrfCookieMaxAge outlives csrfMaxAge so the cookie is still there
	// when the form is submitted.
	csrfCookieMaxAge = 24 * time.Hour
)

var errCSRF = errors.New("csrf token invalid")

// csrf makes and checks form tokens.
type csrf struct {
	key    [32]byte
	secure bool   // cookie only over HTTPS, when the public URL is https
	path   string // the invite pages as the browser sees them
	// cookiePath is the CSRF cookie's path: every page, because a form
	// shown on one page (an account request's status page) may post to
	// another (its invite's registration path).
	cookiePath string
	now        func() time.Time
}

// newCSRF returns a csrf with a fresh key. base is the path prefix of the
// public URL, so the cookie reaches the pages behind a prefixing proxy.
func newCSRF(secure bool, base string, now func() time.Time) *csrf {
	c := &csrf{secure: secure, path: base + "/i/", cookiePath: base + "/", now: now}
	rand.Read(c.key[:]) // never fails since Go 1.24
	return c
}

// cookieValue returns the browser's random value, setting a fresh cookie on
// w when the request has none (or a malformed one).
func (c *csrf) cookieValue(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && validCookieValue(ck.Value) {
		return ck.Value
	}
	var b [csrfValueBytes]byte
	rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{
		Name:     csrfCookie,
		Value:    v,
		Path:     c.cookiePath,
		MaxAge:   int(csrfCookieMaxAge / time.Second),
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteStrictMode,
	})
	return v
}

func validCookieValue(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == csrfValueBytes
}

// token returns the form token for the cookie value and invite id.
func (c *csrf) token(cookie, id string) string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(c.now().Unix()))
	return base64.RawURLEncoding.EncodeToString(ts[:]) + "." +
		base64.RawURLEncoding.EncodeToString(c.mac(cookie, id, ts[:]))
}

func (c *csrf) mac(cookie, id string, ts []byte) []byte {
	h := hmac.New(sha256.New, c.key[:])
	// Length-prefixed fields, so no two inputs concatenate alike.
	for _, f := range [][]byte{[]byte(cookie), []byte(id), ts} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write(f)
	}
	return h.Sum(nil)
}

// check verifies a submitted token against the request's cookie.
func (c *csrf) check(r *http.Request, id, token string) error {
	ck, err := r.Cookie(csrfCookie)
	if err != nil || !validCookieValue(ck.Value) {
		return errCSRF
	}
	tsPart, macPart, ok := strings.Cut(token, ".")
	if !ok {
		return errCSRF
	}
	ts, err1 := base64.RawURLEncoding.DecodeString(tsPart)
	got, err2 := base64.RawURLEncoding.DecodeString(macPart)
	if err1 != nil || err2 != nil || len(ts) != 8 {
		return errCSRF
	}
	if !hmac.Equal(got, c.mac(ck.Value, id, ts)) {
		return errCSRF
	}
	made := time.Unix(int64(binary.BigEndian.Uint64(ts)), 0)
	if age := c.now().Sub(made); age < -time.Minute || age > csrfMaxAge {
		return errCSRF
	}
	return nil
}
