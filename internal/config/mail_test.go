package config

import (
	"strings"
	"testing"
)

// TestMailKeys: the mail section, requests.verify and auto_approve, and
// http.recovery depend on one another; each mistake names its key, and
// the password comes from its file without showing in the redacted copy.
func TestMailKeys(t *testing.T) {
	web := "http:\n  listen: 127.0.0.1:8080\n  public_url: https://invites.example.org\n  requests: true\n"
	mail := "mail:\n  smtp: mail.example.org:587\n  from: invites@example.org\n  username: invites\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"verify without mail", web + "requests:\n  verify: email\n", "requests.verify: email needs mail.smtp"},
		{"verify without the request page", "requests:\n  verify: email\n" + mail, "requests.verify: email needs the request page"},
		{"unknown verify", web + mail + "requests:\n  verify: sms\n", `requests.verify: "sms"`},
		{"auto-approve without verify", web + mail + "requests:\n  auto_approve: 5\n", "requests.auto_approve: needs requests.verify: email"},
		{"negative auto-approve", web + mail + "requests:\n  verify: email\n  auto_approve: -1\n", "requests.auto_approve: -1"},
		{"recovery without mail", strings.Replace(web, "requests: true", "recovery: true", 1), "http.recovery: needs mail.smtp"},
		{"from with a name", web + strings.Replace(mail, "from: invites@example.org", "from: Bot <invites@example.org>", 1), "mail.from:"},
		{"bad smtp", web + strings.Replace(mail, "mail.example.org:587", "mail.example.org", 1), "mail.smtp:"},
		{"zero limit", web + mail + "  per_domain_per_day: 0\n", "mail.per_domain_per_day: 0"},
		{"all well", web + mail + "requests:\n  verify: email\n  auto_approve: 10\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			_, err := Load(writeFile(t, t.TempDir(), "config.yaml", validYAML+tt.yaml))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Load: %v, want an error containing %q", err, tt.want)
			}
		})
	}

	clearEnv(t)
	dir := t.TempDir()
	pw := writeFile(t, dir, "smtp-password", "s3cret-smtp\n")
	c, err := Load(writeFile(t, dir, "config.yaml", validYAML+web+mail+"  password_file: "+pw+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mail.Password != "s3cret-smtp" {
		t.Errorf("password from file = %q", c.Mail.Password)
	}
	if r := c.Redacted(); strings.Contains(r.Mail.Password, "s3cret") {
		t.Errorf("the redacted copy shows the password: %q", r.Mail.Password)
	}
}
