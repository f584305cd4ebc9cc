package invites_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// A server that revokes by consumption but binds reset tokens to their
// account (Prosody 13.0.8 without mod_invitebot): cancelling a reset link
// cannot stop it there. The same against the real Prosody is in
// cmd/invitebot (TestResetCancelBound).

// consumingServer is resetServer revoking by consumption.
type consumingServer struct{ *resetServer }

func (consumingServer) Revocation() invites.Revocation { return invites.RevokeByConsumption }

// bindingRegistrar registers throwaway accounts with any token but a
// reset link's, which it refuses as Prosody 13.0.8 does (ErrTokenBound).
type bindingRegistrar struct {
	mu       sync.Mutex
	attempts map[string]int // registrations tried, by token
	spent    map[string]bool
}

func (r *bindingRegistrar) Register(_ context.Context, token, username, _ string) (jid.JID, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[token]++
	if strings.HasPrefix(token, "reset-") {
		return jid.JID{}, fmt.Errorf("%w: %w: not-acceptable: Incorrect username for password reset",
			invites.ErrTokenBound, invites.ErrUsernameRefused)
	}
	r.spent[token] = true
	return jid.New(username, "durare.test", "")
}

func (r *bindingRegistrar) BoundJID(_ context.Context, account jid.JID, _ string) (jid.JID, error) {
	return account, nil
}

func (r *bindingRegistrar) Remove(context.Context, jid.JID, string) error { return nil }

func (r *bindingRegistrar) DialChecker(context.Context) (invites.TokenChecker, error) {
	return bindingChecker{r}, nil
}

func (r *bindingRegistrar) tries(token string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[token]
}

type bindingChecker struct{ r *bindingRegistrar }

func (c bindingChecker) Check(_ context.Context, token string) error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.r.spent[token] {
		return invites.ErrTokenRejected
	}
	return nil
}

func (bindingChecker) Close() error { return nil }

// TestCancelBoundReset: cancelling a reset link the server will not let be
// used up records it as unrevocable (with an audit entry) instead of
// revoked, says so to the canceller, and usage tracking does not try again;
// once learnt, new reset links are said to be uncancellable, and a new link
// names the earlier one that still works. An ordinary invite is still
// consumed.
func TestCancelBoundReset(t *testing.T) {
	ctx := context.Background()
	reg := &bindingRegistrar{attempts: map[string]int{}, spent: map[string]bool{}}
	f := newResetFixtureWith(t, func(s *resetServer) invites.Issuer { return consumingServer{s} }, reg)
	admin := f.actor(t, resetAdmin)
	f.server.accounts["alice@durare.test"] = true

	if f.svc.ResetsUncancellable() {
		t.Error("ResetsUncancellable before any cancel was tried: the bot cannot know yet")
	}
	link, err := f.svc.Reset(ctx, admin, "alice@durare.test")
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := f.svc.Cancel(ctx, admin, link.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !cancelled.Unrevocable || cancelled.Revoked || cancelled.State != invites.StateCancelled {
		t.Errorf("cancelled bound reset link = %+v, want cancelled, unrevocable, not revoked", cancelled)
	}
	rec, err := f.st.Invite(ctx, link.ID)
	if err != nil || !rec.Unrevocable || rec.Revoked {
		t.Errorf("stored link = %+v, %v; want unrevocable", rec, err)
	}
	audit, err := f.st.Audit(ctx, link.ID, 10)
	if err != nil || !slices.ContainsFunc(audit, func(e store.AuditEntry) bool { return e.Action == invites.ActionTokenUnrevocable }) {
		t.Errorf("audit of the link = %+v, %v; want %s", audit, err, invites.ActionTokenUnrevocable)
	}
	if !f.svc.ResetsUncancellable() {
		t.Error("ResetsUncancellable after the server refused: want true")
	}

	tries := reg.tries(rec.Token)
	for range 2 {
		if err := f.svc.CheckPending(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := reg.tries(rec.Token); got != tries {
		t.Errorf("usage tracking tried to consume the unrevocable token again: %d tries, want %d", got, tries)
	}
	// A restarted bot learns it again from its records at the first usage
	// check, without asking the server.
	restarted := invites.NewService(invites.Options{Store: f.st, Issuer: consumingServer{f.server}, Domain: "durare.test",
		Admins: map[string]bool{resetAdmin: true}, Registrar: reg, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err := restarted.CheckPending(ctx); err != nil {
		t.Fatal(err)
	}
	if !restarted.ResetsUncancellable() || reg.tries(rec.Token) != tries {
		t.Errorf("after a restart and a usage check: uncancellable %v, %d tries; want true, %d", restarted.ResetsUncancellable(), reg.tries(rec.Token), tries)
	}

	second, err := f.svc.Reset(ctx, admin, "alice@durare.test")
	if err != nil {
		t.Fatal(err)
	}
	third, err := f.svc.Reset(ctx, admin, "alice@durare.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(third.Replaced) != 1 || third.Replaced[0].ID != second.ID || !third.Replaced[0].Unrevocable {
		t.Errorf("third link replaced %+v, want the second, unrevocable", third.Replaced)
	}

	invite, err := f.svc.Create(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := f.svc.Cancel(ctx, admin, invite.ID); err != nil || !done.Revoked || done.Unrevocable {
		t.Errorf("cancel an ordinary invite = %+v, %v; want revoked", done, err)
	}
}
