package prosodytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakePrefix makes a prefix with bin/prosody and bin/prosodyctl and the
// given extra files (name -> content).
func fakePrefix(t *testing.T, files map[string]string) string {
	t.Helper()
	prefix := t.TempDir()
	if err := os.MkdirAll(filepath.Join(prefix, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"prosody", "prosodyctl"} {
		if err := os.WriteFile(filepath.Join(prefix, "bin", bin), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(prefix, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return prefix
}

// Not parallel: t.Setenv changes the process environment.
func TestPrefixNamesItsDistroAndRoot(t *testing.T) {
	root := t.TempDir()
	prefix := fakePrefix(t, map[string]string{
		distroFile: "Debian 13, trixie-backports\n",
		rootFile:   root + "\n",
	})
	t.Setenv(EnvPrefix, prefix)
	in, err := installed()
	if err != nil {
		t.Fatal(err)
	}
	if in.distro != "Debian 13, trixie-backports" || in.root != root {
		t.Fatalf("installed() = distro %q, root %q; want the prefix's files", in.distro, in.root)
	}
	if in.prosodyctl != filepath.Join(prefix, "bin", "prosodyctl") {
		t.Fatalf("prosodyctl = %s, want the prefix's", in.prosodyctl)
	}
	s := &Server{Version: "13.0.8", Distro: in.distro, Root: in.root}
	if got, want := s.tag(), "prosodytest, Prosody 13.0.8 (Debian 13, trixie-backports)"; got != want {
		t.Errorf("tag() = %q, want %q", got, want)
	}
	if got, want := s.HostPath("/usr/lib/prosody"), root+"/usr/lib/prosody"; got != want {
		t.Errorf("HostPath = %q, want %q", got, want)
	}
}

// Not parallel: t.Setenv changes the process environment.
func TestPrefixWithABadRootFails(t *testing.T) {
	prefix := fakePrefix(t, map[string]string{rootFile: "/no/such/root"})
	t.Setenv(EnvPrefix, prefix)
	if _, err := installed(); err == nil || !strings.Contains(err.Error(), "/no/such/root") {
		t.Fatalf("installed() with a root that does not exist: %v, want an error naming it", err)
	}
}

// Not parallel: t.Setenv changes the process environment.
func TestPlainPrefixIsThisMachines(t *testing.T) {
	t.Setenv(EnvPrefix, fakePrefix(t, nil))
	in, err := installed()
	if err != nil {
		t.Fatal(err)
	}
	if in.root != "" || in.distro != hostDistro() {
		t.Fatalf("installed() = distro %q, root %q; want this machine's %q and no root", in.distro, in.root, hostDistro())
	}
}

func TestVisibleInRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := visibleInRoot("", dir); err != nil {
		t.Fatalf("without a root: %v", err)
	}
	// A root in which dir exists as another, empty directory: what a
	// root without the bind mount looks like.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	err := visibleInRoot(root, dir)
	if err == nil || !strings.Contains(err.Error(), "--mount "+root) {
		t.Fatalf("a directory not bind-mounted into the root: %v, want an error telling how to mount it", err)
	}
}
