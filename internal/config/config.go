// Package config loads invitebot's configuration in two stages: viper reads
// the YAML file and INVITEBOT_* environment overrides into a typed Config, and
// Validate checks it, naming the offending key in every error.
//
// Every key has an environment variable: INVITEBOT_ followed by the key path
// in upper case with dots as underscores (xmpp.secret_file is
// INVITEBOT_XMPP_SECRET_FILE). List values taken from the environment, such
// as INVITEBOT_ADMINS, are split on commas and white space.
//
// Adding a section means adding a field to Config whose type carries
// mapstructure tags, plus a validate method called from Config.Validate.
// Environment bindings, defaults, unknown-key detection, redaction and
// WriteYAML are all derived from the struct, so nothing else has to change.
// Each section keeps its type, defaults, bounds and validate method in a file
// named for it (xmpp.go, store.go, policy.go, ...); load.go reads the file
// and the environment, keys.go walks the key tree the struct tags define,
// and redact.go prints a Config without its secrets.
package config

import "errors"

// Config is invitebot's validated configuration.
type Config struct {
	XMPP XMPPConfig `mapstructure:"xmpp"`
	// Admins are the bare JIDs (on any domain) allowed to administer the
	// bot. Validate case-folds them to their canonical form.
	Admins  []string      `mapstructure:"admins"`
	Store   StoreConfig   `mapstructure:"store"`
	Log     LogConfig     `mapstructure:"log"`
	HTTP    HTTPConfig    `mapstructure:"http"`
	Policy  PolicyConfig  `mapstructure:"policy"`
	Invites InvitesConfig `mapstructure:"invites"`

	// Requests bounds account requests from the web page.
	Requests RequestsConfig `mapstructure:"requests"`

	// Mail says how the bot sends mail (mail.go).
	Mail MailConfig `mapstructure:"mail"`
	// Alerts are the thresholds of the abuse alarms (alerts.go).
	Alerts AlertsConfig `mapstructure:"alerts"`
}

// Defaults returns a Config holding every default value: what Load uses for
// keys absent from both file and environment, and the starting point for a
// Config built in code (tests).
func Defaults() Config {
	var c Config
	c.XMPP.Server = DefaultServer
	c.Store.Path = DefaultStorePath
	c.Log.Level = DefaultLogLevel
	c.Log.Format = DefaultLogFormat
	c.XMPP.C2S = DefaultC2S
	c.Policy = PolicyConfig{InvitesPerDay: DefaultInvitesPerDay, MaxPending: DefaultMaxPending, GlobalPerDay: DefaultGlobalPerDay,
		InviterResets: true, EventMaxUses: DefaultEventMaxUses}
	c.Invites.CheckInterval = DefaultCheckInterval
	c.Store.BackupInterval = DefaultBackupInterval
	c.Store.BackupKeep = DefaultBackupKeep
	c.Invites.Introduce = DefaultIntroduce
	c.Requests = RequestsConfig{ExpireAfter: DefaultRequestExpiry, PerAddressPerHour: DefaultRequestsPerHour,
		MaxOpen: DefaultMaxOpenRequests}
	c.Mail.PerAddressPerDay, c.Mail.PerDomainPerDay = DefaultMailPerAddressPerDay, DefaultMailPerDomainPerDay
	c.Alerts = DefaultAlerts()
	return c
}

// Validate checks every field and returns all problems joined, each naming
// its key. It also normalises values in place (JIDs to their canonical,
// case-folded form; log level and format to lower case), so accessors such
// as AdminSet are meaningful only after Validate succeeded. It expects
// xmpp.secret_file to have been read already, as Load does.
func (c *Config) Validate() error {
	return errors.Join(c.validate(true)...)
}

// validate collects the problems of every section. checkSecret is false when
// reading secret_file failed and that error was reported already.
func (c *Config) validate(checkSecret bool) []error {
	var errs []error
	errs = append(errs, c.XMPP.validate(checkSecret)...)
	errs = append(errs, validateAdmins(c.Admins)...)
	errs = append(errs, c.Store.validate()...)
	errs = append(errs, c.Log.validate()...)
	errs = append(errs, c.HTTP.validate()...)
	errs = append(errs, c.Policy.validate()...)
	errs = append(errs, c.Invites.validate()...)
	errs = append(errs, c.Requests.validate(c.HTTP)...)
	errs = append(errs, c.Mail.validate()...)
	errs = append(errs, c.validateSignup()...)
	errs = append(errs, c.Alerts.validate()...)
	return errs
}
