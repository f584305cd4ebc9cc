package ejabberdtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/testserver"
)

// testTimeout bounds one exchange with the server in these tests.
const testTimeout = 30 * time.Second

// TestStartAddUserRestart starts a server, creates an account with
// ejabberdctl, logs in as it over c2s with STARTTLS, and does so again
// after a restart: the spool survives, the ports stay.
func TestStartAddUserRestart(t *testing.T) {
	s := Start(t)
	if s.Version == "" {
		t.Fatalf("%s: no version learnt", s.tag())
	}
	alice := s.AddUser(t, "alice", s.Domain, "alice-secret")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := ibr.BoundJID(ctx, s.IBRConfig(), alice, "alice-secret"); err != nil {
		t.Fatalf("%s: log in as %s: %v", s.tag(), alice, err)
	}
	if _, err := ibr.BoundJID(ctx, s.IBRConfig(), alice, "wrong"); err == nil {
		t.Fatalf("%s: logged in as %s with a wrong password", s.tag(), alice)
	}
	c2s := s.C2SAddr
	s.Restart(t)
	if s.C2SAddr != c2s {
		t.Fatalf("%s: c2s moved from %s to %s", s.tag(), c2s, s.C2SAddr)
	}
	if _, err := ibr.BoundJID(ctx, s.IBRConfig(), alice, "alice-secret"); err != nil {
		t.Fatalf("%s: after restart, log in as %s: %v", s.tag(), alice, err)
	}
	if _, err := ibr.BoundJID(ctx, s.IBRConfig(), s.Minter, s.MinterPassword); err != nil {
		t.Fatalf("%s: log in as the minter %s: %v", s.tag(), s.Minter, err)
	}
}

// TestConfigHoldsFragment checks that the configuration the server runs
// is the operators' fragment merged in: the minter's rights and the
// registration settings are there.
func TestConfigHoldsFragment(t *testing.T) {
	s := Start(t)
	b := testserver.ReadFrom(s.ConfigPath, 0)
	for _, want := range []string{"invitebot_minter", "registration_timeout: infinity", "access_create_account: invitebot_create_account", "generate_reset_token", "mod_invites"} {
		if !strings.Contains(b, want) {
			t.Errorf("%s: ejabberd.yml lacks %q:\n%s", s.tag(), want, b)
		}
	}
}

// TestMissingEjabberdFails checks that a missing ejabberdctl is a clear
// error naming the way to fix it, not a skip.
func TestMissingEjabberdFails(t *testing.T) {
	t.Setenv(EnvPrefix, t.TempDir())
	if _, err := ejabberdctl(); err == nil || !strings.Contains(err.Error(), EnvPrefix) {
		t.Errorf("empty prefix: got %v, want an error naming %s", err, EnvPrefix)
	}
	t.Setenv(EnvPrefix, "")
	t.Setenv("PATH", t.TempDir())
	if _, err := ejabberdctl(); err == nil || !strings.Contains(err.Error(), "ejabberdctl not found") {
		t.Errorf("nothing on PATH: got %v, want ejabberdctl not found", err)
	}
}

// TestVersionPin checks that a server of another version than
// INVITEBOT_EJABBERD_VERSION pins fails the start, naming both.
func TestVersionPin(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ejabberd")
	}
	ctl, err := ejabberdctl()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvVersion, "0.0.")
	s, err := prepare(t.TempDir(), ctl, options{secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.launch(t.Logf)
	if stopErr := s.stop(); stopErr != nil {
		t.Errorf("stop: %v", stopErr)
	}
	if err == nil || !strings.Contains(err.Error(), EnvVersion+"=0.0.") {
		t.Fatalf("start against a pinned other version: got %v", err)
	}
}

// TestLifelineKillsServer checks the protection against orphans: when
// the lifeline closes, as it does when the test binary dies, the whole
// ejabberd goes away, the Erlang VM included (its listener stops).
func TestLifelineKillsServer(t *testing.T) {
	s := Start(t)
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	p.lifeline.Close()
	select {
	case <-p.gone:
	case <-time.After(stopTimeout):
		t.Fatalf("%s: ejabberd still running %v after its lifeline closed", s.tag(), stopTimeout)
	}
	_ = p.cmd.Wait()
	if testserver.Accepts("tcp", s.C2SAddr) {
		t.Fatalf("%s: something still accepts on %s", s.tag(), s.C2SAddr)
	}
}

func TestMerge(t *testing.T) {
	a := map[string]any{"listen": []any{1}, "modules": map[string]any{"m1": 1}, "x": 1}
	b := map[string]any{"listen": []any{2}, "modules": map[string]any{"m2": 2}, "y": 2}
	got, err := merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if l := got["listen"].([]any); len(l) != 2 || len(got["modules"].(map[string]any)) != 2 || got["y"] != 2 {
		t.Errorf("merge: %+v", got)
	}
	if _, err := merge(a, map[string]any{"x": 2}); err == nil {
		t.Error("a scalar set twice: no error")
	}
	if _, err := merge(a, map[string]any{"modules": []any{}}); err == nil {
		t.Error("a map against a list: no error")
	}
}

// TestMintRegisterLogin runs the helpers the way a test of the bot would:
// mint as the minter, register with the token, log in; the token then
// refuses a second account.
func TestMintRegisterLogin(t *testing.T) {
	s := Start(t)
	m := s.MintAsMinter(t)
	hank := s.RegisterWithToken(t, m.Token, "hank", "hank-secret")
	if ok, err := s.CanLogin(hank, "hank-secret"); err != nil || !ok {
		t.Fatalf("%s: log in as %s: %v, %v", s.tag(), hank, ok, err)
	}
	if ok, err := s.CanLogin(hank, "wrong"); err != nil || ok {
		t.Fatalf("%s: log in as %s with a wrong password: %v, %v", s.tag(), hank, ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := ibr.Register(ctx, s.IBRConfig(), m.Token, "ivan", "ivan-secret"); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Fatalf("%s: second account with one token: got %v, want ErrTokenRejected", s.tag(), err)
	}
}
