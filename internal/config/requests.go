package config

import (
	"errors"
	"fmt"
	"time"
)

// Defaults and bounds for account requests: a week to answer one, a few an
// hour from one address, and a cap that keeps approvers' work finite.
const (
	DefaultRequestExpiry   = 7 * 24 * time.Hour // invites.DefaultRequestExpiry
	DefaultRequestsPerHour = 3                  // web.DefaultRequestsPerHour
	DefaultMaxOpenRequests = 20                 // invites.DefaultMaxOpenRequests
	minRequestExpiry       = time.Hour
	maxRequestExpiry       = 90 * 24 * time.Hour
)

// RequestsConfig bounds account requests (http.requests).
type RequestsConfig struct {
	// ExpireAfter is how long a request waits for an answer before it
	// lapses.
	ExpireAfter time.Duration `mapstructure:"expire_after"`
	// PerAddressPerHour is how many requests one client address (an IPv6
	// /64) may send per hour.
	PerAddressPerHour int `mapstructure:"per_address_per_hour"`
	// MaxOpen caps the requests waiting for an answer; past it the page
	// says requests are closed for now.
	MaxOpen int `mapstructure:"max_open"`
	// Verify is "email" to ask for a mail address on the request page
	// and confirm it before anyone hears of the request; "" for none.
	Verify string `mapstructure:"verify"`
	// AutoApprove approves that many confirmed requests per rolling day
	// without an approver; 0 is off.
	AutoApprove int `mapstructure:"auto_approve"`
}

func (r *RequestsConfig) validate(h HTTPConfig) []error {
	var errs []error
	if r.ExpireAfter < minRequestExpiry || r.ExpireAfter > maxRequestExpiry {
		errs = append(errs, fmt.Errorf("requests.expire_after: %s is not between %s and %s", r.ExpireAfter, minRequestExpiry, maxRequestExpiry))
	}
	if r.PerAddressPerHour < 1 {
		errs = append(errs, fmt.Errorf("requests.per_address_per_hour: %d must be at least 1", r.PerAddressPerHour))
	}
	if r.MaxOpen < 1 {
		errs = append(errs, fmt.Errorf("requests.max_open: %d must be at least 1", r.MaxOpen))
	}
	if h.Requests && h.Listen == "" {
		errs = append(errs, errors.New("http.requests: the request page needs the web server; set http.listen and http.public_url"))
	}
	return errs
}
