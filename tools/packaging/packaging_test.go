package packaging

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2/files"

	"durare.org/invitebot/internal/config"
)

// repoRoot is where config.yaml and packaging/ are, seen from this package.
const repoRoot = "../.."

func TestDeriveConfigLoads(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(repoRoot, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	derived, err := DeriveConfig(example)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(derived, []byte("\n  secret_file: "+SecretPath+"\n")) {
		t.Errorf("derived config does not read the secret from %s", SecretPath)
	}

	// As the unit runs it: the secret file named by the environment
	// (LoadCredential=), everything else from the shipped file.
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	secret := filepath.Join(dir, "component-secret")
	if err := os.WriteFile(cfgPath, derived, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("0123abcd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(config.EnvVar("xmpp.secret_file"), secret)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("shipped config does not load: %v", err)
	}
	if cfg.Store.Path != "/var/lib/invitebot/invitebot.db" {
		t.Errorf("store.path = %q, want it under /var/lib/invitebot", cfg.Store.Path)
	}
	if cfg.XMPP.Secret != "0123abcd" {
		t.Errorf("secret not read from the credential file")
	}
}

func TestDeriveConfigNeedsItsLines(t *testing.T) {
	example := []byte("xmpp:\n  secret_file: \"\"\nstore:\n  path: other.db\n")
	if _, err := DeriveConfig(example); err == nil || !strings.Contains(err.Error(), "path: /var/lib/invitebot/invitebot.db") {
		t.Errorf("DeriveConfig with the store path moved: err = %v, want one naming the line", err)
	}
}

func TestDebVersion(t *testing.T) {
	at := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	const commit = "55e88bdc1cd0806bd93c0d41efda0f2b0e3836ea"
	tests := []struct {
		name string
		src  Source
		want string
	}{
		{"no tag", Source{Commit: commit, Time: at}, "0~git20261126093000.55e88bd"},
		{"no tag, dirty", Source{Commit: commit, Time: at, Dirty: true}, "0~git20261126093000.55e88bd.dirty"},
		{"on a tag", Source{Commit: commit, Time: at, Describe: "v1.2.0-0-g55e88bd"}, "1.2.0"},
		{"after a tag", Source{Commit: commit, Time: at, Describe: "v1.2.0-3-g55e88bd"}, "1.2.0+git3.55e88bd"},
		{"unusable tag", Source{Commit: commit, Time: at, Describe: "vnext-3-g55e88bd"}, "0~git20261126093000.55e88bd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DebVersion(tc.src); got != tc.want {
				t.Errorf("DebVersion = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDebVersionsIncrease checks with dpkg's own comparison that later
// builds are upgrades of earlier ones.
func TestDebVersionsIncrease(t *testing.T) {
	order := []string{
		"0~git20261126093000.55e88bd",
		"0~git20261126093000.55e88bd.dirty",
		"0~git20261127080000.0a1b2c3",
		"0.1.0",
		"0.1.0+git3.abcdef0",
		"0.1.0+git10.0123456",
		"0.1.1",
	}
	for i := 1; i < len(order); i++ {
		cmd := exec.Command("dpkg", "--compare-versions", order[i], "gt", order[i-1])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("dpkg: %s is not newer than %s: %v %s", order[i], order[i-1], err, out)
		}
	}
}

func TestGitSource(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2026-11-26T09:30:00Z", "GIT_AUTHOR_DATE=2026-11-26T09:30:00Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "f")
	git("commit", "-q", "-m", "one")

	src, err := GitSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.Commit) != 40 || src.Describe != "" || src.Dirty {
		t.Errorf("untagged clean checkout: %+v", src)
	}
	if want := "0~git20261126093000." + src.Commit[:7]; DebVersion(src) != want {
		t.Errorf("version %q, want %q", DebVersion(src), want)
	}

	git("tag", "v0.2.0")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err = GitSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := DebVersion(src); got != "0.2.0.dirty" {
		t.Errorf("tagged, modified checkout: version %q, want 0.2.0.dirty", got)
	}
}

func TestInfoAndBuild(t *testing.T) {
	work := t.TempDir()
	bin := filepath.Join(work, "invitebot-binary")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{Root: repoRoot, Binary: bin, Version: "1.2.3", Arch: "amd64",
		MTime: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Work: work}
	info, err := Info(o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		typ  string
		mode os.FileMode
	}{
		BinaryPath:                            {files.TypeFile, 0o755},
		UnitPath:                              {files.TypeFile, 0o644},
		ConfigDir:                             {files.TypeDir, 0o755},
		ConfigPath:                            {files.TypeConfig, 0o640},
		ShareDir + "/prosody-example.cfg.lua": {files.TypeFile, 0o644},
		DocDir + "/README.md":                 {files.TypeFile, 0o644},
		DocDir + "/docs/commands.md":          {files.TypeFile, 0o644},
		DocDir + "/changelog.gz":              {files.TypeFile, 0o644},
		DocDir + "/copyright":                 {files.TypeFile, 0o644},
		ManPath:                               {files.TypeFile, 0o644},
		LintianOverrides:                      {files.TypeFile, 0o644},
	}
	for _, c := range info.Contents {
		w, ok := want[c.Destination]
		if !ok {
			if !strings.HasPrefix(c.Destination, ShareDir+"/prosody/") && !strings.HasPrefix(c.Destination, DocDir+"/docs/") {
				t.Errorf("unexpected content %s", c.Destination)
			}
			continue
		}
		delete(want, c.Destination)
		if c.Type != w.typ || c.FileInfo.Mode != w.mode || c.FileInfo.Owner != "root" || c.FileInfo.Group != "root" {
			t.Errorf("%s: type %q mode %o owner %s:%s, want %q %o root:root",
				c.Destination, c.Type, c.FileInfo.Mode, c.FileInfo.Owner, c.FileInfo.Group, w.typ, w.mode)
		}
	}
	for dst := range want {
		t.Errorf("package lacks %s", dst)
	}

	path, err := Build(o, filepath.Join(work, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "invitebot_1.2.3_amd64.deb" {
		t.Errorf("package file %s", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("!<arch>\ndebian-binary")) {
		t.Errorf("%s is not a deb archive", path)
	}
}

// TestPackagingFilesAgree checks that the unit and the maintainer scripts
// name the paths this package installs.
func TestPackagingFilesAgree(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot, "packaging", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	unit := read("invitebot.service")
	for _, want := range []string{
		"ExecStart=" + BinaryPath + " -config " + ConfigPath + "\n",
		"LoadCredential=component-secret:" + SecretPath + "\n",
		"Environment=INVITEBOT_XMPP_SECRET_FILE=%d/component-secret\n",
		"StateDirectory=invitebot\n",
		"User=invitebot\n",
		"ExecReload=/bin/kill -HUP $MAINPID\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	postinst, postrm := read("postinst"), read("postrm")
	for _, p := range []string{ConfigPath, SecretPath, "/var/lib/invitebot"} {
		if !strings.Contains(postinst, p) {
			t.Errorf("postinst does not name %s", p)
		}
		if !strings.Contains(postrm, p) {
			t.Errorf("postrm does not name %s", p)
		}
	}
}

// TestManPage: the man page ships gzipped, dated, with the version, and the
// same inputs give the same bytes.
func TestManPage(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "invitebot.1"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	gz, err := ManPage(src, "1.2.3", at)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := ManPage(src, "1.2.3", at)
	if !bytes.Equal(gz, again) {
		t.Error("the man page is not reproducible")
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`.TH INVITEBOT 1 "2026-11-26" "invitebot 1.2.3"`, "/etc/invitebot/config.yaml", ".SH EXIT STATUS", "check\\-config"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	if _, err := ManPage([]byte("no header"), "1", at); err == nil {
		t.Error("a source without its .TH line was accepted")
	}
}
