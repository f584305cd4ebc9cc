package config

import (
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"
)

// How invites are minted, as Config.Minting names it.
const (
	// MintingComponent: the component runs the server's command as an
	// admin of the domain.
	MintingComponent = "component"
	// MintingAccount: the bot logs in as xmpp.minter over c2s and runs the
	// command as that account.
	MintingAccount = "account"
)

// validateMinter checks xmpp.minter and its password, canonicalising the
// JID. domainOK says domain is xmpp.domain, valid.
func (x *XMPPConfig) validateMinter(domain jid.JID, domainOK bool) []error {
	if x.Minter == "" {
		var errs []error
		// redact("") is what check-config prints for the unset password:
		// its output must load again.
		if x.MinterPassword != "" && x.MinterPassword != redact("") {
			errs = append(errs, errors.New("xmpp.minter_password: set without xmpp.minter; set the account too, or remove the password"))
		}
		if x.MinterPasswordFile != "" {
			errs = append(errs, errors.New("xmpp.minter_password_file: set without xmpp.minter; set the account too, or remove the file"))
		}
		return errs
	}
	var errs []error
	example := "invitebot@" + x.Domain
	j, err := jid.Parse(x.Minter)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("xmpp.minter: %q is not a valid JID: %w", x.Minter, err))
	case j.Localpart() == "" || j.Resourcepart() != "":
		errs = append(errs, fmt.Errorf("xmpp.minter: %q must be a bare account JID such as %s", x.Minter, example))
	case domainOK && !j.Domain().Equal(domain):
		// Prosody gives roles per host: only an account of the domain the
		// invites are for can hold the role that mints them.
		errs = append(errs, fmt.Errorf("xmpp.minter: %q must be an account of xmpp.domain %s, such as %s", x.Minter, x.Domain, example))
	default:
		x.Minter = j.String()
	}
	switch {
	case x.minterPasswordUnread:
		// Load reported why already.
	case x.MinterPasswordFile != "" && x.MinterPassword != "" && !x.minterPasswordFromFile:
		errs = append(errs, errors.New("xmpp.minter_password_file: set together with xmpp.minter_password (or their INVITEBOT_ variables); set only one"))
	case x.MinterPasswordFile != "" && x.MinterPassword == "":
		errs = append(errs, fmt.Errorf("xmpp.minter_password_file: %q has not been read (config.Load reads it)", x.MinterPasswordFile))
	case x.MinterPassword == "":
		errs = append(errs, fmt.Errorf("xmpp.minter_password: missing for xmpp.minter %s (set xmpp.minter_password, xmpp.minter_password_file or %s)",
			x.Minter, EnvVar("xmpp.minter_password")))
	}
	return errs
}

// MinterJID returns the minter account's bare JID; the zero JID when the
// component mints (xmpp.minter empty, or invalid, which Validate rules out).
func (c *Config) MinterJID() jid.JID {
	if c.XMPP.Minter == "" {
		return jid.JID{}
	}
	j, err := jid.Parse(c.XMPP.Minter)
	if err != nil || j.Localpart() == "" {
		return jid.JID{}
	}
	return j.Bare()
}

// Minting names how invites are minted: MintingAccount with xmpp.minter,
// else MintingComponent.
func (c *Config) Minting() string {
	if c.MinterJID().Equal(jid.JID{}) {
		return MintingComponent
	}
	return MintingAccount
}

// MintingSummary says in one line how invites are minted and what the
// server must grant for it, for check-config and the start-up log.
func (c *Config) MintingSummary() string {
	if c.Minting() == MintingAccount {
		return fmt.Sprintf("as the account %s over c2s %s (xmpp.minter); the component needs no admin rights. "+
			"Prosody 13: give the account the invitebot:minter role (custom_roles); Prosody 0.12: list it in the VirtualHost's admins",
			c.XMPP.Minter, c.XMPP.C2S)
	}
	return fmt.Sprintf("as the component %s, which must be in the admins of VirtualHost %q; "+
		"on Prosody 13 that makes it a full prosody:admin: set xmpp.minter to mint as an account with a narrow role instead",
		c.XMPP.Component, c.XMPP.Domain)
}
