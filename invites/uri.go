package invites

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrBadURI is returned for strings that are not XEP-0401 account invite URIs.
var ErrBadURI = errors.New("not an XEP-0401 account invite URI")

// InviteURI is the meaning of an XEP-0401 invite URI such as
// xmpp:example.org?register;preauth=TOKEN.
type InviteURI struct {
	// Domain is the XMPP domain the account will be created on.
	Domain string
	// Token is the preauth token.
	Token string
}

// ParseURI reads an account invite URI. mellium's uri.Parse does not split
// XMPP query strings on ';' (RFC 5122 uses ';', not '&'), so the query is
// taken apart here.
func ParseURI(s string) (InviteURI, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error quotes the whole URI, token included: keep
		// it out of errors, which end up in logs.
		return InviteURI{}, fmt.Errorf("%w: malformed URI", ErrBadURI)
	}
	if u.Scheme != "xmpp" || u.Opaque == "" {
		return InviteURI{}, fmt.Errorf("%w: want xmpp:DOMAIN?register;preauth=TOKEN", ErrBadURI)
	}
	parts := strings.Split(u.RawQuery, ";")
	if parts[0] != "register" {
		// Not quoted: a garbled query may hold the token.
		return InviteURI{}, fmt.Errorf("%w: the query action is not register", ErrBadURI)
	}
	var inv InviteURI
	inv.Domain, err = url.PathUnescape(u.Opaque)
	if err != nil {
		return InviteURI{}, fmt.Errorf("%w: malformed domain", ErrBadURI)
	}
	for _, p := range parts[1:] {
		key, value, _ := strings.Cut(p, "=")
		if key != "preauth" {
			continue
		}
		inv.Token, err = url.QueryUnescape(value)
		if err != nil {
			return InviteURI{}, fmt.Errorf("%w: malformed token", ErrBadURI)
		}
	}
	if inv.Token == "" {
		return InviteURI{}, fmt.Errorf("%w: no preauth token", ErrBadURI)
	}
	return inv, nil
}

// RedactToken shortens a token for logs: enough to match it against the
// database by prefix, too little to use it.
func RedactToken(token string) string {
	const keep = 4
	if len(token) <= keep {
		return "…"
	}
	return token[:keep] + "…"
}
