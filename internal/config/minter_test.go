package config

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// testMinterPassword is distinctive so a leak is easy to spot.
const testMinterPassword = "m1nt3r-Pa55-plugh"

// minterYAML is validYAML minting through the account invitebot@example.org.
func minterYAML(t *testing.T, extra string) string {
	t.Helper()
	return replace(t, "  domain: example.org\n", "  domain: example.org\n  minter: InviteBot@Example.ORG\n"+extra)
}

func TestLoadMinter(t *testing.T) {
	dir := t.TempDir()
	passFile := writeFile(t, dir, "minter-password", testMinterPassword+"\n")
	tests := []struct {
		name string
		yaml string
		env  map[string]string
	}{
		{name: "password in file", yaml: minterYAML(t, "  minter_password: "+testMinterPassword+"\n")},
		{name: "password_file", yaml: minterYAML(t, "  minter_password_file: "+passFile+"\n")},
		{name: "password from env", yaml: minterYAML(t, ""),
			env: map[string]string{"INVITEBOT_XMPP_MINTER_PASSWORD": testMinterPassword}},
		{name: "password_file from env", yaml: minterYAML(t, ""),
			env: map[string]string{"INVITEBOT_XMPP_MINTER_PASSWORD_FILE": passFile}},
		{name: "everything from env", yaml: validYAML,
			env: map[string]string{"INVITEBOT_XMPP_MINTER": "invitebot@example.org", "INVITEBOT_XMPP_MINTER_PASSWORD": testMinterPassword}},
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
			if c.XMPP.Minter != "invitebot@example.org" || c.MinterJID().String() != "invitebot@example.org" {
				t.Errorf("minter = %q, MinterJID = %s; want the canonical invitebot@example.org", c.XMPP.Minter, c.MinterJID())
			}
			if c.XMPP.MinterPassword != testMinterPassword {
				t.Errorf("minter password not loaded")
			}
			if c.Minting() != MintingAccount {
				t.Errorf("Minting = %q, want %q", c.Minting(), MintingAccount)
			}
		})
	}
}

func TestLoadMinterErrors(t *testing.T) {
	dir := t.TempDir()
	passFile := writeFile(t, dir, "minter-password", testMinterPassword+"\n")
	emptyFile := writeFile(t, dir, "empty", "\n")
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		want    []string
		notWant []string
	}{
		{name: "no password", yaml: minterYAML(t, ""),
			want: []string{"xmpp.minter_password: missing for xmpp.minter invitebot@example.org (set xmpp.minter_password, xmpp.minter_password_file or INVITEBOT_XMPP_MINTER_PASSWORD)"}},
		{name: "password and file", yaml: minterYAML(t, "  minter_password: x\n  minter_password_file: "+passFile+"\n"),
			want: []string{"xmpp.minter_password_file: set together with xmpp.minter_password"}},
		{name: "password file missing", yaml: minterYAML(t, "  minter_password_file: "+filepath.Join(dir, "nope")+"\n"),
			want: []string{"xmpp.minter_password_file: open ", "no such file"}, notWant: []string{"xmpp.minter_password: missing"}},
		{name: "password file empty", yaml: minterYAML(t, ""), env: map[string]string{"INVITEBOT_XMPP_MINTER_PASSWORD_FILE": emptyFile},
			want: []string{"xmpp.minter_password_file: ", "is empty"}, notWant: []string{"xmpp.minter_password: missing"}},
		{name: "password without minter", yaml: replace(t, "  domain: example.org\n", "  domain: example.org\n  minter_password: x\n"),
			want: []string{"xmpp.minter_password: set without xmpp.minter"}},
		{name: "password file without minter", yaml: validYAML, env: map[string]string{"INVITEBOT_XMPP_MINTER_PASSWORD_FILE": passFile},
			want: []string{"xmpp.minter_password_file: set without xmpp.minter"}},
		{name: "minter on another domain", yaml: replace(t, "  domain: example.org\n", "  domain: example.org\n  minter: bot@elsewhere.net\n  minter_password: x\n"),
			want: []string{`xmpp.minter: "bot@elsewhere.net" must be an account of xmpp.domain example.org, such as invitebot@example.org`}},
		{name: "minter is a domain", yaml: replace(t, "  domain: example.org\n", "  domain: example.org\n  minter: example.org\n  minter_password: x\n"),
			want: []string{`xmpp.minter: "example.org" must be a bare account JID such as invitebot@example.org`}},
		{name: "minter with resource", yaml: replace(t, "  domain: example.org\n", "  domain: example.org\n  minter: bot@example.org/x\n  minter_password: x\n"),
			want: []string{`xmpp.minter: "bot@example.org/x" must be a bare account JID`}},
		{name: "minter malformed", yaml: replace(t, "  domain: example.org\n", "  domain: example.org\n  minter: \"a@b@c\"\n  minter_password: x\n"),
			want: []string{`xmpp.minter: "a@b@c" is not a valid JID`}},
		{name: "unknown minter key", yaml: minterYAML(t, "  minter_pasword: x\n"),
			want: []string{`unknown key "xmpp.minter_pasword"`}},
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
			if strings.Contains(msg, testMinterPassword) {
				t.Errorf("error leaks the minter password: %q", msg)
			}
		})
	}
}

