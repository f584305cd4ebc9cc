package ejabberdtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Environment variables that choose the ejabberd under test.
const (
	// EnvPrefix names a directory whose bin holds ejabberdctl, to test an
	// ejabberd other than the one on PATH (scripts/debian13-root makes
	// DIR/host/ejabberd, a wrapper into its Debian 13 root). Unset, the
	// ejabberdctl on PATH is used.
	EnvPrefix = "INVITEBOT_EJABBERD_PREFIX"
	// EnvVersion, when set, is the version the ejabberd under test must
	// report, as a prefix such as "26.": a machine left on another
	// version fails instead of testing that one.
	EnvVersion = "INVITEBOT_EJABBERD_VERSION"
)

// ejabberdctl returns the ejabberdctl to run, from EnvPrefix or PATH.
func ejabberdctl() (string, error) {
	if prefix := os.Getenv(EnvPrefix); prefix != "" {
		p := filepath.Join(prefix, "bin", "ejabberdctl")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvPrefix, prefix, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("ejabberdctl")
	if err != nil {
		return "", fmt.Errorf("ejabberdctl not found (apt-get install ejabberd from trixie-backports, or set %s, e.g. to DIR/host/ejabberd of scripts/debian13-root): %w", EnvPrefix, err)
	}
	return p, nil
}

// wantedVersion names the pinned version for messages written before the
// server said its own.
func wantedVersion() string {
	if v := os.Getenv(EnvVersion); v != "" {
		return " (want ejabberd " + v + "*)"
	}
	return ""
}

// checkVersion enforces EnvVersion on the version the started server
// logged.
func (s *Server) checkVersion() error {
	if want := os.Getenv(EnvVersion); want != "" && !strings.HasPrefix(s.Version, want) {
		return fmt.Errorf("%s runs ejabberd %s, but %s=%s", s.ctl, s.Version, EnvVersion, want)
	}
	return nil
}

// tag prefixes every failure message of the harness, naming the ejabberd
// version, so that a failure in a run against several servers says which
// one failed.
func (s *Server) tag() string {
	if s.Version == "" {
		return "ejabberdtest" + wantedVersion()
	}
	return "ejabberdtest (ejabberd " + s.Version + ")"
}

// fatalf fails the test with a message naming the ejabberd version.
func (s *Server) fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf(s.tag()+": "+format, args...)
}
