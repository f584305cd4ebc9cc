package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// HTTPConfig configures the web server (landing pages, QR codes, browser
// registration, health and metrics).
type HTTPConfig struct {
	// Listen is host:port to listen on; empty disables the web server.
	Listen string `mapstructure:"listen"`
	// PublicURL is how people reach the web server, usually through a TLS
	// proxy, e.g. https://invites.example.org. Required with Listen.
	PublicURL string `mapstructure:"public_url"`
	// TrustProxy takes the client address (for the registration rate
	// limit) from the last X-Forwarded-For entry. Only behind a proxy that
	// sets it; otherwise clients choose their own address.
	TrustProxy bool `mapstructure:"trust_proxy"`
	// Requests opens the request page (/request), where people who know
	// nobody with invite rights ask for an account; see RequestsConfig.
	Requests bool `mapstructure:"requests"`
	// Recovery opens the password recovery page (/recover): a reset
	// link mailed to an account's confirmed address, or its inviter and
	// the admins asked in chat. Needs mail and a server that makes
	// reset links.
	Recovery bool `mapstructure:"recovery"`
}

func (h *HTTPConfig) validate() []error {
	var errs []error
	if h.Listen == "" {
		return nil
	}
	if err := validateHostPort(h.Listen); err != nil {
		errs = append(errs, fmt.Errorf("http.listen: %w", err))
	}
	u, err := url.Parse(h.PublicURL)
	switch {
	case h.PublicURL == "":
		errs = append(errs, errors.New("http.public_url: required when http.listen is set (how people reach the pages, e.g. https://invites.example.org)"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("http.public_url: %q is not an http(s) base URL like https://invites.example.org", h.PublicURL))
	default:
		h.PublicURL = strings.TrimRight(h.PublicURL, "/")
	}
	return errs
}
