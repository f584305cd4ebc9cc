package config

import (
	"fmt"
	"slices"
	"strings"
)

// Defaults for the policy keys an admin may leave out: the limits of
// policy.DefaultLimits, line by line.
const (
	DefaultInvitesPerDay = 5   // policy.DefaultLimits.PerDay
	DefaultMaxPending    = 10  // policy.DefaultLimits.MaxPending
	DefaultGlobalPerDay  = 100 // policy.DefaultLimits.GlobalPerDay
	DefaultEventMaxUses  = 50  // policy.DefaultLimits.EventMaxUses
)

// maxEventMaxUses bounds policy.event_max_uses: a cap is typed in chat,
// where numbers stop at 1000, and an event link for more people than that
// is an open door, not an event.
const maxEventMaxUses = 1000

// PolicyConfig holds the abuse limits.
type PolicyConfig struct {
	// InvitesPerDay is how many invites one inviter may create in any
	// rolling 24 hours; a grant may override it.
	InvitesPerDay int `mapstructure:"invites_per_day"`
	// MaxPending is how many of one inviter's invites may be pending at
	// once; a grant may override it.
	MaxPending int `mapstructure:"max_pending"`
	// GlobalPerDay caps the invites all inviters together (admins
	// excluded) create in any rolling 24 hours.
	GlobalPerDay int `mapstructure:"global_per_day"`
	// InviterResets lets inviters make password reset links for the
	// accounts their own invites created (admins may reset any account).
	InviterResets bool `mapstructure:"inviter_resets"`
	// EventMaxUses is the largest cap any event link may have, admins'
	// included; an inviter's grant may allow less (grant … events N).
	EventMaxUses int `mapstructure:"event_max_uses"`
}

func (p *PolicyConfig) validate() []error {
	var errs []error
	for key, v := range map[string]int{
		"policy.invites_per_day": p.InvitesPerDay,
		"policy.max_pending":     p.MaxPending,
		"policy.global_per_day":  p.GlobalPerDay,
		"policy.event_max_uses":  p.EventMaxUses,
	} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s: %d must be at least 1", key, v))
		}
	}
	if p.EventMaxUses > maxEventMaxUses {
		errs = append(errs, fmt.Errorf("policy.event_max_uses: %d is more than %d", p.EventMaxUses, maxEventMaxUses))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}
