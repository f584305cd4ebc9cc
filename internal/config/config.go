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
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
	"mellium.im/xmpp/jid"
)

// Defaults for keys an admin may leave out.
const (
	DefaultServer    = "127.0.0.1:5347" // Prosody's default component_ports on loopback
	DefaultStorePath = "invitebot.db"
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
	DefaultC2S       = "127.0.0.1:5222"

	DefaultInvitesPerDay = 5   // policy.DefaultLimits.PerDay
	DefaultMaxPending    = 10  // policy.DefaultLimits.MaxPending
	DefaultGlobalPerDay  = 100 // policy.DefaultLimits.GlobalPerDay
	DefaultEventMaxUses  = 50  // policy.DefaultLimits.EventMaxUses
	DefaultCheckInterval = time.Minute
	// A daily backup, a week of them.
	DefaultBackupInterval = 24 * time.Hour
	DefaultBackupKeep     = 7
	DefaultIntroduce      = true

	// Account requests: a week to answer one, a few an hour from one
	// address, and a cap that keeps approvers' work finite.
	DefaultRequestExpiry   = 7 * 24 * time.Hour // invites.DefaultRequestExpiry
	DefaultRequestsPerHour = 3                  // web.DefaultRequestsPerHour
	DefaultMaxOpenRequests = 20                 // invites.DefaultMaxOpenRequests
	minRequestExpiry       = time.Hour
	maxRequestExpiry       = 90 * 24 * time.Hour
)

// minCheckInterval keeps usage tracking from hammering the server.
const minCheckInterval = 10 * time.Second

// maxEventMaxUses bounds policy.event_max_uses: a cap is typed in chat,
// where numbers stop at 1000, and an event link for more people than that
// is an open door, not an event.
const maxEventMaxUses = 1000

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "INVITEBOT"

// tagKey is the struct tag that names a configuration key. It is the tag
// viper's decoder reads, so the key tree has a single source of truth.
const tagKey = "mapstructure"

// redactTag marks fields whose value must never be printed or logged
// (`redact:"true"`); Redacted, WriteYAML and LogValue honour it.
const redactTag = "redact"

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
}

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

// How invites are minted, as Config.Minting names it.
const (
	// MintingComponent: the component runs the server's command as an
	// admin of the domain.
	MintingComponent = "component"
	// MintingAccount: the bot logs in as xmpp.minter over c2s and runs the
	// command as that account.
	MintingAccount = "account"
)

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
}

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
}

// StoreConfig locates the bbolt database and its backups.
type StoreConfig struct {
	Path string `mapstructure:"path"`
	// BackupDir, when set, is where consistent copies of the database are
	// written every BackupInterval and when an admin sends backup.
	BackupDir string `mapstructure:"backup_dir"`
	// BackupInterval is how often a backup is written.
	BackupInterval time.Duration `mapstructure:"backup_interval"`
	// BackupKeep is how many backups are kept; older ones are removed.
	BackupKeep int `mapstructure:"backup_keep"`
}

// LogConfig selects log verbosity and encoding.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level"`
	// Format is text or json.
	Format string `mapstructure:"format"`
}

// logLevels maps the accepted log.level values to slog levels.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// logFormats lists the accepted log.format values.
var logFormats = []string{"text", "json"}

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
	return c
}