// TestMintingSummary: check-config's output and the log say which way
// invites are minted, and never show the minter's password.
func TestMintingSummary(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		name, yaml string
		minting    string
		want       []string
	}{
		{"component", validYAML, MintingComponent, []string{
			"# invites are minted as the component invites.example.org, which must be in the admins of VirtualHost \"example.org\"",
			"full prosody:admin", "set xmpp.minter"}},
		{"account", minterYAML(t, "  minter_password: "+testMinterPassword+"\n"), MintingAccount, []string{
			"# invites are minted as the account invitebot@example.org over c2s 127.0.0.1:5222 (xmpp.minter); the component needs no admin rights",
			"invitebot:minter role", "Prosody 0.12: list it in the VirtualHost's admins",
			"minter: invitebot@example.org", "minter_password: <redacted, 17 bytes>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(writeFile(t, t.TempDir(), "config.yaml", tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if c.Minting() != tc.minting {
				t.Errorf("Minting = %q, want %q", c.Minting(), tc.minting)
			}
			var out bytes.Buffer
			if err := c.WriteYAML(&out); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("WriteYAML lacks %q:\n%s", w, out.String())
				}
			}
			var logOut bytes.Buffer
			slog.New(slog.NewTextHandler(&logOut, nil)).Info("loaded", "config", c)
			for name, s := range map[string]string{"WriteYAML": out.String(), "slog": logOut.String()} {
				if strings.Contains(s, testMinterPassword) {
					t.Errorf("%s leaks the minter password:\n%s", name, s)
				}
			}
			// The output, comments and all, still loads as the same
			// configuration (with the password supplied again).
			t.Setenv("INVITEBOT_XMPP_MINTER_PASSWORD", "")
			if tc.minting == MintingAccount {
				t.Setenv("INVITEBOT_XMPP_MINTER_PASSWORD", testMinterPassword)
			}
			again := strings.ReplaceAll(out.String(), "minter_password: <redacted, 17 bytes>", `minter_password: ""`)
			again = strings.ReplaceAll(again, "secret: <redacted, 21 bytes>", "secret: "+testSecret)
			c2, err := Load(writeFile(t, t.TempDir(), "config.yaml", again))
			if err != nil {
				t.Fatalf("reloading WriteYAML output: %v\n%s", err, again)
			}
			if c2.XMPP.Minter != c.XMPP.Minter || c2.Minting() != tc.minting {
				t.Errorf("round trip: minter %q (%s), want %q (%s)", c2.XMPP.Minter, c2.Minting(), c.XMPP.Minter, tc.minting)
			}
		})
	}
}

// TestValidateMinterInCode covers a Config built in code rather than by
// Load, where minter_password_file has not been read.
func TestValidateMinterInCode(t *testing.T) {
	c := Defaults()
	c.XMPP.Component, c.XMPP.Domain, c.XMPP.Secret = "invites.example.org", "example.org", "x"
	c.Admins = []string{"admin@example.org"}
	c.XMPP.Minter, c.XMPP.MinterPasswordFile = "invitebot@example.org", "/f"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `xmpp.minter_password_file: "/f" has not been read`) {
		t.Errorf("Validate = %v, want the unread password file named", err)
	}
	c.XMPP.MinterPasswordFile, c.XMPP.MinterPassword = "", "pw"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if c.Minting() != MintingAccount {
		t.Errorf("Minting = %q", c.Minting())
	}
}
