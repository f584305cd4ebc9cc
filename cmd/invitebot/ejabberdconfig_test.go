package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestEjabberdConfig: ejabberd-config prints the fragment the ejabberd
// tests run with (homeserver/ejabberd.Fragment) for this configuration,
// keeps the secret out unless asked, and refuses a configuration without
// a minter account, which ejabberd needs to mint at all.
func TestEjabberdConfig(t *testing.T) {
	minter := writeConfig(t, strings.Replace(goodConfig, "  domain: example.org\n",
		"  domain: example.org\n  minter: invitebot@example.org\n  minter_password: m1nter-never-printed\n", 1))
	var out, errOut bytes.Buffer
	if code := run([]string{"ejabberd-config", "-config", minter}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{"ejabberdctl register invitebot example.org", "module: ejabberd_service",
		`"invites.example.org":`, "port: 5347", `user: "invitebot@example.org"`, `"example.org":`,
		"- allow: invitebot_minter", "registration_timeout: infinity", "- delete_invite_by_token",
		"access_create_account: invitebot_create_account", "c2s:\n        deny: blocked\n        allow: all"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "s3cr3t-value-never-printed") || strings.Contains(got, "m1nter-never-printed") {
		t.Errorf("a secret in the output without -with-secret:\n%s", got)
	}
	out.Reset()
	if code := run([]string{"ejabberd-config", "-config", minter, "-with-secret"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), `password: "s3cr3t-value-never-printed"`) {
		t.Errorf("-with-secret: exit %d, output:\n%s", code, out.String())
	}

	out.Reset()
	errOut.Reset()
	if code := run([]string{"ejabberd-config", "-config", writeConfig(t, goodConfig)}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "set xmpp.minter") || out.Len() != 0 {
		t.Errorf("without a minter: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}
