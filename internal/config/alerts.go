package config

import (
	"fmt"
	"time"
)

// AlertsConfig holds the thresholds of the abuse alarms (alerts): when one
// is crossed, the admins get a message with the evidence and the commands
// to act.
type AlertsConfig struct {
	// Enabled switches the alarms on (the default).
	Enabled bool `mapstructure:"enabled"`
	// Window is how far back invite uses and chains are counted.
	Window time.Duration `mapstructure:"window"`
	// Cooldown is how often one alarm (kind and subject) may be sent.
	Cooldown time.Duration `mapstructure:"cooldown"`
	// FastUseWithin: an invite used within this of being made counts as
	// fast; FastUses of one inviter's within Window raise an alarm.
	FastUseWithin time.Duration `mapstructure:"fast_use_within"`
	FastUses      int           `mapstructure:"fast_uses"`
	// ChainWithin: an account inviting within this of being created is a
	// chain link; ChainLinks in one branch within Window raise an alarm.
	ChainWithin time.Duration `mapstructure:"chain_within"`
	ChainLinks  int           `mapstructure:"chain_links"`
	// EventUses invites of one event link, or RequestUses approved
	// requests of one approver used, within EventWindow raise an alarm.
	EventWindow time.Duration `mapstructure:"event_window"`
	EventUses   int           `mapstructure:"event_uses"`
	RequestUses int           `mapstructure:"request_uses"`
	// Refusals refused invites for one inviter within RefusalsWindow
	// raise an alarm.
	Refusals       int           `mapstructure:"refusals"`
	RefusalsWindow time.Duration `mapstructure:"refusals_window"`
	// Suspend takes the right to invite from the inviter an alarm names
	// at once (their accounts are left to an admin); off by default.
	Suspend bool `mapstructure:"suspend"`
}

// DefaultAlerts are the alarms' defaults: the same as the service's own
// (invites.Default*, which cmd's test checks), written out here so that
// the configuration does not import the domain.
func DefaultAlerts() AlertsConfig {
	return AlertsConfig{Enabled: true, Window: time.Hour, Cooldown: time.Hour,
		FastUseWithin: 10 * time.Minute, FastUses: 5, ChainWithin: 30 * time.Minute, ChainLinks: 3,
		EventWindow: 10 * time.Minute, EventUses: 10, RequestUses: 5,
		Refusals: 10, RefusalsWindow: 10 * time.Minute}
}

func (a *AlertsConfig) validate() []error {
	var errs []error
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"window", a.Window}, {"cooldown", a.Cooldown}, {"fast_use_within", a.FastUseWithin},
		{"chain_within", a.ChainWithin}, {"event_window", a.EventWindow}, {"refusals_window", a.RefusalsWindow}} {
		if d.v < time.Second || d.v > 7*24*time.Hour {
			errs = append(errs, fmt.Errorf("alerts.%s: %s is not between 1s and 168h", d.key, d.v))
		}
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"fast_uses", a.FastUses}, {"chain_links", a.ChainLinks}, {"event_uses", a.EventUses},
		{"request_uses", a.RequestUses}, {"refusals", a.Refusals}} {
		if n.v < 2 || n.v > 100000 {
			errs = append(errs, fmt.Errorf("alerts.%s: %d is not between 2 and 100000", n.key, n.v))
		}
	}
	return errs
}
