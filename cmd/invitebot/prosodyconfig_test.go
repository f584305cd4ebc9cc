package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
)

// TestProsodyConfigPassesProsodysCheck: the printed configuration, merged
// the way its comments say, passes `prosodyctl check config` of the
// installed Prosody.
func TestProsodyConfigPassesProsodysCheck(t *testing.T) {
	prosodyctl, err := exec.LookPath("prosodyctl")
	if err != nil {
		t.Fatal("prosodyctl not found: apt-get install prosody")
	}
	path := writeConfig(t, goodConfig)
	var out, errOut bytes.Buffer
	if code := run([]string{"prosody-config", "-config", path, "-with-secret"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{`VirtualHost "example.org"`, `admins = { "invites.example.org" }`,
		`Component "invites.example.org"`, `component_secret = "s3cr3t-value-never-printed"`, `component_ports = { 5347 }`} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %s:\n%s", want, got)
		}
	}

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	merged := "run_as_root = true\npidfile = \"" + dir + "/p.pid\"\ndata_path = \"" + dir + "\"\nlog = {}\n" +
		"certificates = \"" + dir + "/certs\"\n" +
		strings.Replace(got, "-- ... your modules, plus:", `"tls"; "saslauth"; "disco";`, 1)
	cfgFile := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfgFile, []byte(merged), 0o600); err != nil {
		t.Fatal(err)
	}
	check, err := exec.Command(prosodyctl, "--config", cfgFile, "check", "config").CombinedOutput()
	if err != nil {
		t.Fatalf("prosodyctl check config: %v\n%s\n--- config ---\n%s", err, check, merged)
	}

	// With mod_invitebot's lines uncommented, as the comments say, and
	// plugin_paths pointing at this repository's copy.
	moduleDir, err := prosodytest.ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	withModule := strings.NewReplacer(
		`-- plugin_paths = { "/usr/share/invitebot/prosody" }`, `plugin_paths = { "`+moduleDir+`" }`,
		`-- modules_enabled = { "invitebot" }`, `modules_enabled = { "invitebot" }`,
		`-- invitebot_component = `, `invitebot_component = `,
	).Replace(merged)
	if withModule == merged || strings.Count(withModule, "invitebot_component = ") != 1 || !strings.Contains(withModule, "\nplugin_paths") {
		t.Fatalf("the module's lines are not where the comments say:\n%s", got)
	}
	if err := os.WriteFile(cfgFile, []byte(withModule), 0o600); err != nil {
		t.Fatal(err)
	}
	check, err = exec.Command(prosodyctl, "--config", cfgFile, "check", "config").CombinedOutput()
	if err != nil {
		t.Fatalf("prosodyctl check config with mod_invitebot: %v\n%s\n--- config ---\n%s", err, check, withModule)
	}

	// Minting as an account: the role instead of the component in admins,
	// and still a configuration Prosody accepts.
	minterPath := writeConfig(t, strings.Replace(goodConfig, "  domain: example.org\n",
		"  domain: example.org\n  minter: invitebot@example.org\n  minter_password: m1nter-never-printed\n", 1))
	out.Reset()
	if code := run([]string{"prosody-config", "-config", minterPath, "-with-secret"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got = out.String()
	for _, want := range []string{"    " + strings.ReplaceAll(prosody.MinterRoleLua, "\n", "\n    "),
		"prosodyctl adduser invitebot@example.org", "prosodyctl shell user set_role invitebot@example.org invitebot:minter",
		`--   admins = { "invitebot@example.org" }`} {
		if !strings.Contains(got, want) {
			t.Errorf("minter output lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, `admins = { "invites.example.org" }`) || strings.Contains(got, "m1nter-never-printed") {
		t.Errorf("minter output grants the component admin or shows the password:\n%s", got)
	}
	withMinter := strings.Replace(merged[:strings.Index(merged, "-- Prosody configuration")]+got,
		"-- ... your modules, plus:", `"tls"; "saslauth"; "disco";`, 1)
	if err := os.WriteFile(cfgFile, []byte(withMinter), 0o600); err != nil {
		t.Fatal(err)
	}
	check, err = exec.Command(prosodyctl, "--config", cfgFile, "check", "config").CombinedOutput()
	if err != nil {
		t.Fatalf("prosodyctl check config (minter): %v\n%s\n--- config ---\n%s", err, check, withMinter)
	}

	// Without -with-secret the secret stays out.
	out.Reset()
	run([]string{"prosody-config", "-config", path}, &out, &errOut)
	if strings.Contains(out.String(), "s3cr3t-value-never-printed") {
		t.Error("the secret was printed without -with-secret")
	}
}
