package ejabberdtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"durare.org/invitebot/homeserver/ejabberd"
)

// baseRules are the access rules of the harness's base configuration;
// the fragment repeats them in the domain's host_config, as operators are
// told to repeat theirs.
const baseRules = `local:
  allow: local
c2s:
  allow: all`

// writeConfig writes ejabberd.yml: the harness's base (hosts, c2s with
// STARTTLS, the certificate, ejabberdctl's permission) merged with the
// fragment operators get from homeserver/ejabberd.
func (s *Server) writeConfig(c2sPort, compPort int) error {
	frag, err := ejabberd.Fragment(ejabberd.FragmentConfig{
		Minter:                s.Minter,
		Component:             s.Component,
		Secret:                s.ComponentSecret,
		Port:                  compPort,
		HostAccessRules:       baseRules,
		WithoutAPIPermissions: s.opts.withoutPermission,
	})
	if err != nil {
		return err
	}
	base := map[string]any{
		"hosts":     []string{s.Domain, s.OtherDomain},
		"loglevel":  "info",
		"certfiles": []string{s.certPath},
		"listen": []any{map[string]any{
			"port": c2sPort, "ip": "127.0.0.1", "module": "ejabberd_c2s", "starttls_required": true,
		}},
		"acl": map[string]any{"local": map[string]any{"user_regexp": ""}},
		"access_rules": map[string]any{
			"local": map[string]any{"allow": "local"},
			"c2s":   map[string]any{"allow": "all"},
		},
		"api_permissions": map[string]any{"console commands": map[string]any{
			"from": "ejabberd_ctl", "who": "all", "what": "*",
		}},
		"modules": map[string]any{
			"mod_disco":  map[string]any{},
			"mod_roster": map[string]any{},
			"mod_ping":   map[string]any{},
		},
	}
	var fragMap map[string]any
	if err := yaml.Unmarshal([]byte(frag), &fragMap); err != nil {
		return fmt.Errorf("the ejabberd fragment is not YAML: %w\n%s", err, frag)
	}
	merged, err := merge(base, fragMap)
	if err != nil {
		return fmt.Errorf("merge the ejabberd fragment: %w", err)
	}
	out, err := yaml.Marshal(merged)
	if err != nil {
		return fmt.Errorf("render ejabberd.yml: %w", err)
	}
	return os.WriteFile(s.ConfigPath, out, 0o600)
}

// merge joins b into a the way an operator merges the fragment: maps
// gain keys, lists gain items, and a scalar set in both is a conflict.
func merge(a, b map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, bv := range b {
		av, ok := out[k]
		if !ok {
			out[k] = bv
			continue
		}
		switch av := av.(type) {
		case map[string]any:
			bm, ok := bv.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: a map here, not there", k)
			}
			m, err := merge(av, bm)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = m
		case []any:
			bl, ok := bv.([]any)
			if !ok {
				return nil, fmt.Errorf("%s: a list here, not there", k)
			}
			out[k] = append(append([]any{}, av...), bl...)
		default:
			return nil, fmt.Errorf("%s is set twice", k)
		}
	}
	return out, nil
}

// writeCtlConfig writes ejabberdctl.cfg, which ejabberdctl sources as
// shell: the node's name, cookie and distribution port (no epmd, on
// loopback only), and no switch to the ejabberd user (the files are the
// test's). It also writes the inetrc the node resolves localhost with,
// since a minimal root may have no /etc/hosts.
func (s *Server) writeCtlConfig() error {
	cfg := "# written by ejabberdtest\n" +
		"ERLANG_NODE=" + shellQuote(s.node+"@localhost") + "\n" +
		"ERL_DIST_PORT=" + strconv.Itoa(s.distPort) + "\n" +
		"ERL_OPTIONS=" + shellQuote("-env ERL_CRASH_DUMP_BYTES 0 -setcookie "+s.cookie+
		" -kernel inet_dist_use_interface {127,0,0,1}") + "\n" +
		"EJABBERD_PID_PATH=" + shellQuote(s.pidPath()) + "\n" +
		"EXEC_CMD=as_current_user\n"
	if err := os.WriteFile(filepath.Join(s.Dir, "ejabberdctl.cfg"), []byte(cfg), 0o600); err != nil {
		return err
	}
	inetrc := "{host, {127,0,0,1}, [\"localhost\"]}.\n{lookup, [file, native]}.\n"
	return os.WriteFile(filepath.Join(s.Dir, "inetrc"), []byte(inetrc), 0o600)
}

// shellQuote quotes s for sh in single quotes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
