package invites

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// countingIssuer mints numbered tokens that expire a week after the clock.
type countingIssuer struct {
	n   int
	now func() time.Time
}

func (c *countingIssuer) Mint(context.Context) (Minted, error) {
	c.n++
	tok := fmt.Sprintf("tok%d", c.n)
	return Minted{URI: "xmpp:durare.org?register;preauth=" + tok, Token: tok, Expires: c.now().Add(7 * 24 * time.Hour)}, nil
}

// TestQuotaRefusals drives the three limits through the service, whose
// counts now come from the store's indexes, and checks each refusal's
// count and the time it names.
func TestQuotaRefusals(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	now := start
	clock := func() time.Time { return now }
	const admin, alice, bob, carol = "admin@durare.org", "alice@x.org", "bob@y.org", "carol@z.org"
	for _, j := range []string{alice, bob, carol} {
		if err := st.PutGrant(ctx, store.Grant{JID: j, GrantedBy: admin}, store.AuditEntry{Actor: admin, Action: ActionGrant}); err != nil {
			t.Fatal(err)
		}
	}
	svc := NewService(Options{
		Store: st, Issuer: &countingIssuer{now: clock}, Domain: "durare.org", Admins: map[string]bool{admin: true},
		Now: clock, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Limits: policy.Limits{PerDay: 2, MaxPending: 3, GlobalPerDay: 4},
	})
	create := func(who string) (Invite, error) {
		t.Helper()
		a, err := svc.Actor(ctx, who)
		if err != nil {
			t.Fatal(err)
		}
		return svc.Create(ctx, a)
	}
	refused := func(who string, limit policy.Limit, count int, next time.Time) {
		t.Helper()
		_, err := create(who)
		var q *QuotaError
		if !errors.As(err, &q) || q.Limit != limit || q.Count != count || !q.Next.Equal(next) {
			t.Errorf("%s: Create = %v; want %s refused at %d, next %v", who, err, limit, count, next)
		}
	}

	// Per day: alice's two invites, an hour apart; the third waits for the
	// first to age out.
	first, _ := create(alice)
	now = now.Add(time.Hour)
	create(alice)
	refused(alice, policy.LimitPerDay, 2, first.Created.Add(policy.QuotaWindow))

	// A day after the second both have aged out, but three are pending:
	// the next slot frees when the oldest expires.
	third := start.Add(time.Hour + policy.QuotaWindow + time.Minute)
	now = third
	create(alice)
	refused(alice, policy.LimitPending, 3, first.Expires)

	// Global: alice's newest, bob's two and (not counted) the admin's
	// make three of four; carol's fills it, and the next is possible when
	// the oldest of the window ages out.
	for range 5 {
		if _, err := create(admin); err != nil {
			t.Fatalf("admin: %v", err)
		}
	}
	now = now.Add(time.Minute)
	b1, _ := create(bob)
	create(bob)
	create(carol)
	refused(carol, policy.LimitGlobal, 4, third.Add(policy.QuotaWindow))
	if b1.ID == "" {
		t.Error("bob's first invite was refused")
	}
}
