package config

import (
	"errors"
	"fmt"
	"net/mail"
	"os"
	"strings"
)

// Defaults of the mail limits: a person asks once or twice; a flood from
// one mail domain stops at a few dozen a day.
const (
	DefaultMailPerAddressPerDay = 3  // invites.DefaultMailsPerAddress
	DefaultMailPerDomainPerDay  = 20 // invites.DefaultMailsPerDomain
)

// MailConfig says how the bot sends mail (confirmations of sign-ups,
// password reset links): through an SMTP server, over STARTTLS, logged
// in with credentials best kept in a file.
type MailConfig struct {
	// SMTP is the server's host:port, usually the submission port 587.
	SMTP string `mapstructure:"smtp"`
	// From is the sender address of every mail.
	From string `mapstructure:"from"`
	// Username logs in; empty sends without a login.
	Username string `mapstructure:"username"`
	// Password is Username's password; better PasswordFile.
	Password string `mapstructure:"password" redact:"true"`
	// PasswordFile names a file holding the password.
	PasswordFile string `mapstructure:"password_file"`
	// ServerName is the name the server's certificate must carry; the
	// host of SMTP when empty.
	ServerName string `mapstructure:"server_name"`
	// CAFile is an extra CA or self-signed certificate to trust (PEM).
	CAFile string `mapstructure:"ca_file"`
	// PerAddressPerDay and PerDomainPerDay bound the mails sent to one
	// address and to one mail domain over a rolling day.
	PerAddressPerDay int `mapstructure:"per_address_per_day"`
	PerDomainPerDay  int `mapstructure:"per_domain_per_day"`
	// BlockDomains adds mail domains to the built-in list of disposable
	// ones the request page refuses.
	BlockDomains []string `mapstructure:"block_domains"`

	passwordFromFile bool
}

// Enabled reports whether mail is configured.
func (m MailConfig) Enabled() bool { return m.SMTP != "" }

// readPasswordFile copies the content of PasswordFile into Password.
func (m *MailConfig) readPasswordFile() error {
	if m.PasswordFile == "" || m.Password != "" {
		return nil
	}
	s, err := readSecret("mail.password_file", m.PasswordFile)
	if err != nil {
		return err
	}
	m.Password, m.passwordFromFile = s, true
	return nil
}

func (m *MailConfig) validate() []error {
	var errs []error
	if m.PerAddressPerDay < 1 {
		errs = append(errs, fmt.Errorf("mail.per_address_per_day: %d must be at least 1", m.PerAddressPerDay))
	}
	if m.PerDomainPerDay < 1 {
		errs = append(errs, fmt.Errorf("mail.per_domain_per_day: %d must be at least 1", m.PerDomainPerDay))
	}
	if m.PasswordFile != "" && m.Password != "" && !m.passwordFromFile {
		errs = append(errs, errors.New("mail.password_file: set together with mail.password; set only one"))
	}
	if !m.Enabled() {
		return errs
	}
	if err := validateHostPort(m.SMTP); err != nil {
		errs = append(errs, fmt.Errorf("mail.smtp: %w", err))
	}
	if a, err := mail.ParseAddress(m.From); err != nil || a.Name != "" || strings.ContainsAny(m.From, "<>") {
		errs = append(errs, fmt.Errorf("mail.from: %q is not one plain address like invites@example.org", m.From))
	}
	if m.CAFile != "" {
		if _, err := os.Stat(m.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("mail.ca_file: %w", err))
		}
	}
	return errs
}

// validateSignup checks the keys that make sign-ups confirmed by mail and
// recovery by mail depend on one another.
func (c *Config) validateSignup() []error {
	var errs []error
	r := c.Requests
	switch r.Verify {
	case "":
	case "email":
		if !c.Mail.Enabled() {
			errs = append(errs, errors.New("requests.verify: email needs mail.smtp and mail.from"))
		}
		if !c.HTTP.Requests {
			errs = append(errs, errors.New("requests.verify: email needs the request page (http.requests: true)"))
		}
	default:
		errs = append(errs, fmt.Errorf("requests.verify: %q is not \"\" or \"email\"", r.Verify))
	}
	switch {
	case r.AutoApprove < 0:
		errs = append(errs, fmt.Errorf("requests.auto_approve: %d must be 0 (off) or more", r.AutoApprove))
	case r.AutoApprove > 0 && r.Verify != "email":
		// Approving unconfirmed requests would be open registration.
		errs = append(errs, errors.New("requests.auto_approve: needs requests.verify: email"))
	}
	if c.HTTP.Recovery {
		if !c.Mail.Enabled() {
			errs = append(errs, errors.New("http.recovery: needs mail.smtp and mail.from"))
		}
		if c.HTTP.Listen == "" {
			errs = append(errs, errors.New("http.recovery: the recovery page needs the web server; set http.listen"))
		}
	}
	return errs
}