// Load reads the YAML file at path, which must exist, applies INVITEBOT_*
// environment overrides, rejects keys the file has but Config does not,
// reads xmpp.secret_file, and validates the result. All problems found are
// returned together.
func Load(path string) (*Config, error) {
	v := viper.New()
	v.SetConfigFile(path)
	v.SetConfigType("yaml") // whatever the file is called
	if err := v.ReadInConfig(); err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			return nil, fmt.Errorf("read config: %w", err) // names the path already
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}

	// Before defaults and env bindings are added, viper's settings are
	// exactly what the file holds.
	var errs []error
	for _, key := range unknownKeys(v.AllSettings(), reflect.TypeFor[Config](), "") {
		errs = append(errs, fmt.Errorf("%s: unknown key %q", path, key))
	}

	def := reflect.ValueOf(Defaults())
	for key, field := range leaves(def, "") {
		if !field.IsZero() {
			v.SetDefault(key, field.Interface())
		}
		// An explicit binding per key: AutomaticEnv alone is invisible to
		// Unmarshal for keys missing from the file.
		if err := v.BindEnv(key, EnvVar(key)); err != nil {
			return nil, fmt.Errorf("bind %s: %w", key, err)
		}
	}

	// No ErrorUnused: unknown keys were reported above, and decoding on lets
	// an admin see the other problems in the same run.
	c := new(Config)
	err := v.Unmarshal(c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		splitListHook,
	)))
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
		return nil, errors.Join(errs...)
	}

	secretErr := c.XMPP.readSecretFile()
	errs = append(errs, secretErr, c.XMPP.readMinterPasswordFile())
	// A secret_file that could not be read already explains why the secret
	// is missing; do not report it twice.
	errs = append(errs, c.validate(secretErr == nil)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// EnvVar returns the environment variable that overrides key, e.g.
// INVITEBOT_XMPP_SECRET for xmpp.secret.
func EnvVar(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Keys returns every configuration key, in struct order.
func Keys() []string {
	var keys []string
	for key := range leaves(reflect.ValueOf(Config{}), "") {
		keys = append(keys, key)
	}
	return keys
}

// splitListHook turns a string into a list by splitting on commas and white
// space, so INVITEBOT_ADMINS="a@x b@y" and "a@x,b@y" both work.
func splitListHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice || to.Elem().Kind() != reflect.String {
		return data, nil
	}
	return strings.FieldsFunc(reflect.ValueOf(data).String(), func(r rune) bool {
		return r == ',' || unicode.IsSpace(r)
	}), nil
}

// readSecretFile copies the content of SecretFile into Secret. If both are
// set it leaves them for Validate to report.
func (x *XMPPConfig) readSecretFile() error {
	if x.SecretFile == "" || x.Secret != "" {
		return nil
	}
	s, err := readSecret("xmpp.secret_file", x.SecretFile)
	if err != nil {
		return err
	}
	x.Secret = s
	x.secretFromFile = true
	return nil
}

// readMinterPasswordFile is readSecretFile for the minter's password. It
// reads nothing without xmpp.minter, which Validate reports instead.
func (x *XMPPConfig) readMinterPasswordFile() error {
	if x.MinterPasswordFile == "" || x.MinterPassword != "" || x.Minter == "" {
		return nil
	}
	s, err := readSecret("xmpp.minter_password_file", x.MinterPasswordFile)
	if err != nil {
		x.minterPasswordUnread = true
		return err
	}
	x.MinterPassword = s
	x.minterPasswordFromFile = true
	return nil
}

// readSecret returns the content of the file at path without its trailing
// newline; errors name key and the path, never content.
func readSecret(key, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %q is empty", key, path)
	}
	return s, nil
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
	return errs
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

func (i *InvitesConfig) validate() []error {
	if i.CheckInterval < minCheckInterval {
		return []error{fmt.Errorf("invites.check_interval: %s is shorter than %s", i.CheckInterval, minCheckInterval)}
	}
	return nil
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

// minBackupInterval keeps scheduled backups from filling the disk.
const minBackupInterval = time.Minute

func (s *StoreConfig) validate() []error {
	var errs []error
	if s.Path == "" {
		errs = append(errs, errors.New("store.path: must not be empty"))
	}
	if s.BackupInterval < minBackupInterval {
		errs = append(errs, fmt.Errorf("store.backup_interval: %s is shorter than %s", s.BackupInterval, minBackupInterval))
	}
	if s.BackupKeep < 1 {
		errs = append(errs, fmt.Errorf("store.backup_keep: %d must be at least 1", s.BackupKeep))
	}
	if s.BackupDir != "" && s.Path != "" && filepath.Clean(s.BackupDir) == filepath.Dir(filepath.Clean(s.Path)) {
		errs = append(errs, errors.New("store.backup_dir: must not be the database's own folder; use a folder of its own, ideally on another disk"))
	}
	return errs
}

func (l *LogConfig) validate() []error {
	var errs []error
	level := strings.ToLower(l.Level)
	if _, ok := logLevels[level]; ok {
		l.Level = level
	} else {
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", l.Level))
	}
	format := strings.ToLower(l.Format)
	if slices.Contains(logFormats, format) {
		l.Format = format
	} else {
		errs = append(errs, fmt.Errorf("log.format: %q is not one of %s", l.Format, strings.Join(logFormats, ", ")))
	}
	return errs
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

// SlogLevel returns the slog level named by log.level, info if unknown.
func (c *Config) SlogLevel() slog.Level {
	if l, ok := logLevels[strings.ToLower(c.Log.Level)]; ok {
		return l
	}
	return slog.LevelInfo
}

// Redacted returns a deep copy safe to print: every secret is replaced by
// "<redacted, N bytes>", or "<unset>" when empty.
func (c *Config) Redacted() Config {
	r := *c
	for _, f := range leaves(reflect.ValueOf(&r).Elem(), "") {
		switch {
		case f.redact:
			f.Set(reflect.ValueOf(redact(f.String())))
		case f.Kind() == reflect.Slice && !f.IsNil():
			// Do not share backing arrays with c.
			f.Set(reflect.AppendSlice(reflect.MakeSlice(f.Type(), 0, f.Len()), f.Value))
		}
	}
	return r
}

func redact(s string) string {
	if s == "" {
		return "<unset>"
	}
	return fmt.Sprintf("<redacted, %d bytes>", len(s))
}

// LogValue makes slog print the redacted configuration, so logging a Config
// cannot leak a secret.
func (c Config) LogValue() slog.Value {
	return groupValue(reflect.ValueOf(c.Redacted()))
}

func groupValue(v reflect.Value) slog.Value {
	var attrs []slog.Attr
	for key, f := range fields(v) {
		if isSection(f.Type()) {
			attrs = append(attrs, slog.Attr{Key: key, Value: groupValue(f.Value)})
		} else {
			attrs = append(attrs, slog.Any(key, f.Interface()))
		}
	}
	return slog.GroupValue(attrs...)
}

// WriteYAML writes the effective configuration, secrets redacted, as YAML
// with the file's key names.
func (c *Config) WriteYAML(w io.Writer) error {
	doc := &yaml.Node{
		Kind: yaml.DocumentNode,
		HeadComment: "effective invitebot configuration (file, environment and defaults); secrets redacted\n" +
			"invites are minted " + c.MintingSummary(),
	}
	body, err := yamlNode(reflect.ValueOf(c.Redacted()))
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	doc.Content = []*yaml.Node{body}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// yamlNode builds a mapping node in struct order, which yaml.Marshal of a
// map would not keep.
func yamlNode(v reflect.Value) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for key, f := range fields(v) {
		var val *yaml.Node
		if isSection(f.Type()) {
			var err error
			if val, err = yamlNode(f.Value); err != nil {
				return nil, err
			}
		} else if d, ok := f.Interface().(time.Duration); ok {
			// Durations as "1m0s", the form they are written in.
			val = &yaml.Node{Kind: yaml.ScalarNode, Value: d.String()}
		} else {
			val = new(yaml.Node)
			if err := val.Encode(f.Interface()); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, val)
	}
	return m, nil
}

// field is a struct field's value plus what its tags say about it.
type field struct {
	reflect.Value
	redact bool
}

// fields yields the exported, tagged fields of struct value v by key name.
func fields(v reflect.Value) func(yield func(string, field) bool) {
	return func(yield func(string, field) bool) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get(tagKey), ",")
			if !sf.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				panic(fmt.Sprintf("config: field %s.%s has no %s tag", t.Name(), sf.Name, tagKey))
			}
			if !yield(name, field{Value: v.Field(i), redact: sf.Tag.Get(redactTag) == "true"}) {
				return
			}
		}
	}
}

