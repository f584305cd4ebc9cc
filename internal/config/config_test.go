package config

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/policy"
)

// testSecret is distinctive so a leak is easy to spot in any output.
const testSecret = "s3cr3t-Pa55w0rd-xyzzy"

// validYAML is a complete, valid configuration.
const validYAML = `
xmpp:
  component: invites.example.org
  server: 127.0.0.1:5347
  secret: ` + testSecret + `
  domain: example.org
admins:
  - admin@example.org
  - Other@Elsewhere.NET
store:
  path: /tmp/invitebot.db
log:
  level: info
  format: text
`

// minimalYAML lacks the secret and every key with a default.
const minimalYAML = `
xmpp:
  component: invites.example.org
  domain: example.org
admins: [admin@example.org]
`

// clearEnv unsets every INVITEBOT_ variable for the test, so the caller's
// environment cannot change the outcome. Viper treats empty as unset.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, key := range Keys() {
		t.Setenv(EnvVar(key), "")
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// replace returns validYAML with old replaced by new, failing the test if
// old is absent (so a stale table entry cannot pass by testing nothing).
func replace(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(validYAML, old) {
		t.Fatalf("validYAML does not contain %q", old)
	}
	return strings.Replace(validYAML, old, new, 1)
}

func TestKeys(t *testing.T) {
	// Pins the configuration surface: a new key must be added here on purpose.
	want := []string{
		"xmpp.component", "xmpp.server", "xmpp.secret", "xmpp.secret_file", "xmpp.domain",
		"xmpp.c2s", "xmpp.c2s_tls.server_name", "xmpp.c2s_tls.ca_file", "xmpp.c2s_tls.insecure_skip_verify",
		"xmpp.minter", "xmpp.minter_password", "xmpp.minter_password_file",
		"admins", "store.path", "store.backup_dir", "store.backup_interval", "store.backup_keep", "log.level", "log.format",
		"http.listen", "http.public_url", "http.trust_proxy", "http.requests", "http.recovery",
		"policy.invites_per_day", "policy.max_pending", "policy.global_per_day", "policy.inviter_resets", "policy.event_max_uses",
		"invites.check_interval", "invites.introduce",
		"requests.expire_after", "requests.per_address_per_hour", "requests.max_open",
		"requests.verify", "requests.auto_approve",
		"mail.smtp", "mail.from", "mail.username", "mail.password", "mail.password_file", "mail.server_name",
		"mail.ca_file", "mail.per_address_per_day", "mail.per_domain_per_day", "mail.block_domains",
		"alerts.enabled", "alerts.window", "alerts.cooldown", "alerts.fast_use_within", "alerts.fast_uses",
		"alerts.chain_within", "alerts.chain_links", "alerts.event_window", "alerts.event_uses", "alerts.request_uses",
		"alerts.refusals", "alerts.refusals_window", "alerts.suspend",
	}
	if got := Keys(); !slices.Equal(got, want) {
		t.Errorf("Keys() = %q, want %q", got, want)
	}
	if got, want := EnvVar("xmpp.secret_file"), "INVITEBOT_XMPP_SECRET_FILE"; got != want {
		t.Errorf("EnvVar = %q, want %q", got, want)
	}
}

func TestLoadValid(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, t.TempDir(), "config.yaml", validYAML)
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.XMPP.Component != "invites.example.org" || c.XMPP.Domain != "example.org" ||
		c.XMPP.Server != "127.0.0.1:5347" || c.XMPP.Secret != testSecret ||
		c.Store.Path != "/tmp/invitebot.db" || c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("Load = %+v", c.Redacted())
	}
	if got, want := c.ComponentJID().String(), "invites.example.org"; got != want {
		t.Errorf("ComponentJID = %q, want %q", got, want)
	}
	if got, want := c.DomainJID().String(), "example.org"; got != want {
		t.Errorf("DomainJID = %q, want %q", got, want)
	}
}

func TestLoadDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("INVITEBOT_XMPP_SECRET", testSecret)
	c, err := Load(writeFile(t, t.TempDir(), "config.yaml", minimalYAML))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.XMPP.Server != DefaultServer || c.Store.Path != DefaultStorePath ||
		c.Log.Level != DefaultLogLevel || c.Log.Format != DefaultLogFormat {
		t.Errorf("defaults not applied: %+v", c.Redacted())
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	emptyFile := writeFile(t, dir, "empty", "\n")
	secretFile := writeFile(t, dir, "secret", testSecret+"\n")
	noSecret := replace(t, "  secret: "+testSecret+"\n", "")

	tests := []struct {
		name string
		yaml string
		env  map[string]string
		// want must all appear in the error; notWant must not.
		want    []string
		notWant []string
	}{
		{name: "http listen without public url", yaml: validYAML + "http:\n  listen: 127.0.0.1:8080\n",
			want: []string{"http.public_url: required when http.listen is set"}},
		{name: "http bad public url", yaml: validYAML + "http:\n  listen: 127.0.0.1:8080\n  public_url: ftp://x\n",
			want: []string{`http.public_url: "ftp://x" is not an http(s) base URL`}},
		{name: "http bad listen", yaml: validYAML + "http:\n  listen: nowhere\n  public_url: https://x.org\n",
			want: []string{"http.listen:"}},
		{name: "zero quota", yaml: validYAML + "policy:\n  max_pending: 0\n",
			want: []string{"policy.max_pending: 0 must be at least 1"}},
		{name: "zero event cap", yaml: validYAML + "policy:\n  event_max_uses: 0\n",
			want: []string{"policy.event_max_uses: 0 must be at least 1"}},
		{name: "event cap too large", yaml: validYAML + "policy:\n  event_max_uses: 1001\n",
			want: []string{"policy.event_max_uses: 1001 is more than 1000"}},
		{name: "event cap not a number", yaml: validYAML + "policy:\n  event_max_uses: many\n",
			want: []string{"event_max_uses"}},
		{name: "check interval too short", yaml: validYAML + "invites:\n  check_interval: 1s\n",
			want: []string{"invites.check_interval: 1s is shorter than 10s"}},
		{name: "check interval not a duration", yaml: validYAML + "invites:\n  check_interval: soon\n",
			want: []string{"check_interval"}},
		{name: "introduce not a boolean", yaml: validYAML + "invites:\n  introduce: maybe\n",
			want: []string{"invites.introduce"}},
		{name: "introduce not a boolean from env", yaml: validYAML, env: map[string]string{"INVITEBOT_INVITES_INTRODUCE": "sometimes"},
			want: []string{"invites.introduce"}},
		{name: "bad c2s", yaml: replace(t, "  domain: example.org\n", "  domain: example.org\n  c2s: 5222\n"),
			want: []string{"xmpp.c2s:"}},
		{name: "missing ca file", yaml: replace(t, "  domain: example.org\n", "  domain: example.org\n  c2s_tls:\n    ca_file: /nonexistent.pem\n"),
			want: []string{"xmpp.c2s_tls.ca_file:"}},
		{name: "unknown top-level key", yaml: validYAML + "polcy:\n  max: 3\n",
			want: []string{`config.yaml: unknown key "polcy"`}, notWant: []string{"polcy.max"}},
		{name: "unknown nested key", yaml: replace(t, "  secret: ", "  secrett: "),
			want: []string{`config.yaml: unknown key "xmpp.secrett"`, "xmpp.secret: missing"}},
		{name: "unknown keys all reported", yaml: validYAML + "extra: 1\nlog2: x\n",
			want: []string{`unknown key "extra"`, `unknown key "log2"`}},
		{name: "missing secret", yaml: noSecret,
			want: []string{"xmpp.secret: missing (set xmpp.secret, xmpp.secret_file or INVITEBOT_XMPP_SECRET)"}},
		{name: "secret and secret_file", yaml: replace(t, "  domain:", "  secret_file: "+secretFile+"\n  domain:"),
			want: []string{"xmpp.secret_file: set together with xmpp.secret"}},
		{name: "secret in file and secret_file in env", yaml: validYAML,
			env:  map[string]string{"INVITEBOT_XMPP_SECRET_FILE": secretFile},
			want: []string{"xmpp.secret_file: set together with xmpp.secret"}},
		{name: "secret_file missing", yaml: strings.Replace(noSecret, "  domain:", "  secret_file: "+filepath.Join(dir, "nope")+"\n  domain:", 1),
			want: []string{"xmpp.secret_file: open ", "no such file"}, notWant: []string{"xmpp.secret: missing"}},
		{name: "secret_file is a directory", yaml: noSecret, env: map[string]string{"INVITEBOT_XMPP_SECRET_FILE": dir},
			want: []string{"xmpp.secret_file: "}, notWant: []string{"xmpp.secret: missing"}},
		{name: "secret_file empty", yaml: noSecret, env: map[string]string{"INVITEBOT_XMPP_SECRET_FILE": emptyFile},
			want: []string{"xmpp.secret_file: ", "is empty"}},
		{name: "malformed component", yaml: replace(t, "component: invites.example.org", `component: "in valid@"`),
			want: []string{`xmpp.component: "in valid@" is not a valid JID`}},
		{name: "component with localpart", yaml: replace(t, "component: invites.example.org", "component: bot@invites.example.org"),
			want: []string{`xmpp.component: "bot@invites.example.org" must be a bare domain`}},
		{name: "component with resource", yaml: replace(t, "component: invites.example.org", "component: invites.example.org/bot"),
			want: []string{`xmpp.component: "invites.example.org/bot" must be a bare domain`}},
		{name: "component missing", yaml: replace(t, "  component: invites.example.org\n", ""),
			want: []string{"xmpp.component: missing"}},
		{name: "component equals domain", yaml: replace(t, "component: invites.example.org", "component: Example.ORG"),
			want: []string{"xmpp.component: \"example.org\" must differ from xmpp.domain"}},
		{name: "malformed domain", yaml: replace(t, "domain: example.org", "domain: exa_mple.org"),
			want: []string{`xmpp.domain: "exa_mple.org" is not a valid JID`}},
		{name: "domain with localpart", yaml: replace(t, "domain: example.org", "domain: user@example.org"),
			want: []string{`xmpp.domain: "user@example.org" must be a bare domain`}},
		{name: "server without port", yaml: replace(t, "server: 127.0.0.1:5347", "server: 127.0.0.1"),
			want: []string{`xmpp.server: "127.0.0.1" is not host:port`}},
		{name: "server without host", yaml: replace(t, "server: 127.0.0.1:5347", `server: ":5347"`),
			want: []string{`xmpp.server: ":5347" is not host:port`}},
		{name: "server port out of range", yaml: replace(t, "server: 127.0.0.1:5347", "server: localhost:70000"),
			want: []string{`xmpp.server: "localhost:70000" is not host:port: port "70000"`}},
		{name: "server port named", yaml: replace(t, "server: 127.0.0.1:5347", "server: localhost:xmpp"),
			want: []string{`xmpp.server: "localhost:xmpp" is not host:port`}},
		{name: "bad server from env only", yaml: validYAML, env: map[string]string{"INVITEBOT_XMPP_SERVER": "nonsense"},
			want: []string{`xmpp.server: "nonsense" is not host:port`}},
		{name: "malformed admin", yaml: replace(t, "  - Other@Elsewhere.NET", `  - "not a jid@"`),
			want: []string{`admins[1]: "not a jid@" is not a valid JID`}},
		{name: "admin with resource", yaml: replace(t, "  - Other@Elsewhere.NET", "  - other@elsewhere.net/phone"),
			want: []string{`admins[1]: "other@elsewhere.net/phone" has a resource; use the bare JID other@elsewhere.net`}},
		{name: "admin without localpart", yaml: replace(t, "  - Other@Elsewhere.NET", "  - elsewhere.net"),
			want: []string{`admins[1]: "elsewhere.net" is a domain`}},
		{name: "empty admins", yaml: replace(t, "  - admin@example.org\n  - Other@Elsewhere.NET\n", "  []\n"),
			want: []string{"admins: missing"}},
		{name: "admins absent", yaml: replace(t, "admins:\n  - admin@example.org\n  - Other@Elsewhere.NET\n", ""),
			want: []string{"admins: missing"}},
		{name: "admins emptied by env", yaml: validYAML, env: map[string]string{"INVITEBOT_ADMINS": " , "},
			want: []string{"admins: missing"}},
		{name: "empty store path", yaml: replace(t, "path: /tmp/invitebot.db", `path: ""`),
			want: []string{"store.path: must not be empty"}},
		{name: "bad log level", yaml: replace(t, "level: info", "level: verbose"),
			want: []string{`log.level: "verbose" is not one of debug, info, warn, error`}},
		{name: "bad log format", yaml: replace(t, "format: text", "format: xml"),
			want: []string{`log.format: "xml" is not one of text, json`}},
		{name: "bad log level from env", yaml: validYAML, env: map[string]string{"INVITEBOT_LOG_LEVEL": "loud"},
			want: []string{`log.level: "loud"`}},
		{name: "all problems at once", yaml: `
xmpp:
  component: bot@x.org
  server: nowhere
admins: []
log: {level: loud, format: xml}
`, want: []string{"xmpp.component:", "xmpp.domain: missing", "xmpp.server:", "xmpp.secret: missing",
			"admins: missing", "log.level:", "log.format:"}},
		{name: "section of wrong type", yaml: "xmpp: hello\n", want: []string{"config.yaml: ", "xmpp"}},
		{name: "yaml syntax error", yaml: "xmpp:\n  component: [\n", want: []string{"config.yaml: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Load(writeFile(t, t.TempDir(), "config.yaml", tt.yaml))
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c.Redacted())
			}
			if c != nil {
				t.Errorf("Load returned a config with error %v", err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(msg, nw) {
					t.Errorf("error %q\ncontains %q", msg, nw)
				}
			}
			if strings.Contains(msg, testSecret) {
				t.Errorf("error leaks the secret: %q", msg)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	clearEnv(t)
	t.Setenv("INVITEBOT_XMPP_SECRET", testSecret)
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(path)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(missing) = %v, want a not-exist error naming %s", err, path)
	}
}

func TestLoadEnv(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(*Config) bool
	}{
		{name: "env overrides file value", yaml: validYAML,
			env:   map[string]string{"INVITEBOT_LOG_LEVEL": "debug", "INVITEBOT_XMPP_SERVER": "[::1]:5348"},
			check: func(c *Config) bool { return c.Log.Level == "debug" && c.XMPP.Server == "[::1]:5348" }},
		{name: "env overrides the secret", yaml: validYAML,
			env:   map[string]string{"INVITEBOT_XMPP_SECRET": "from-env"},
			check: func(c *Config) bool { return c.XMPP.Secret == "from-env" }},
		{name: "env supplies missing secret", yaml: minimalYAML,
			env:   map[string]string{"INVITEBOT_XMPP_SECRET": "from-env"},
			check: func(c *Config) bool { return c.XMPP.Secret == "from-env" }},
		{name: "env supplies keys of absent sections", yaml: minimalYAML,
			env: map[string]string{"INVITEBOT_XMPP_SECRET": "x", "INVITEBOT_STORE_PATH": "/srv/bot.db",
				"INVITEBOT_LOG_FORMAT": "JSON"},
			check: func(c *Config) bool { return c.Store.Path == "/srv/bot.db" && c.Log.Format == "json" }},
		{name: "journal format", yaml: validYAML, env: map[string]string{"INVITEBOT_LOG_FORMAT": "Journal"},
			check: func(c *Config) bool { return c.Log.Format == "journal" }},
		{name: "env supplies everything", yaml: "",
			env: map[string]string{"INVITEBOT_XMPP_COMPONENT": "invites.example.org", "INVITEBOT_XMPP_DOMAIN": "example.org",
				"INVITEBOT_XMPP_SECRET": "x", "INVITEBOT_ADMINS": "a@example.org"},
			check: func(c *Config) bool { return c.ComponentJID().String() == "invites.example.org" }},
		{name: "admins space-separated", yaml: minimalYAML,
			env: map[string]string{"INVITEBOT_XMPP_SECRET": "x", "INVITEBOT_ADMINS": "a@x.org  B@Y.org"},
			check: func(c *Config) bool {
				return slices.Equal(c.Admins, []string{"a@x.org", "b@y.org"})
			}},
		{name: "admins comma-separated", yaml: minimalYAML,
			env: map[string]string{"INVITEBOT_XMPP_SECRET": "x", "INVITEBOT_ADMINS": "a@x.org,b@y.org, c@z.org"},
			check: func(c *Config) bool {
				return slices.Equal(c.Admins, []string{"a@x.org", "b@y.org", "c@z.org"})
			}},
		{name: "secret_file newline trimmed", yaml: minimalYAML,
			env: map[string]string{"INVITEBOT_XMPP_SECRET_FILE": writeFile(t, dir, "s1", testSecret+"\n")},
			check: func(c *Config) bool {
				return c.XMPP.Secret == testSecret && c.XMPP.SecretFile == filepath.Join(dir, "s1")
			}},
		{name: "secret_file CRLF trimmed", yaml: minimalYAML,
			env:   map[string]string{"INVITEBOT_XMPP_SECRET_FILE": writeFile(t, dir, "s2", testSecret+"\r\n")},
			check: func(c *Config) bool { return c.XMPP.Secret == testSecret }},
		{name: "secret_file without newline", yaml: strings.Replace(minimalYAML, "  domain:", "  secret_file: "+writeFile(t, dir, "s3", testSecret)+"\n  domain:", 1),
			check: func(c *Config) bool { return c.XMPP.Secret == testSecret }},
		{name: "secret_file keeps inner white space", yaml: minimalYAML,
			env:   map[string]string{"INVITEBOT_XMPP_SECRET_FILE": writeFile(t, dir, "s4", " a b \n\n")},
			check: func(c *Config) bool { return c.XMPP.Secret == " a b " }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Load(writeFile(t, t.TempDir(), "config.yaml", tt.yaml))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c.Redacted())
			}
		})
	}
}

