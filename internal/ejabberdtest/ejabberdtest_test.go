package ejabberdtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/homeserver/ibr"
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
	b := readFrom(s.ConfigPath, 0)
	for _, want := range []string{"invitebot_minter", "registration_timeout: infinity", "access_create_account: invitebot_create_account", "generate_reset_token", "mod_invites"} {
		if !strings.Contains(b, want) {
			t.Errorf("%s: ejabberd.yml lacks %q:\n%s", s.tag(), want, b)
		}
	}
}
