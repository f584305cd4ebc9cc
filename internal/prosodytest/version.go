package prosodytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Environment variables that choose the Prosody under test. CI runs the
// Prosody-dependent packages once per supported Prosody version with them.
const (
	// EnvPrefix names an installation prefix whose bin directory holds
	// prosody and prosodyctl, to test a Prosody other than the one on PATH
	// (scripts/unpack-prosody puts Prosody 13 next to Debian's 0.12 this
	// way). Unset, the binaries on PATH are used.
	EnvPrefix = "INVITEBOT_PROSODY_PREFIX"
	// EnvVersion, when set, is the version the Prosody under test must
	// report, as a prefix such as "13." or "0.12.". CI pins every pass with
	// it, so that a machine left on another version fails instead of testing
	// that version twice.
	EnvVersion = "INVITEBOT_PROSODY_VERSION"
)

// Files an installation prefix may hold beside bin/ to say more about the
// Prosody in it. scripts/debian13-root and scripts/unpack-prosody write
// them.
const (
	// distroFile names the distribution and suite the Prosody comes from,
	// e.g. "Debian 13, trixie-backports", so that failures can say so.
	distroFile = "distro"
	// rootFile names the directory the prefix's programs chroot into (the
	// wrappers scripts/debian13-root writes): the paths Prosody reports are
	// inside it, and the paths handed to it must be visible there.
	rootFile = "root"
)

// installation is the Prosody a test runs: its programs and where it comes
// from.
type installation struct {
	prosody, prosodyctl string
	root                string // the directory the programs run chrooted in; "" for this machine's own files
	distro              string // e.g. "Debian 13, trixie-backports"; "" when unknown
}

// installed returns the Prosody to run, from EnvPrefix or PATH.
func installed() (installation, error) {
	if prefix := os.Getenv(EnvPrefix); prefix != "" {
		return prefixInstallation(prefix)
	}
	var in installation
	var err error
	if in.prosody, err = exec.LookPath("prosody"); err != nil {
		return in, fmt.Errorf("prosody not found (apt-get install prosody, or set %s): %w", EnvPrefix, err)
	}
	if in.prosodyctl, err = exec.LookPath("prosodyctl"); err != nil {
		return in, fmt.Errorf("prosodyctl not found (apt-get install prosody, or set %s): %w", EnvPrefix, err)
	}
	in.distro = hostDistro()
	return in, nil
}

// prefixInstallation reads the installation under an EnvPrefix directory.
func prefixInstallation(prefix string) (installation, error) {
	in := installation{
		prosody:    filepath.Join(prefix, "bin", "prosody"),
		prosodyctl: filepath.Join(prefix, "bin", "prosodyctl"),
	}
	for _, p := range []string{in.prosody, in.prosodyctl} {
		if _, err := os.Stat(p); err != nil {
			return in, fmt.Errorf("%s=%s: %w", EnvPrefix, prefix, err)
		}
	}
	in.distro = firstLine(filepath.Join(prefix, distroFile))
	in.root = firstLine(filepath.Join(prefix, rootFile))
	if in.root != "" {
		if fi, err := os.Stat(in.root); err != nil || !fi.IsDir() || !filepath.IsAbs(in.root) {
			return in, fmt.Errorf("%s=%s: %s names %q, not a directory", EnvPrefix, prefix, rootFile, in.root)
		}
	}
	if in.distro == "" && in.root == "" {
		// A prefix that does not say (unpacked by hand) uses this
		// machine's libraries, so its distribution is this machine's.
		in.distro = hostDistro()
	}
	return in, nil
}

// hostDistro names this machine's distribution from /etc/os-release, e.g.
// "Debian 12, bookworm", or "" if it cannot.
func hostDistro() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	f := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			f[k] = strings.Trim(v, `"'`)
		}
	}
	name, _, _ := strings.Cut(f["NAME"], " ") // "Debian GNU/Linux" -> "Debian"
	switch {
	case name == "":
		return ""
	case f["VERSION_CODENAME"] != "":
		return strings.TrimSpace(name + " " + f["VERSION_ID"] + ", " + f["VERSION_CODENAME"])
	default:
		return strings.TrimSpace(name + " " + f["VERSION_ID"])
	}
}

// firstLine returns the first line of the file at path, trimmed, or "" if
// there is none.
func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

