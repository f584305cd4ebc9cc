package prosodytest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/internal/prosodytest"
	"mellium.im/xmpp/stanza"
)

// fatalRecorder is a testing.TB whose Fatal keeps the message and ends only
// the goroutine it runs in, for testing the harness's own failures.
type fatalRecorder struct {
	*testing.T
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

// fatalOf runs f in its own goroutine and returns the message it failed
// the test with, "" if it did not.
func fatalOf(t *testing.T, f func(testing.TB)) string {
	r := &fatalRecorder{T: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

func TestVersionIsTheInstalledOne(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	// The source tree's version file is a second witness besides
	// prosodyctl about, which the harness read.
	// SourceDir is as Prosody sees it; in a Debian root that is inside it.
	b, err := os.ReadFile(filepath.Join(srv.HostPath(srv.SourceDir), "prosody.version"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(b)); srv.Version != want {
		t.Fatalf("Version = %q, %s/prosody.version says %q", srv.Version, srv.SourceDir, want)
	}
	if want := os.Getenv(prosodytest.EnvVersion); !strings.HasPrefix(srv.Version, want) {
		t.Fatalf("Version = %q, pinned to %s=%s", srv.Version, prosodytest.EnvVersion, want)
	}
	// A prefix's Prosody runs from the prefix, or from the Debian root its
	// wrappers chroot into; never from this machine's own installation.
	within := os.Getenv(prosodytest.EnvPrefix)
	if srv.Root != "" {
		within = srv.Root
	}
	if within != "" && !strings.HasPrefix(srv.HostPath(srv.SourceDir), within+"/") {
		t.Fatalf("SourceDir = %s (%s here), outside %s", srv.SourceDir, srv.HostPath(srv.SourceDir), within)
	}
	if _, err := os.Stat("/etc/os-release"); err == nil && srv.Distro == "" {
		t.Errorf("Distro is empty: failures would not name the distribution %s comes from", srv.Name())
	}
}

func TestFailuresNameTheVersion(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	named := srv.Name()
	if !strings.HasPrefix(named, "Prosody "+srv.Version) || !strings.Contains(named, srv.Distro) {
		t.Fatalf("Name() = %q, want the version %s and the distribution %q", named, srv.Version, srv.Distro)
	}

	alice := srv.AddUser(t, "alice", srv.Domain, "pw")
	c := prosodytest.Login(t, srv, alice, "pw")
	ctx, cancel := context.WithTimeout(context.Background(), prosodytest.ReplyTimeout)
	defer cancel()
	if err := c.Send(ctx, alice, stanza.ChatMessage, "note to self"); err != nil {
		t.Fatal(err)
	}
	clientMsg := fatalOf(t, func(tb testing.TB) { c.NoMessage(tb, 2*time.Second) })

	srv.Kill(t)
	serverMsg := fatalOf(t, func(tb testing.TB) { srv.Kill(tb) })

	for what, msg := range map[string]string{"client": clientMsg, "server": serverMsg} {
		if !strings.Contains(msg, named) {
			t.Errorf("%s failure %q does not name %s", what, msg, named)
		}
	}
}

// Not parallel: t.Setenv changes the process environment.
func TestPinnedVersionMismatchFails(t *testing.T) {
	const pin = "0.0."
	t.Setenv(prosodytest.EnvVersion, pin)
	msg := fatalOf(t, func(tb testing.TB) { prosodytest.Start(tb) })
	if !strings.Contains(msg, prosodytest.EnvVersion+"="+pin) {
		t.Fatalf("Start with a pin no Prosody matches failed with %q, want it to name the pin", msg)
	}
}

// Not parallel: t.Setenv changes the process environment.
func TestPrefixWithoutProsodyFails(t *testing.T) {
	empty := t.TempDir()
	t.Setenv(prosodytest.EnvPrefix, empty)
	msg := fatalOf(t, func(tb testing.TB) { prosodytest.Start(tb) })
	if !strings.Contains(msg, prosodytest.EnvPrefix+"="+empty) {
		t.Fatalf("Start with an empty prefix failed with %q, want it to name the prefix", msg)
	}
}
