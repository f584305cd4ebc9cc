package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodConfig = `xmpp:
  component: invites.example.org
  server: 127.0.0.1:5347
  secret: s3cr3t-value-never-printed
  domain: example.org
admins:
  - Admin@Example.org
`

func TestCheckConfig(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		config     string
		wantCode   int
		wantOut    []string
		wantErr    []string
		notInOut   string
		skipConfig bool
	}{
		{
			name: "valid", args: []string{"check-config"}, config: goodConfig, wantCode: 0,
			wantOut:  []string{"component: invites.example.org", "admin@example.org", "redacted"},
			notInOut: "s3cr3t-value-never-printed",
		},
		{
			name: "unknown key", args: []string{"check-config"}, config: goodConfig + "stor:\n  path: x.db\n", wantCode: 1,
			wantErr: []string{`unknown key "stor"`},
		},
		{
			name: "bad component", args: []string{"check-config"}, config: strings.Replace(goodConfig, "invites.example.org", "bad@x@y", 1), wantCode: 1,
			wantErr: []string{"xmpp.component"},
		},
		{
			name: "missing file", args: []string{"check-config", "-config", "/nonexistent/config.yaml"}, wantCode: 1, skipConfig: true,
			wantErr: []string{"/nonexistent/config.yaml"},
		},
		{name: "stray argument", args: []string{"check-config", "extra"}, config: goodConfig, wantCode: 2, wantErr: []string{"usage"}},
		{name: "bad flag", args: []string{"-nope"}, config: goodConfig, wantCode: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !tc.skipConfig {
				args = append(args, "-config", writeConfig(t, tc.config))
			}
			var out, errOut bytes.Buffer
			code := run(args, &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tc.wantCode, errOut.String())
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, out.String())
				}
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(errOut.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
				}
			}
			if tc.notInOut != "" && strings.Contains(out.String()+errOut.String(), tc.notInOut) {
				t.Errorf("output contains %q", tc.notInOut)
			}
		})
	}
}

// TestBrokenStoreNamedOnce: a database that does not open stops the bot with
// one clear line naming the file once.
func TestBrokenStoreNamedOnce(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "broken.db")
	if err := os.WriteFile(db, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, goodConfig+"store:\n  path: "+db+"\n")
	var out, errOut bytes.Buffer
	if code := run([]string{"-config", path}, &out, &errOut); code != 1 {
		t.Fatalf("exit code %d, want 1; stderr:\n%s", code, errOut.String())
	}
	if n := strings.Count(errOut.String(), "open store "+db); n != 1 {
		t.Errorf("the file is named %d times:\n%s", n, errOut.String())
	}
}

// TestDefaultConfigPath: without -config, config.yaml in the working
// directory is read; where there is none, the packaged
// /etc/invitebot/config.yaml is, so `invitebot check-config` works on an
// installed system.
func TestDefaultConfigPath(t *testing.T) {
	etc := writeConfig(t, goodConfig)
	orig := systemConfigPath
	systemConfigPath = etc
	t.Cleanup(func() { systemConfigPath = orig })

	t.Chdir(t.TempDir())
	var out, errOut bytes.Buffer
	if code := run([]string{"check-config"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "invites.example.org") {
		t.Errorf("no ./config.yaml: exit %d, stderr %s", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"prosody-config"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "invites.example.org") {
		t.Errorf("prosody-config, no ./config.yaml: exit %d, stderr %s", code, errOut.String())
	}

	// One in the working directory wins.
	local := strings.Replace(goodConfig, "invites.example.org", "bot.example.org", 1)
	if err := os.WriteFile("config.yaml", []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"check-config"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "bot.example.org") {
		t.Errorf("./config.yaml: exit %d, stdout %s, stderr %s", code, out.String(), errOut.String())
	}

	// Neither: the error names both places.
	if err := os.Remove("config.yaml"); err != nil {
		t.Fatal(err)
	}
	systemConfigPath = filepath.Join(t.TempDir(), "absent.yaml")
	errOut.Reset()
	if code := run([]string{"check-config"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "config.yaml") ||
		!strings.Contains(errOut.String(), systemConfigPath) {
		t.Errorf("no config anywhere: exit %d, stderr %s", code, errOut.String())
	}
}