// visibleInRoot fails unless path (a file or directory the harness hands
// Prosody) is the same one inside root, where Prosody runs: the wrappers
// reach this machine's files only through bind mounts.
func visibleInRoot(root, path string) error {
	if root == "" {
		return nil
	}
	outside, err := os.Stat(path)
	if err != nil {
		return err
	}
	inside, err := os.Stat(filepath.Join(root, path))
	if err != nil || !os.SameFile(outside, inside) {
		return fmt.Errorf("%s is not visible inside the Debian root %s, where Prosody runs: "+
			"bind-mount it (scripts/debian13-root --mount %s mounts /tmp and the repository; a TMPDIR elsewhere is not)",
			path, root, root)
	}
	return nil
}

// wantedVersion names the pinned version and the installation's
// distribution for messages written before the server has been asked for
// its own version.
func wantedVersion(distro string) string {
	want := "Prosody"
	if v := os.Getenv(EnvVersion); v != "" {
		want = "want Prosody " + v + "*"
	}
	if distro != "" {
		want += " (" + distro + ")"
	}
	if want == "Prosody" {
		return ""
	}
	return ", " + want
}

// Lines of "prosodyctl about": "Prosody 13.0.1" and "Source directory: DIR".
var (
	aboutVersionRE = regexp.MustCompile(`(?m)^Prosody (\S+)\s*$`)
	aboutSourceRE  = regexp.MustCompile(`(?m)^Source directory:\s*(\S+)`)
)

// identity is what prosodyctl about says about one installation.
type identity struct {
	version string // e.g. "13.0.1"
	source  string // the Lua source directory it runs from
	err     error
}

// identities caches identity by prosodyctl path: the installation does not
// change while a test binary runs, and every Start asking again would cost a
// Lua start-up.
var identities struct {
	mu sync.Mutex
	m  map[string]*identity
}

// identify sets s.Version and s.SourceDir from prosodyctl about (run with
// s's configuration, because the installation's default one may not load)
// and enforces EnvVersion.
func (s *Server) identify() error {
	identities.mu.Lock()
	id, ok := identities.m[s.prosodyctl]
	if !ok {
		id = new(identity)
		out, err := s.ctl("about")
		switch m := aboutVersionRE.FindStringSubmatch(out); {
		case err != nil:
			id.err = fmt.Errorf("identify %s: %w", s.prosodyctl, err)
		case m == nil:
			id.err = fmt.Errorf("identify %s: no version in prosodyctl about output %q", s.prosodyctl, out)
		default:
			id.version = m[1]
			if m := aboutSourceRE.FindStringSubmatch(out); m != nil {
				id.source = m[1]
			}
		}
		if identities.m == nil {
			identities.m = make(map[string]*identity)
		}
		identities.m[s.prosodyctl] = id
	}
	identities.mu.Unlock()
	if id.err != nil {
		return id.err
	}
	s.Version, s.SourceDir = id.version, id.source
	if want := os.Getenv(EnvVersion); want != "" && !strings.HasPrefix(s.Version, want) {
		return fmt.Errorf("%s is %s from %s, but %s=%s", s.prosodyctl, s.Name(), s.SourceDir, EnvVersion, want)
	}
	return nil
}

// Name names the server under test for messages: its version and, when
// known, the distribution and suite it comes from, e.g. "Prosody 13.0.8
// (Debian 13, trixie-backports)".
func (s *Server) Name() string {
	if s.Distro == "" {
		return "Prosody " + s.Version
	}
	return "Prosody " + s.Version + " (" + s.Distro + ")"
}

// HostPath returns where a path Prosody reports (such as SourceDir) is on
// this machine: the same path, or under Root for a Prosody in a Debian root.
func (s *Server) HostPath(path string) string {
	if s.Root == "" {
		return path
	}
	return filepath.Join(s.Root, path)
}

// tag prefixes every failure message of the harness, naming the Prosody
// version and distribution, so that a failure in a run against several
// says which one failed.
func (s *Server) tag() string {
	if s.Version == "" {
		return "prosodytest" + wantedVersion(s.Distro)
	}
	return "prosodytest, " + s.Name()
}

// fatalf fails the test with a message naming the Prosody version.
func (s *Server) fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf(s.tag()+": "+format, args...)
}
