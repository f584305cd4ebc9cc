package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"mellium.im/xmpp/jid"
)

// Defaults for the xmpp keys an admin may leave out.
const (
	DefaultServer = "127.0.0.1:5347" // Prosody's default component_ports on loopback
	DefaultC2S    = "127.0.0.1:5222"
)

// XMPPConfig describes the XEP-0114 component link and the served domain.
type XMPPConfig struct {
	// Component is the JID of this component, a bare domain such as
	// invites.example.org.
	Component string `mapstructure:"component"`
	// Server is host:port of the server's XEP-0114 listener.
	Server string `mapstructure:"server"`
	// Secret is the component's shared secret. Load fills it from
	// SecretFile when that is set.
	Secret string `mapstructure:"secret" redact:"true"`
	// SecretFile names a file holding the secret, so the secret can stay out
	// of the configuration file (systemd credentials, a 0600 file). A
	// trailing newline is trimmed. Relative paths are relative to the
	// working directory.
	SecretFile string `mapstructure:"secret_file"`
	// Domain is the XMPP domain on which invitations create accounts, a
	// bare domain such as example.org.
	Domain string `mapstructure:"domain"`
	// C2S is host:port of the server's client (c2s) listener. The bot
	// registers accounts there with an invite's token (browser
	// registration) and checks and consumes tokens (usage tracking,
	// revocation).
	C2S string `mapstructure:"c2s"`
	// C2STLS says how the c2s certificate is verified. STARTTLS is always
	// required.
	C2STLS C2STLSConfig `mapstructure:"c2s_tls"`
	// Minter, when set, is a local account of Domain (invitebot@example.org)
	// as which the bot logs in over c2s to run the server's invite
	// commands, so the component needs no admin rights: on Prosody 13 the
	// account can hold a role that allows those commands and nothing else.
	// Empty: the component runs them and must be an admin of Domain.
	Minter string `mapstructure:"minter"`
	// MinterPassword is the minter account's password. Load fills it from
	// MinterPasswordFile when that is set.
	MinterPassword string `mapstructure:"minter_password" redact:"true"`
	// MinterPasswordFile names a file holding MinterPassword, read like
	// SecretFile.
	MinterPasswordFile string `mapstructure:"minter_password_file"`

	// secretFromFile records that Load copied SecretFile's content into
	// Secret, so Validate can tell that from an admin setting both.
	secretFromFile bool
	// minterPasswordFromFile is secretFromFile for MinterPasswordFile;
	// minterPasswordUnread says reading it failed and was reported.
	minterPasswordFromFile, minterPasswordUnread bool
}

// C2STLSConfig configures certificate verification on the c2s link.
type C2STLSConfig struct {
	// ServerName is the name the certificate must carry; xmpp.domain when
	// empty.
	ServerName string `mapstructure:"server_name"`
	// CAFile is a PEM file of extra CAs (or a self-signed certificate) to
	// trust besides the system roots.
	CAFile string `mapstructure:"ca_file"`
	// InsecureSkipVerify turns verification off. For tests only; the bot
	// warns loudly at start.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

func (x *XMPPConfig) validate(checkSecret bool) []error {
	var errs []error
	component, err := parseDomain("xmpp.component", x.Component, "invites.example.org")
	if err != nil {
		errs = append(errs, err)
	} else {
		x.Component = component.String()
	}
	domain, derr := parseDomain("xmpp.domain", x.Domain, "example.org")
	if derr != nil {
		errs = append(errs, derr)
	} else {
		x.Domain = domain.String()
	}
	if err == nil && derr == nil && component.Equal(domain) {
		errs = append(errs, fmt.Errorf("xmpp.component: %q must differ from xmpp.domain; give the component its own name such as invites.%s", x.Component, x.Domain))
	}

	errs = append(errs, x.validateMinter(domain, derr == nil)...)
	if err := validateHostPort(x.Server); err != nil {
		errs = append(errs, fmt.Errorf("xmpp.server: %w", err))
	}
	if err := validateHostPort(x.C2S); err != nil {
		errs = append(errs, fmt.Errorf("xmpp.c2s: %w", err))
	}
	if x.C2STLS.CAFile != "" {
		if _, err := os.Stat(x.C2STLS.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("xmpp.c2s_tls.ca_file: %w", err))
		}
	}

	if checkSecret {
		switch {
		case x.SecretFile != "" && x.Secret != "" && !x.secretFromFile:
			errs = append(errs, errors.New("xmpp.secret_file: set together with xmpp.secret (or their INVITEBOT_ variables); set only one"))
		case x.SecretFile != "" && x.Secret == "":
			errs = append(errs, fmt.Errorf("xmpp.secret_file: %q has not been read (config.Load reads it)", x.SecretFile))
		case x.Secret == "":
			errs = append(errs, fmt.Errorf("xmpp.secret: missing (set xmpp.secret, xmpp.secret_file or %s)", EnvVar("xmpp.secret")))
		}
	}
	return errs
}

// parseDomain parses s as a JID that must be a bare domain.
func parseDomain(key, s, example string) (jid.JID, error) {
	if s == "" {
		return jid.JID{}, fmt.Errorf("%s: missing (e.g. %s)", key, example)
	}
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%s: %q is not a valid JID: %w", key, s, err)
	}
	if j.Localpart() != "" || j.Resourcepart() != "" {
		return jid.JID{}, fmt.Errorf("%s: %q must be a bare domain such as %s, without user@ or /resource", key, s, example)
	}
	return j, nil
}

// validateHostPort accepts host:port with a non-empty host and a numeric
// port, the form net.Dial needs for the component link.
func validateHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port (e.g. %s)", s, DefaultServer)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%q is not host:port: port %q is not a number from 1 to 65535", s, port)
	}
	return nil
}

// ComponentJID returns the component's JID; the zero JID if xmpp.component
// is invalid, which Validate rules out.
func (c *Config) ComponentJID() jid.JID {
	j, _ := jid.Parse(c.XMPP.Component)
	return j
}

// DomainJID returns the JID of the domain invitations are for; the zero JID
// if xmpp.domain is invalid, which Validate rules out.
func (c *Config) DomainJID() jid.JID {
	j, _ := jid.Parse(c.XMPP.Domain)
	return j
}
