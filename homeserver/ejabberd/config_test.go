package ejabberd

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"mellium.im/xmpp/jid"
)

func testFragmentConfig() FragmentConfig {
	return FragmentConfig{
		Minter:          jid.MustParse("minter@example.org"),
		Component:       "invites.example.org",
		Secret:          `se"cret`,
		Port:            5347,
		HostAccessRules: "c2s:\n  allow: all",
	}
}

// TestFragmentGrantsExactly parses the fragment as ejabberd would and
// checks the minter's rights: configure and access_create_account only in
// the domain's host_config, the API commands named one by one through
// mod_adhoc_api, registration only with a token.
func TestFragmentGrantsExactly(t *testing.T) {
	text, err := Fragment(testFragmentConfig())
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Listen []struct {
			Port   int
			IP     string
			Module string
			Hosts  map[string]struct{ Password string }
		}
		RegistrationTimeout string `yaml:"registration_timeout"`
		ACL                 map[string]map[string]string
		AccessRules         map[string]any `yaml:"access_rules"`
		HostConfig          map[string]struct {
			AccessRules map[string]any `yaml:"access_rules"`
		} `yaml:"host_config"`
		APIPermissions map[string]struct {
			From string
			Who  string
			What []string
		} `yaml:"api_permissions"`
		Modules map[string]map[string]any
	}
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("fragment is not YAML: %v\n%s", err, text)
	}
	if len(cfg.Listen) != 1 || cfg.Listen[0].Module != "ejabberd_service" || cfg.Listen[0].IP != "127.0.0.1" ||
		cfg.Listen[0].Hosts["invites.example.org"].Password != `se"cret` {
		t.Errorf("listen: %+v", cfg.Listen)
	}
	if cfg.RegistrationTimeout != "infinity" {
		t.Errorf("registration_timeout: %q", cfg.RegistrationTimeout)
	}
	if cfg.ACL[MinterACL]["user"] != "minter@example.org" {
		t.Errorf("acl: %+v", cfg.ACL)
	}
	if len(cfg.AccessRules) != 0 {
		t.Errorf("global access_rules changed: %+v (the minter's rules belong to its host)", cfg.AccessRules)
	}
	host := cfg.HostConfig["example.org"].AccessRules
	for _, rule := range []string{"configure", CreateAccountRule, "c2s"} {
		if host[rule] == nil {
			t.Errorf("host_config access_rules lack %s: %+v", rule, host)
		}
	}
	var allowed []string
	configure, _ := host["configure"].([]any)
	for _, r := range configure {
		if m, ok := r.(map[string]any); ok {
			allowed = append(allowed, fmt.Sprint(m["allow"]))
		}
	}
	if strings.Join(allowed, ",") != "admin,"+MinterACL {
		t.Errorf("configure on the host allows %v, want the admins and the minter:\n%s", allowed, text)
	}
	p := cfg.APIPermissions[PermissionName]
	if p.From != "mod_adhoc_api" || p.Who != MinterACL || strings.Join(p.What, ",") != strings.Join(APICommands, ",") {
		t.Errorf("api_permissions: %+v", cfg.APIPermissions)
	}
	if cfg.Modules["mod_invites"]["access_create_account"] != CreateAccountRule {
		t.Errorf("mod_invites: %+v", cfg.Modules["mod_invites"])
	}
	if am, _ := cfg.Modules["mod_register"]["allow_modules"].([]any); len(am) != 1 || am[0] != "mod_invites" {
		t.Errorf("mod_register: %+v", cfg.Modules["mod_register"])
	}
}

func TestFragmentWithoutAPIPermissions(t *testing.T) {
	c := testFragmentConfig()
	c.WithoutAPIPermissions = true
	text, err := Fragment(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "api_permissions") || strings.Contains(text, CmdResetToken) {
		t.Errorf("fragment still grants API commands:\n%s", text)
	}
}

func TestFragmentRefusesBadInput(t *testing.T) {
	for name, change := range map[string]func(*FragmentConfig){
		"minter without localpart": func(c *FragmentConfig) { c.Minter = jid.MustParse("example.org") },
		"no component":             func(c *FragmentConfig) { c.Component = "" },
		"no secret":                func(c *FragmentConfig) { c.Secret = "" },
		"port zero":                func(c *FragmentConfig) { c.Port = 0 },
		"port too high":            func(c *FragmentConfig) { c.Port = 70000 },
		"acl with yaml":            func(c *FragmentConfig) { c.AdminACL = "admin\nx: y" },
	} {
		c := testFragmentConfig()
		change(&c)
		if text, err := Fragment(c); err == nil {
			t.Errorf("%s: no error; fragment:\n%s", name, text)
		}
	}
}
