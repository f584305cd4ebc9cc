package main

import (
	"bytes"
	"strings"
	"testing"

	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
)

// TestProsodyConfigPassesProsodysCheck: the printed configuration, saved
// in conf.d beside Debian's stock prosody.cfg.lua as its comments say,
// passes `prosodyctl check config` of the Prosody under test: as printed,
// with mod_invitebot's lines uncommented, and for a minter account.
// TestProsodyConfigInDebiansConfD starts Prosody with it.
func TestProsodyConfigPassesProsodysCheck(t *testing.T) {
	prosodyctl := prosodyctlUnderTest(t)
	stock := debianStockConfig(t)
	path := writeConfig(t, goodConfig)
	var out, errOut bytes.Buffer
	if code := run([]string{"prosody-config", "-config", path, "-with-secret"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{`VirtualHost "example.org"`, `admins = { "invites.example.org" }`,
		`Component "invites.example.org"`, `component_secret = "s3cr3t-value-never-printed"`, `component_ports = { 5347 }`,
		`"invites_register";`, "allow_registration = false", "registration_invite_only = true"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %s:\n%s", want, got)
		}
	}
	// In a conf.d file a global list replaces the one prosody.cfg.lua
	// set: the snippet sets none (plugin_paths only when uncommented).
	global := got[:strings.Index(got, "\nVirtualHost ")]
	for _, line := range strings.Split(global, "\n") {
		if strings.HasPrefix(line, "modules_enabled") || strings.HasPrefix(line, "plugin_paths") || strings.HasPrefix(line, "admins") {
			t.Errorf("global section sets a list that would replace Debian's: %s", line)
		}
	}

	dir := t.TempDir()
	cfg := layDebianConfig(t, dir, stock, checkEnv(dir), got)
	checkConfig(t, prosodyctl, cfg, "as printed")

	// With mod_invitebot's lines uncommented, as the comments say, and
	// plugin_paths pointing at this repository's copy.
	moduleDir, err := prosodytest.ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	layDebianConfig(t, dir, stock, checkEnv(dir), enableModule(t, got, moduleDir))
	checkConfig(t, prosodyctl, cfg, "with mod_invitebot")

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
		`--   admins = { "invitebot@example.org" }`, `-- invitebot_minter = "invitebot@example.org"`} {
		if !strings.Contains(got, want) {
			t.Errorf("minter output lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, `admins = { "invites.example.org" }`) || strings.Contains(got, "m1nter-never-printed") {
		t.Errorf("minter output grants the component admin or shows the password:\n%s", got)
	}
	layDebianConfig(t, dir, stock, checkEnv(dir), got)
	checkConfig(t, prosodyctl, cfg, "minter")
	layDebianConfig(t, dir, stock, checkEnv(dir), enableModule(t, got, moduleDir))
	checkConfig(t, prosodyctl, cfg, "minter with mod_invitebot")

	// Without -with-secret the secret stays out.
	out.Reset()
	run([]string{"prosody-config", "-config", path}, &out, &errOut)
	if strings.Contains(out.String(), "s3cr3t-value-never-printed") {
		t.Error("the secret was printed without -with-secret")
	}
}
