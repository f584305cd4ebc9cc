package invites_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// listingServer is a server that lists its tokens (ejabberd's
// list_invites) and mints nothing.
type listingServer struct {
	noMint
	usage []invites.TokenUsage
	asked int
}

func (l *listingServer) ListUsage(context.Context) ([]invites.TokenUsage, error) {
	l.asked++
	return l.usage, nil
}

// TestUsageFromTheServersList: one list settles every pending invite: a
// used token names its account (the invite is used by it, also one known
// only as used), a token the server no longer accepts without an account
// is settled, a valid one stays pending, a token the bot did not hand out
// changes nothing, and an invite made after the list was asked for is not
// taken for a missing one.
func TestUsageFromTheServersList(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	add := func(token string, created time.Time) store.Invite {
		inv, err := st.AddInvite(ctx, store.Invite{Token: token, Inviter: "carol@elsewhere.test", Domain: "durare.test",
			Created: created, Expires: now.Add(24 * time.Hour)}, store.AuditEntry{Actor: "carol@elsewhere.test", Action: invites.ActionInviteCreate})
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	used := add("used-token", now.Add(-time.Hour))
	knownUsed := add("known-used-token", now.Add(-time.Hour))
	if _, err := st.SetInviteState(ctx, knownUsed.ID, store.StateUsed, "", store.AuditEntry{Actor: "invitebot", Action: invites.ActionInviteUse}); err != nil {
		t.Fatal(err)
	}
	spent := add("spent-token", now.Add(-time.Hour))
	valid := add("valid-token", now.Add(-time.Hour))
	fresh := add("fresh-token", now.Add(time.Minute)) // made after the list was asked for

	srv := &listingServer{usage: []invites.TokenUsage{
		{Token: "used-token", Account: jid.MustParse("newbie@durare.test")},
		{Token: "known-used-token", Account: jid.MustParse("other@durare.test")},
		{Token: "spent-token"},
		{Token: "valid-token", Valid: true},
		{Token: "not-ours", Account: jid.MustParse("local@durare.test")},
	}}
	svc := invites.NewService(invites.Options{Store: st, Issuer: srv, Domain: "durare.test",
		Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := svc.CheckPending(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.asked != 1 {
		t.Errorf("the list was asked for %d times in one sweep", srv.asked)
	}
	for _, c := range []struct {
		inv    store.Invite
		state  store.State
		usedBy string
	}{
		{used, store.StateUsed, "newbie@durare.test"},
		{knownUsed, store.StateUsed, "other@durare.test"},
		{spent, store.StateUsed, ""},
		{valid, store.StatePending, ""},
		{fresh, store.StatePending, ""},
	} {
		got, err := st.Invite(ctx, c.inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != c.state || got.UsedBy != c.usedBy {
			t.Errorf("invite with %s: %s by %q, want %s by %q", c.inv.Token, got.State, got.UsedBy, c.state, c.usedBy)
		}
	}
}
