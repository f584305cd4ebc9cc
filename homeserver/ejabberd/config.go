package ejabberd

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"mellium.im/xmpp/jid"
)

// API commands the minter account runs through mod_adhoc_api, each an
// ad-hoc node "api-commands/NAME" on the domain. They are exactly what
// Fragment names in api_permissions.
const (
	CmdResetToken  = "generate_reset_token"
	CmdListInvites = "list_invites"
	CmdDelete      = "delete_invite_by_token"
	CmdCheck       = "check_account"
)

// APICommands are the API commands the minter account needs, in the order
// Fragment lists them. Minting itself is the XEP-0401 command, which
// access_create_account allows, not an API command.
var APICommands = []string{CmdResetToken, CmdListInvites, CmdDelete, CmdCheck}

// Names Fragment gives what it defines, so that an operator finds them in
// ejabberd.yml and the bot's log can point at them.
const (
	// MinterACL is the acl holding only the minter account.
	MinterACL = "invitebot_minter"
	// CreateAccountRule is the access rule mod_invites's
	// access_create_account names: the minter account only.
	CreateAccountRule = "invitebot_create_account"
	// PermissionName is the api_permissions entry for the minter.
	PermissionName = "invitebot minter"
)

// DebianHostRules are the access rules of Debian's ejabberd.yml other
// than configure (which Fragment writes itself), to repeat in the
// domain's host_config where an operator's file still has Debian's.
const DebianHostRules = `local:
  allow: local
c2s:
  deny: blocked
  allow: all
announce:
  allow: admin
muc_create:
  allow: local
pubsub_createnode:
  allow: local
trusted_network:
  allow: loopback`

// FragmentConfig says what Fragment writes the configuration for.
type FragmentConfig struct {
	// Minter is the minter account, a bare JID of the domain invites
	// create accounts on (its domainpart).
	Minter jid.JID
	// Component is the bot's XEP-0114 component address, and Secret its
	// shared secret; Port and IP where ejabberd_service listens for it
	// (IP empty: 127.0.0.1, the bot beside the server).
	Component string
	Secret    string
	Port      int
	IP        string
	// AdminACL names the acl whose members keep the configure right on
	// the domain (empty: "admin", ejabberd's own).
	AdminACL string
	// HostAccessRules is the text of access rules to repeat in the
	// domain's host_config, in ejabberd.yml syntax without indentation
	// ("c2s:\n  allow: all\n..."): host_config's access_rules replace the
	// global ones for that host, so every global rule the host relies on
	// must be there again.
	HostAccessRules string
	// WithoutAPIPermissions leaves the api_permissions entry out: the
	// minter can then mint but not reset, list, delete or check (tests of
	// what the bot detects).
	WithoutAPIPermissions bool
}

// Fragment returns the ejabberd.yml text the bot needs, as top-level keys
// an operator merges into the configuration (listen, acl, host_config,
// api_permissions, modules, registration_timeout). It gives
// the minter account the least ejabberd allows:
//
//   - mod_invites's access_create_account names the minter only, so that
//     it may run urn:xmpp:invite#create-account; nobody else gains that;
//   - the API commands it runs each take the domain as an argument, and
//     ejabberd checks the configure access rule on that host before
//     api_permissions: so configure allows the minter, but only in the
//     domain's host_config, beside the admins;
//   - api_permissions allows it exactly APICommands, through mod_adhoc_api
//     only (not HTTP, not ejabberdctl);
//   - registration_timeout infinity, because the bot registers browser
//     accounts from one address, and ejabberd's default allows one
//     registration per address every 600 seconds;
//   - mod_register takes registrations only with an invite token
//     (allow_modules: mod_invites): open registration stays off.
func Fragment(c FragmentConfig) (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	data := map[string]any{
		"Domain":         quote(c.Minter.Domainpart()),
		"Minter":         quote(c.Minter.Bare().String()),
		"Component":      quote(c.Component),
		"Secret":         quote(c.Secret),
		"Port":           c.Port,
		"IP":             quote(orDefault(c.IP, "127.0.0.1")),
		"AdminACL":       orDefault(c.AdminACL, "admin"),
		"HostRules":      indent(strings.TrimSpace(c.HostAccessRules), "      "),
		"MinterACL":      MinterACL,
		"CreateRule":     CreateAccountRule,
		"Permission":     quote(PermissionName),
		"Commands":       APICommands,
		"APIPermissions": !c.WithoutAPIPermissions,
	}
	var b bytes.Buffer
	if err := fragmentTemplate.Execute(&b, data); err != nil {
		return "", fmt.Errorf("ejabberd fragment: %w", err)
	}
	return b.String(), nil
}

func (c FragmentConfig) validate() error {
	switch {
	case c.Minter.Localpart() == "":
		return errors.New("ejabberd fragment: the minter must be an account (user@domain)")
	case c.Component == "":
		return errors.New("ejabberd fragment: no component address")
	case c.Secret == "":
		return errors.New("ejabberd fragment: no component secret")
	case c.Port <= 0 || c.Port > 65535:
		return fmt.Errorf("ejabberd fragment: component port %d out of range", c.Port)
	case strings.ContainsAny(c.AdminACL, ": \n\"'"):
		return fmt.Errorf("ejabberd fragment: acl name %q", c.AdminACL)
	}
	return nil
}

var fragmentTemplate = template.Must(template.New("fragment").Parse(`# invitebot: merge these keys into ejabberd.yml (lists and maps join
# what is there; a key may appear only once in the file).
listen:
  -
    port: {{.Port}}
    ip: {{.IP}}
    module: ejabberd_service
    hosts:
      {{.Component}}:
        password: {{.Secret}}

# The bot registers accounts from the browser through one address.
registration_timeout: infinity

acl:
  {{.MinterACL}}:
    user: {{.Minter}}

# The API commands take the domain as an argument, and ejabberd requires
# the configure rule on that host for them: the minter gets it here only,
# with the rule mod_invites asks before minting. host_config's
# access_rules replace the global ones for this host, so the host's other
# rules are repeated.
host_config:
  {{.Domain}}:
    access_rules:
      configure:
        - allow: {{.AdminACL}}
        - allow: {{.MinterACL}}
      {{.CreateRule}}:
        - allow: {{.MinterACL}}
{{- if .HostRules}}
{{.HostRules}}
{{- end}}
{{if .APIPermissions}}
api_permissions:
  {{.Permission}}:
    from: mod_adhoc_api
    who: {{.MinterACL}}
    what:
{{- range .Commands}}
      - {{.}}
{{- end}}
{{end}}
modules:
  mod_adhoc: {}
  mod_adhoc_api: {}
  # check_account, which the bot asks before a password reset link.
  mod_admin_extra: {}
  mod_invites:
    access_create_account: {{.CreateRule}}
  # Registration only with an invite token: open registration stays off.
  mod_register:
    allow_modules:
      - mod_invites
`))

// quote writes s as a YAML double-quoted scalar (JSON's escaping is a
// subset of YAML's).
func quote(s string) string { return strconv.Quote(s) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// indent prefixes every non-empty line of s.
func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}
