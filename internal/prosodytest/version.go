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

// binaries returns the prosody and prosodyctl to run, from EnvPrefix or PATH.
func binaries() (prosody, prosodyctl string, err error) {
	if prefix := os.Getenv(EnvPrefix); prefix != "" {
		prosody = filepath.Join(prefix, "bin", "prosody")
		prosodyctl = filepath.Join(prefix, "bin", "prosodyctl")
		for _, p := range []string{prosody, prosodyctl} {
			if _, err := os.Stat(p); err != nil {
				return "", "", fmt.Errorf("%s=%s: %w", EnvPrefix, prefix, err)
			}
		}
		return prosody, prosodyctl, nil
	}
	prosody, err = exec.LookPath("prosody")
	if err != nil {
		return "", "", fmt.Errorf("prosody not found (apt-get install prosody, or set %s): %w", EnvPrefix, err)
	}
	prosodyctl, err = exec.LookPath("prosodyctl")
	if err != nil {
		return "", "", fmt.Errorf("prosodyctl not found (apt-get install prosody, or set %s): %w", EnvPrefix, err)
	}
	return prosody, prosodyctl, nil
}

// wantedVersion names the pinned version for messages written before the
// server has been asked for its own.
func wantedVersion() string {
	if v := os.Getenv(EnvVersion); v != "" {
		return " (want Prosody " + v + "*)"
	}
	return ""
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
		return fmt.Errorf("%s is Prosody %s from %s, but %s=%s", s.prosodyctl, s.Version, s.SourceDir, EnvVersion, want)
	}
	return nil
}

// tag prefixes every failure message of the harness, naming the Prosody
// version, so that a failure in a run against several versions says which
// one failed.
func (s *Server) tag() string {
	if s.Version == "" {
		return "prosodytest" + wantedVersion()
	}
	return "prosodytest (Prosody " + s.Version + ")"
}

// fatalf fails the test with a message naming the Prosody version.
func (s *Server) fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf(s.tag()+": "+format, args...)
}
