package ejabberd_test

import (
	"errors"
	"testing"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/ejabberdtest"
	"durare.org/invitebot/invites"
)

// TestSuspendAndUnsuspend: ban_account through the minter keeps a
// suspended account from logging in, and unban_account lets it in again;
// an account of another domain and one that does not exist are refused.
func TestSuspendAndUnsuspend(t *testing.T) {
	s, iss, ctx := setup(t)
	spammer := s.AddUser(t, "spammer", s.Domain, "spammer-secret")
	loginIs := func(want bool) {
		t.Helper()
		if ok, err := s.CanLogin(spammer, "spammer-secret"); err != nil || ok != want {
			t.Fatalf("ejabberd %s: %s logs in: %v (%v), want %v", s.Version, spammer, ok, err, want)
		}
	}
	loginIs(true)
	how, err := iss.Suspend(ctx, spammer, "a bot wave")
	if err != nil || how != invites.SuspendDisabled {
		t.Fatalf("ejabberd %s: suspend: %q, %v", s.Version, how, err)
	}
	loginIs(false)
	if err := iss.Unsuspend(ctx, spammer); err != nil {
		t.Fatalf("ejabberd %s: unsuspend: %v", s.Version, err)
	}
	loginIs(true)

	for _, account := range []jid.JID{jid.MustParse("someone@" + ejabberdtest.DefaultOtherDomain), jid.MustParse("nobody-here@" + s.Domain)} {
		if _, err := iss.Suspend(ctx, account, ""); !errors.Is(err, invites.ErrSuspendRefused) {
			t.Errorf("ejabberd %s: suspend %s: %v, want a refusal", s.Version, account, err)
		}
	}
}
