package config

import (
	"fmt"
	"time"
)

// Defaults for the invites keys an admin may leave out.
const (
	DefaultCheckInterval = time.Minute
	DefaultIntroduce     = true
)

// minCheckInterval keeps usage tracking from hammering the server.
const minCheckInterval = 10 * time.Second

// InvitesConfig tunes invite lifecycle work.
type InvitesConfig struct {
	// CheckInterval is how often pending invites' tokens are checked at the
	// server to notice used and expired ones.
	CheckInterval time.Duration `mapstructure:"check_interval"`
	// Introduce welcomes each new account naming its inviter and offers
	// the inviter the new account as a contact; with mod_invitebot on the
	// server, the new account also asks the inviter to be a contact, the
	// inviter's request pre-approved.
	Introduce bool `mapstructure:"introduce"`
}

func (i *InvitesConfig) validate() []error {
	if i.CheckInterval < minCheckInterval {
		return []error{fmt.Errorf("invites.check_interval: %s is shorter than %s", i.CheckInterval, minCheckInterval)}
	}
	return nil
}
