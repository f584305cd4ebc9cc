package invites_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Password resets with a fake Prosody 13: who may reset which account, an
// account that does not exist, and a new link replacing the earlier ones.
// The same against the real Prosody is in cmd/invitebot.

const (
	resetAdmin   = "admin@durare.test"
	resetInviter = "carol@elsewhere.test"
)

// resetServer mints invites and reset links, deletes tokens, and says
// which accounts exist (or fails to, with existsErr).
type resetServer struct {
	mu        sync.Mutex
	minted    int
	resets    []string // accounts reset links were minted for
	deleted   []string
	accounts  map[string]bool
	existsErr error
	asked     []string // accounts asked about
}

func (s *resetServer) mint(kind string) invites.Minted {
	s.minted++
	tok := fmt.Sprintf("%s-token-%03d", kind, s.minted)
	return invites.Minted{URI: "xmpp:durare.test?register;preauth=" + tok, Token: tok, Expires: time.Now().Add(7 * 24 * time.Hour)}
}

func (s *resetServer) Mint(context.Context) (invites.Minted, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mint("invite"), nil
}

func (s *resetServer) OffersResets(context.Context) (bool, error) { return true, nil }

func (s *resetServer) MintReset(_ context.Context, account jid.JID) (invites.Minted, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resets = append(s.resets, account.String())
	return s.mint("reset"), nil
}

func (s *resetServer) AccountExists(_ context.Context, account jid.JID) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, account.String())
	if s.existsErr != nil {
		return false, s.existsErr
	}
	return s.accounts[account.String()], nil
}

func (s *resetServer) Revocation() invites.Revocation { return invites.RevokeByDeletion }

func (s *resetServer) Delete(_ context.Context, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, token)
	return nil
}

func (s *resetServer) state() (resets, deleted []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.resets), slices.Clone(s.deleted)
}

// resetServerWithoutCheck is a server that mints reset links but cannot
// say whether an account exists.
type resetServerWithoutCheck struct{ s *resetServer }

func (n resetServerWithoutCheck) Mint(ctx context.Context) (invites.Minted, error) {
	return n.s.Mint(ctx)
}
func (n resetServerWithoutCheck) OffersResets(ctx context.Context) (bool, error) {
	return n.s.OffersResets(ctx)
}
func (n resetServerWithoutCheck) MintReset(ctx context.Context, account jid.JID) (invites.Minted, error) {
	return n.s.MintReset(ctx, account)
}

type resetFixture struct {
	st     *store.Store
	svc    *invites.Service
	server *resetServer
	now    time.Time
}

func newResetFixture(t *testing.T, issuer func(*resetServer) invites.Issuer) *resetFixture {
	t.Helper()
	return newResetFixtureWith(t, issuer, nil)
}

