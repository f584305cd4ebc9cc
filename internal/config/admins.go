package config

import (
	"fmt"

	"mellium.im/xmpp/jid"
)

// validateAdmins checks and canonicalises admins in place.
func validateAdmins(admins []string) []error {
	if len(admins) == 0 {
		return []error{fmt.Errorf("admins: missing; list at least one bare JID such as admin@example.org (or set %s)", EnvVar("admins"))}
	}
	var errs []error
	for i, a := range admins {
		key := fmt.Sprintf("admins[%d]", i)
		j, err := jid.Parse(a)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %q is not a valid JID: %w", key, a, err))
		case j.Localpart() == "":
			errs = append(errs, fmt.Errorf("%s: %q is a domain, not an account; use user@domain", key, a))
		case j.Resourcepart() != "":
			errs = append(errs, fmt.Errorf("%s: %q has a resource; use the bare JID %s", key, a, j.Bare()))
		default:
			admins[i] = j.String()
		}
	}
	return errs
}

// AdminJIDs returns the admins as bare JIDs, skipping invalid entries, which
// Validate rules out.
func (c *Config) AdminJIDs() []jid.JID {
	out := make([]jid.JID, 0, len(c.Admins))
	for _, a := range c.Admins {
		if j, err := jid.Parse(a); err == nil {
			out = append(out, j.Bare())
		}
	}
	return out
}

// AdminSet returns the admins keyed by canonical bare JID string, the form
// to compare a stanza's from.Bare().String() against.
func (c *Config) AdminSet() map[string]bool {
	set := make(map[string]bool, len(c.Admins))
	for _, j := range c.AdminJIDs() {
		set[j.String()] = true
	}
	return set
}
