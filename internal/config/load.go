package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"unicode"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "INVITEBOT"

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
	errs = append(errs, secretErr, c.XMPP.readMinterPasswordFile(), c.Mail.readPasswordFile())
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