// leaves yields every non-section field under v with its dotted key.
func leaves(v reflect.Value, prefix string) func(yield func(string, field) bool) {
	return func(yield func(string, field) bool) {
		var walk func(v reflect.Value, prefix string) bool
		walk = func(v reflect.Value, prefix string) bool {
			for name, f := range fields(v) {
				key := joinKey(prefix, name)
				if isSection(f.Type()) {
					if !walk(f.Value, key) {
						return false
					}
				} else if !yield(key, f) {
					return false
				}
			}
			return true
		}
		walk(v, prefix)
	}
}

// isSection reports whether a field of type t is a nested section rather
// than a value.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// unknownKeys returns, sorted, the dotted keys in settings that section type
// t does not have. An unknown section is reported once, not per key inside.
func unknownKeys(settings map[string]any, t reflect.Type, prefix string) []string {
	known := map[string]reflect.Type{}
	for name, f := range fields(reflect.New(t).Elem()) {
		known[name] = f.Type()
	}
	var out []string
	for k, val := range settings {
		key := joinKey(prefix, k)
		ft, ok := known[k]
		if !ok {
			out = append(out, key)
			continue
		}
		if m, ok := val.(map[string]any); ok && isSection(ft) {
			out = append(out, unknownKeys(m, ft, key)...)
		}
	}
	sort.Strings(out)
	return out
}