func TestAdminsCaseFolded(t *testing.T) {
	clearEnv(t)
	c, err := Load(writeFile(t, t.TempDir(), "config.yaml",
		replace(t, "component: invites.example.org", "component: Invites.Example.ORG")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"admin@example.org", "other@elsewhere.net"}; !slices.Equal(c.Admins, want) {
		t.Errorf("Admins = %q, want %q", c.Admins, want)
	}
	set := c.AdminSet()
	if len(set) != 2 || !set["admin@example.org"] || !set["other@elsewhere.net"] || set["Other@Elsewhere.NET"] {
		t.Errorf("AdminSet = %v", set)
	}
	if got := c.XMPP.Component; got != "invites.example.org" {
		t.Errorf("Component = %q, want it case-folded", got)
	}
	if jids := c.AdminJIDs(); len(jids) != 2 || jids[1].String() != "other@elsewhere.net" {
		t.Errorf("AdminJIDs = %v", jids)
	}
}

// TestValidateSecretSources covers a Config built in code rather than by
// Load, where secret_file has not been read.
func TestValidateSecretSources(t *testing.T) {
	base := func() Config {
		c := Defaults()
		c.XMPP.Component = "invites.example.org"
		c.XMPP.Domain = "example.org"
		c.XMPP.Server = DefaultServer
		c.Admins = []string{"admin@example.org"}
		c.Store.Path = DefaultStorePath
		c.Log.Level, c.Log.Format = "info", "text"
		return c
	}
	tests := []struct {
		name, secret, file, want string
	}{
		{name: "secret only", secret: "x"},
		{name: "neither", want: "xmpp.secret: missing"},
		{name: "both", secret: "x", file: "/f", want: "xmpp.secret_file: set together with xmpp.secret"},
		{name: "file not read", file: "/f", want: `xmpp.secret_file: "/f" has not been read`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			c.XMPP.Secret, c.XMPP.SecretFile = tt.secret, tt.file
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	clearEnv(t)
	secretFile := writeFile(t, t.TempDir(), "secret", testSecret+"\n")
	t.Setenv("INVITEBOT_XMPP_SECRET_FILE", secretFile)
	c, err := Load(writeFile(t, t.TempDir(), "config.yaml", minimalYAML))
	if err != nil {
		t.Fatal(err)
	}

	r := c.Redacted()
	if want := "<redacted, 21 bytes>"; r.XMPP.Secret != want {
		t.Errorf("Redacted secret = %q, want %q", r.XMPP.Secret, want)
	}
	if c.XMPP.Secret != testSecret {
		t.Error("Redacted modified the original")
	}
	r.Admins[0] = "changed@example.org"
	if c.Admins[0] != "admin@example.org" {
		t.Error("Redacted shares Admins with the original")
	}

	var yamlOut bytes.Buffer
	if err := c.WriteYAML(&yamlOut); err != nil {
		t.Fatal(err)
	}
	var logOut bytes.Buffer
	slog.New(slog.NewJSONHandler(&logOut, nil)).Info("loaded", "config", c, "config_value", *c)
	for name, out := range map[string]string{
		"Redacted": r.XMPP.Secret, "WriteYAML": yamlOut.String(), "slog": logOut.String(),
	} {
		if strings.Contains(out, testSecret) || strings.Contains(out, "xyzzy") {
			t.Errorf("%s leaks the secret:\n%s", name, out)
		}
	}
	for _, want := range []string{"secret: <redacted, 21 bytes>", "secret_file: " + secretFile,
		"component: invites.example.org", "server: 127.0.0.1:5347", "  - admin@example.org", "store:\n  path: invitebot.db"} {
		if !strings.Contains(yamlOut.String(), want) {
			t.Errorf("WriteYAML output lacks %q:\n%s", want, yamlOut.String())
		}
	}
	if !strings.Contains(logOut.String(), `"secret":"<redacted, 21 bytes>"`) {
		t.Errorf("slog output lacks the redacted secret: %s", logOut.String())
	}

	var unset Config
	if got := unset.Redacted().XMPP.Secret; got != "<unset>" {
		t.Errorf("Redacted unset secret = %q", got)
	}
}

// TestWriteYAMLRoundTrip checks that WriteYAML uses the file's key names:
// its output loads without unknown keys and gives the same configuration.
func TestWriteYAMLRoundTrip(t *testing.T) {
	clearEnv(t)
	c, err := Load(writeFile(t, t.TempDir(), "config.yaml", validYAML))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := c.WriteYAML(&out); err != nil {
		t.Fatal(err)
	}
	c2, err := Load(writeFile(t, t.TempDir(), "config.yaml", out.String()))
	if err != nil {
		t.Fatalf("reloading WriteYAML output: %v\n%s", err, out.String())
	}
	want := c.Redacted()
	if got := c2; got.XMPP != want.XMPP || !slices.Equal(got.Admins, want.Admins) ||
		got.Store != want.Store || got.Log != want.Log {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn,
		"error": slog.LevelError, "WARN": slog.LevelWarn, "": slog.LevelInfo,
	} {
		c := Config{Log: LogConfig{Level: level}}
		if got := c.SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", level, got, want)
		}
	}
}

// shippedConfig is the example config.yaml at the module root.
var shippedConfig = filepath.Join("..", "..", "config.yaml")

func TestShippedConfig(t *testing.T) {
	clearEnv(t)
	if _, err := os.Stat(shippedConfig); err != nil {
		t.Fatalf("shipped config: %v", err)
	}

	// It must not carry a secret of its own.
	if _, err := Load(shippedConfig); err == nil || !strings.Contains(err.Error(), "xmpp.secret: missing") {
		t.Fatalf("Load without secret = %v, want xmpp.secret: missing", err)
	}

	t.Setenv("INVITEBOT_XMPP_SECRET", testSecret)
	c, err := Load(shippedConfig)
	if err != nil {
		t.Fatalf("Load(%s): %v", shippedConfig, err)
	}
	if c.ComponentJID().String() != "invites.example.org" || c.DomainJID().String() != "example.org" ||
		c.XMPP.Server != "127.0.0.1:5347" || !c.AdminSet()["admin@example.org"] {
		t.Errorf("shipped config = %+v", c.Redacted())
	}

	// Every key is documented in the example, so admins can find it.
	raw, err := os.ReadFile(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range Keys() {
		parts := strings.Split(key, ".")
		if leaf := parts[len(parts)-1]; !strings.Contains(string(raw), "\n"+strings.Repeat("  ", len(parts)-1)+leaf+":") {
			t.Errorf("shipped config does not show key %s", key)
		}
	}
}

func TestDefaultLimitsMatchPolicy(t *testing.T) {
	d := Defaults()
	got := policy.Limits{PerDay: d.Policy.InvitesPerDay, MaxPending: d.Policy.MaxPending, GlobalPerDay: d.Policy.GlobalPerDay,
		EventMaxUses: d.Policy.EventMaxUses}
	if got != policy.DefaultLimits {
		t.Errorf("config defaults %+v differ from policy.DefaultLimits %+v", got, policy.DefaultLimits)
	}
}

func TestValidateBackups(t *testing.T) {
	base := func() Config {
		c := Defaults()
		c.XMPP.Component, c.XMPP.Domain, c.XMPP.Secret = "invites.example.org", "example.org", "x"
		c.Admins = []string{"admin@example.org"}
		c.Store.Path = "/var/lib/invitebot/invitebot.db"
		return c
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "own folder", edit: func(c *Config) { c.Store.BackupDir = "/var/lib/invitebot/backups" }},
		{name: "database folder", edit: func(c *Config) { c.Store.BackupDir = "/var/lib/invitebot/" }, want: "store.backup_dir: must not be the database's own folder"},
		{name: "too often", edit: func(c *Config) { c.Store.BackupInterval = time.Second }, want: "store.backup_interval: 1s is shorter than 1m0s"},
		{name: "keep none", edit: func(c *Config) { c.Store.BackupKeep = 0 }, want: "store.backup_keep: 0 must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestValidateRequests(t *testing.T) {
	base := func() Config {
		c := Defaults()
		c.XMPP.Component, c.XMPP.Domain, c.XMPP.Secret = "invites.example.org", "example.org", "x"
		c.Admins = []string{"admin@example.org"}
		return c
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "on with a web server", edit: func(c *Config) {
			c.HTTP.Requests, c.HTTP.Listen, c.HTTP.PublicURL = true, "127.0.0.1:8080", "https://invites.example.org"
		}},
		{name: "on without a web server", edit: func(c *Config) { c.HTTP.Requests = true }, want: "http.requests: the request page needs the web server"},
		{name: "expire too soon", edit: func(c *Config) { c.Requests.ExpireAfter = time.Minute }, want: "requests.expire_after: 1m0s is not between 1h0m0s and 2160h0m0s"},
		{name: "expire too late", edit: func(c *Config) { c.Requests.ExpireAfter = 100 * 24 * time.Hour }, want: "requests.expire_after: 2400h0m0s is not between"},
		{name: "no requests per hour", edit: func(c *Config) { c.Requests.PerAddressPerHour = 0 }, want: "requests.per_address_per_hour: 0 must be at least 1"},
		{name: "no open requests", edit: func(c *Config) { c.Requests.MaxOpen = -1 }, want: "requests.max_open: -1 must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestLoadRequests: the keys from a file and from the environment.
func TestLoadRequests(t *testing.T) {
	clearEnv(t)
	c, err := Load(writeFile(t, t.TempDir(), "config.yaml", validYAML+`
http:
  listen: 127.0.0.1:8080
  public_url: https://invites.example.org
  requests: true
requests:
  expire_after: 72h
  max_open: 5
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.HTTP.Requests || c.Requests.ExpireAfter != 72*time.Hour || c.Requests.MaxOpen != 5 || c.Requests.PerAddressPerHour != DefaultRequestsPerHour {
		t.Errorf("loaded %+v %+v", c.HTTP, c.Requests)
	}
	t.Setenv("INVITEBOT_REQUESTS_PER_ADDRESS_PER_HOUR", "7")
	if c, err = Load(writeFile(t, t.TempDir(), "config.yaml", validYAML)); err != nil || c.Requests.PerAddressPerHour != 7 || c.HTTP.Requests {
		t.Errorf("from the environment: %+v, %v", c.Requests, err)
	}
}

// TestEventMaxUses: policy.event_max_uses defaults to 50 and is read from
// the file and from the environment.
func TestEventMaxUses(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	c, err := Load(writeFile(t, dir, "default.yaml", validYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.EventMaxUses != DefaultEventMaxUses || DefaultEventMaxUses != 50 {
		t.Errorf("default event_max_uses = %d, want 50", c.Policy.EventMaxUses)
	}
	c, err = Load(writeFile(t, dir, "file.yaml", validYAML+"policy:\n  event_max_uses: 30\n"))
	if err != nil || c.Policy.EventMaxUses != 30 {
		t.Errorf("event_max_uses from the file: %+v, %v", c.Policy, err)
	}
	t.Setenv("INVITEBOT_POLICY_EVENT_MAX_USES", "20")
	c, err = Load(writeFile(t, dir, "env.yaml", validYAML+"policy:\n  event_max_uses: 30\n"))
	if err != nil || c.Policy.EventMaxUses != 20 {
		t.Errorf("event_max_uses from the environment: %+v, %v", c.Policy, err)
	}
}

// TestChangedKeys: a change is named by its full key, each one once, in
// the order of the configuration.
func TestChangedKeys(t *testing.T) {
	a := Defaults()
	a.Admins = []string{"admin@example.org"}
	if got := ChangedKeys(&a, &a); len(got) != 0 {
		t.Errorf("no change: %v", got)
	}
	b := a
	b.Admins = []string{"admin@example.org", "other@example.net"}
	b.XMPP.Server = "10.0.0.1:5347"
	b.XMPP.Secret = "new"
	b.XMPP.C2STLS.CAFile = "/etc/ca.pem"
	b.Policy.InvitesPerDay = 2
	b.Store.BackupInterval = time.Hour
	got := strings.Join(ChangedKeys(&a, &b), ",")
	if want := "xmpp.server,xmpp.secret,xmpp.c2s_tls.ca_file,admins,store.backup_interval,policy.invites_per_day"; got != want {
		t.Errorf("ChangedKeys = %s, want %s", got, want)
	}
}
