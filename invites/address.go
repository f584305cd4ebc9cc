package invites

import (
	"bufio"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Mail addresses on the request page: what an address may look like, its
// canonical form (so that Frank@Example.org and frank+x@example.org count
// as one address), and the blocklist of disposable mail domains.

// Bounds of an address (RFC 5321 §4.5.3.1).
const (
	maxAddress   = 254
	maxLocalPart = 64
)

// ErrBadAddress means a mail address is not one plain address like
// name@example.org.
var ErrBadAddress = errors.New("not a mail address like name@example.org")

// NormalizeAddress checks that s is one plain mail address (no name, no
// brackets, no second address, no space or line break: nothing that could
// become a header) and returns it trimmed, with its domain in lower case.
func NormalizeAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok || local == "" || domain == "" || len(s) > maxAddress || len(local) > maxLocalPart:
		return "", ErrBadAddress
	case strings.ContainsAny(s, " \t\r\n<>()[]\\,;:\"'`") || strings.Contains(domain, "@"):
		return "", ErrBadAddress
	case strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, ".."):
		return "", ErrBadAddress
	}
	for _, r := range local {
		if r < 0x21 || r == 0x7f {
			return "", ErrBadAddress
		}
	}
	domain = strings.ToLower(domain)
	if !validMailDomain(domain) {
		return "", ErrBadAddress
	}
	return local + "@" + domain, nil
}

// validMailDomain accepts a DNS name of at least two labels in ASCII
// letters, digits and hyphens (internationalised domains in their xn--
// form).
func validMailDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(labels) < 2 || len(d) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// CanonicalAddress is the form in which two addresses are the same
// address: lower case, and without sub-addressing (user+tag@ is user@).
// s must be a normalised address.
func CanonicalAddress(s string) string {
	local, domain, _ := strings.Cut(strings.ToLower(s), "@")
	if base, _, ok := strings.Cut(local, "+"); ok && base != "" {
		local = base
	}
	return local + "@" + domain
}

// addressKey is the key an address is stored and counted under: a hash
// of its canonical form, so that what makes the rule "one account per
// address" hold need not keep the address itself.
func addressKey(s string) string {
	sum := sha256.Sum256([]byte("invitebot mail address\x00" + CanonicalAddress(s)))
	return hex.EncodeToString(sum[:])
}

// AddressDomain returns the mail domain of an address, lower case, or ""
// for something that is not one. Logs name it instead of the address.
func AddressDomain(s string) string {
	_, domain, ok := strings.Cut(s, "@")
	if !ok {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(domain))
}

// disposableList is the built-in list of disposable mail domains, one a
// line; the configuration adds to it (mail.block_domains).
//
//go:embed disposable_domains.txt
var disposableList string

// Blocklist says which mail domains the request page refuses: those of
// disposable mail services, and whatever the admin added. A domain is
// blocked with all its subdomains.
type Blocklist struct{ domains map[string]bool }

// NewBlocklist returns the built-in list with extra added.
func NewBlocklist(extra []string) (*Blocklist, error) {
	b := &Blocklist{domains: make(map[string]bool)}
	sc := bufio.NewScanner(strings.NewReader(disposableList))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			b.domains[strings.ToLower(l)] = true
		}
	}
	for _, d := range extra {
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if !validMailDomain(d) {
			return nil, fmt.Errorf("blocked mail domain %q is not a domain name", d)
		}
		b.domains[d] = true
	}
	return b, nil
}

// Blocked reports whether mail domain d, or a domain it is under, is on
// the list.
func (b *Blocklist) Blocked(d string) bool {
	if b == nil {
		return false
	}
	d = strings.ToLower(d)
	for {
		if b.domains[d] {
			return true
		}
		_, rest, ok := strings.Cut(d, ".")
		if !ok || !strings.Contains(rest, ".") {
			return false
		}
		d = rest
	}
}