// newResetFixtureWith is newResetFixture with reg as the service's
// Registrar (nil: none).
func newResetFixtureWith(t *testing.T, issuer func(*resetServer) invites.Issuer, reg invites.Registrar) *resetFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &resetFixture{st: st, server: &resetServer{accounts: map[string]bool{}}, now: time.Now().UTC()}
	var iss invites.Issuer = f.server
	if issuer != nil {
		iss = issuer(f.server)
	}
	f.svc = invites.NewService(invites.Options{
		Store: st, Issuer: iss, Domain: "durare.test", Admins: map[string]bool{resetAdmin: true},
		Limits: policy.Limits{PerDay: 10, MaxPending: 10}, InviterResets: true, Registrar: reg,
		Log: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	f.svc.DetectServerCommands(ctx)
	if !f.svc.ResetsAvailable() {
		t.Fatal("the fake server's resets are not detected")
	}
	if _, _, err := f.svc.Grant(ctx, f.actor(t, resetAdmin), resetInviter, invites.GrantOptions{}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *resetFixture) actor(t *testing.T, who string) invites.Actor {
	t.Helper()
	a, err := f.svc.Actor(context.Background(), who)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// used records that an invite of inviter created account, ago before now,
// the way the browser path or the server's report records it.
func (f *resetFixture) used(t *testing.T, inviter, account string, ago time.Duration) {
	t.Helper()
	f.usedLink(t, inviter, account, "", ago)
}

// usedLink is used for an invite (resetFor empty) or a reset link for
// resetFor.
func (f *resetFixture) usedLink(t *testing.T, inviter, account, resetFor string, ago time.Duration) {
	t.Helper()
	ctx := context.Background()
	at := f.now.Add(-ago)
	tok := fmt.Sprintf("seeded-%s-%s-%d", inviter, account, at.UnixNano())
	inv, err := f.st.AddInvite(ctx, store.Invite{Token: tok, URI: "xmpp:durare.test?register;preauth=" + tok,
		Domain: "durare.test", Inviter: inviter, Created: at.Add(-time.Hour), Expires: at.Add(24 * time.Hour), ResetFor: resetFor},
		store.AuditEntry{Time: at.Add(-time.Hour), Actor: inviter, Action: invites.ActionInviteCreate})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SetInviteState(ctx, inv.ID, store.StateUsed, account,
		store.AuditEntry{Time: at, Actor: account, Action: invites.ActionInviteUse}); err != nil {
		t.Fatal(err)
	}
	f.server.mu.Lock()
	f.server.accounts[account] = true
	f.server.mu.Unlock()
}

// TestResetRecycledUsername: an inviter may reset the account their invite
// created only while that registration is the latest of the name. carol's
// invite made frank, frank deleted his account, an admin's invite made a
// new frank: carol may no longer reset frank. The latest registration
// decides both ways.
func TestResetRecycledUsername(t *testing.T) {
	ctx := context.Background()
	f := newResetFixture(t, nil)
	carol := f.actor(t, resetInviter)

	f.used(t, resetInviter, "frank@durare.test", 48*time.Hour)
	f.used(t, resetAdmin, "frank@durare.test", 24*time.Hour)
	if inv, err := f.svc.Reset(ctx, carol, "frank@durare.test"); !errors.Is(err, invites.ErrNotYourAccount) {
		t.Errorf("carol resets the recycled frank: %+v, %v; want ErrNotYourAccount", inv, err)
	}

	// The other way round: the admin's invite made grace first, carol's
	// made the grace that exists now.
	f.used(t, resetAdmin, "grace@durare.test", 48*time.Hour)
	f.used(t, resetInviter, "grace@durare.test", 24*time.Hour)
	if _, err := f.svc.Reset(ctx, carol, "grace@durare.test"); err != nil {
		t.Errorf("carol resets grace, whom her invite made last: %v", err)
	}
	if resets, _ := f.server.state(); !slices.Equal(resets, []string{"grace@durare.test"}) {
		t.Errorf("reset links minted for %v, want grace only", resets)
	}

	// A reset link creates the account when it is gone, so its use counts
	// as a registration by its maker: after an admin's reset link set
	// heidi's password, heidi is no longer carol's to reset.
	f.used(t, resetInviter, "heidi@durare.test", 48*time.Hour)
	f.usedLink(t, resetAdmin, "heidi@durare.test", "heidi@durare.test", 24*time.Hour)
	if inv, err := f.svc.Reset(ctx, carol, "heidi@durare.test"); !errors.Is(err, invites.ErrNotYourAccount) {
		t.Errorf("carol resets heidi after an admin's reset: %+v, %v; want ErrNotYourAccount", inv, err)
	}
}

// TestResetNonexistentAccount: no reset link for an account the server
// says does not exist (the link would create it, untracked), nor when the
// server cannot tell; nothing is minted or stored either way.
func TestResetNonexistentAccount(t *testing.T) {
	ctx := context.Background()
	f := newResetFixture(t, nil)
	admin := f.actor(t, resetAdmin)

	if inv, err := f.svc.Reset(ctx, admin, "ghost@durare.test"); !errors.Is(err, invites.ErrNoSuchAccount) {
		t.Errorf("reset of a missing account: %+v, %v; want ErrNoSuchAccount", inv, err)
	}
	f.server.mu.Lock()
	f.server.existsErr = errors.New("link down")
	f.server.accounts["alice@durare.test"] = true
	f.server.mu.Unlock()
	if inv, err := f.svc.Reset(ctx, admin, "alice@durare.test"); !errors.Is(err, invites.ErrAccountUnknown) {
		t.Errorf("reset when the server cannot tell: %+v, %v; want ErrAccountUnknown", inv, err)
	}
	if resets, _ := f.server.state(); len(resets) != 0 {
		t.Errorf("reset links minted for %v, want none", resets)
	}
	if pending, err := f.st.PendingInvites(ctx); err != nil || len(pending) != 0 {
		t.Errorf("pending invites %+v, %v; want none", pending, err)
	}

	// A server that cannot be asked at all: refused too.
	g := newResetFixture(t, func(s *resetServer) invites.Issuer { return resetServerWithoutCheck{s} })
	g.server.accounts["alice@durare.test"] = true
	if inv, err := g.svc.Reset(ctx, g.actor(t, resetAdmin), "alice@durare.test"); !errors.Is(err, invites.ErrAccountUnknown) {
		t.Errorf("reset on a server without an account check: %+v, %v; want ErrAccountUnknown", inv, err)
	}
	if resets, _ := g.server.state(); len(resets) != 0 {
		t.Errorf("reset links minted for %v, want none", resets)
	}
}

// TestResetReplacesEarlierLinks: a new reset link for an account cancels
// the account's earlier pending reset links, whoever made them, and
// deletes their tokens at the server; links for other accounts and account
// invites stay.
func TestResetReplacesEarlierLinks(t *testing.T) {
	ctx := context.Background()
	f := newResetFixture(t, nil)
	admin, carol := f.actor(t, resetAdmin), f.actor(t, resetInviter)
	f.used(t, resetInviter, "frank@durare.test", time.Hour)
	f.server.accounts["alice@durare.test"] = true

	invite, err := f.svc.Create(ctx, carol)
	if err != nil {
		t.Fatal(err)
	}
	first, err := f.svc.Reset(ctx, carol, "frank@durare.test")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := f.svc.Reset(ctx, admin, "alice@durare.test")
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.Reset(ctx, admin, "frank@durare.test")
	if err != nil {
		t.Fatal(err)
	}
	third, err := f.svc.Reset(ctx, carol, "frank@durare.test")
	if err != nil {
		t.Fatal(err)
	}

	states, tokens := map[string]store.State{}, map[string]string{}
	for _, inv := range []invites.Invite{invite, first, alice, second, third} {
		rec, err := f.st.Invite(ctx, inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		states[inv.ID], tokens[inv.ID] = rec.State, rec.Token
	}
	want := map[string]store.State{invite.ID: store.StatePending, first.ID: store.StateCancelled,
		alice.ID: store.StatePending, second.ID: store.StateCancelled, third.ID: store.StatePending}
	for id, st := range want {
		if states[id] != st {
			t.Errorf("invite %s is %s, want %s", id, states[id], st)
		}
	}
	_, deleted := f.server.state()
	slices.Sort(deleted)
	if wantDeleted := []string{tokens[first.ID], tokens[second.ID]}; !slices.Equal(deleted, wantDeleted) {
		t.Errorf("tokens deleted at the server %v, want %v", deleted, wantDeleted)
	}
}
