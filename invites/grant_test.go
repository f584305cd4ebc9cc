package invites_test

import (
	"context"
	"errors"
	"testing"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// TestGrantLimitsBackToDefault: an update sets a limit (N), keeps it (nil)
// or puts it back on the configured default (0); the audit log says which
// terms are now in force in the format older entries use; a negative limit
// changes nothing and writes no entry.
func TestGrantLimitsBackToDefault(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{PerDay: 2, MaxPending: 10})
	admin := f.actor(t, eventAdmin)
	tests := []struct {
		name                 string
		jid                  string
		opts                 invites.GrantOptions
		wantErr              bool
		wantPerDay, wantPend int
		wantDetail           string // the grant's newest audit entry; "" for none written
	}{
		{name: "new grant with limits", jid: eventInviter, opts: invites.GrantOptions{PerDay: new(1), MaxPending: new(4), Note: "trial"},
			wantPerDay: 1, wantPend: 4, wantDetail: "per-day 1, pending 4; trial"},
		{name: "left out keeps them", jid: eventInviter,
			wantPerDay: 1, wantPend: 4, wantDetail: "updated; per-day 1, pending 4; trial"},
		{name: "negative per-day", jid: eventInviter, opts: invites.GrantOptions{PerDay: new(-1)}, wantErr: true,
			wantPerDay: 1, wantPend: 4},
		{name: "negative pending", jid: eventInviter, opts: invites.GrantOptions{PerDay: new(0), MaxPending: new(-3)}, wantErr: true,
			wantPerDay: 1, wantPend: 4},
		{name: "per-day back to default", jid: eventInviter, opts: invites.GrantOptions{PerDay: new(0)},
			wantPend: 4, wantDetail: "updated; per-day default, pending 4; trial"},
		{name: "pending set, per-day stays default", jid: eventInviter, opts: invites.GrantOptions{MaxPending: new(6)},
			wantPend: 6, wantDetail: "updated; per-day default, pending 6; trial"},
		{name: "pending back to default", jid: eventInviter, opts: invites.GrantOptions{MaxPending: new(0)},
			wantDetail: "updated; per-day default, pending default; trial"},
		{name: "default again is still default", jid: eventInviter, opts: invites.GrantOptions{PerDay: new(0), MaxPending: new(0)},
			wantDetail: "updated; per-day default, pending default; trial"},
		{name: "new grant with default", jid: "dave@elsewhere.test", opts: invites.GrantOptions{PerDay: new(0), MaxPending: new(0)},
			wantDetail: "per-day default, pending default"},
	}
	for _, tc := range tests {
		before, err := f.svc.Audit(ctx, admin, tc.jid, 100)
		if err != nil {
			t.Fatal(err)
		}
		g, _, err := f.svc.Grant(ctx, admin, tc.jid, tc.opts)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s: Grant: %v, want error %v", tc.name, err, tc.wantErr)
		}
		if err == nil && (g.PerDay != tc.wantPerDay || g.MaxPending != tc.wantPend) {
			t.Errorf("%s: returned grant %+v, want per-day %d, pending %d", tc.name, g, tc.wantPerDay, tc.wantPend)
		}
		stored, err := f.st.Grant(ctx, tc.jid)
		if err != nil || stored.PerDay != tc.wantPerDay || stored.MaxPending != tc.wantPend {
			t.Errorf("%s: stored grant %+v, %v; want per-day %d, pending %d", tc.name, stored, err, tc.wantPerDay, tc.wantPend)
		}
		after, err := f.svc.Audit(ctx, admin, tc.jid, 100)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tc.wantDetail == "" && len(after) != len(before):
			t.Errorf("%s: wrote an audit entry: %+v", tc.name, after[0])
		case tc.wantDetail != "" && (len(after) != len(before)+1 || after[0].Action != invites.ActionGrant || after[0].Detail != tc.wantDetail):
			t.Errorf("%s: audit %+v, want one new grant entry %q", tc.name, after, tc.wantDetail)
		}
	}
}

// TestGrantLimitBackToDefaultApplies: the quota follows the grant back to
// the configured default, so an inviter held at one a day may create the
// default two again.
func TestGrantLimitBackToDefaultApplies(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{PerDay: 2, MaxPending: 10})
	admin := f.actor(t, eventAdmin)
	if _, _, err := f.svc.Grant(ctx, admin, eventInviter, invites.GrantOptions{PerDay: new(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Create(ctx, f.actor(t, eventInviter)); err != nil {
		t.Fatalf("first invite: %v", err)
	}
	var q *invites.QuotaError
	if _, err := f.svc.Create(ctx, f.actor(t, eventInviter)); !errors.As(err, &q) || q.Limit != policy.LimitPerDay || q.Max != 1 {
		t.Fatalf("second invite under per-day 1: %v, want a per-day refusal at 1", err)
	}
	if _, _, err := f.svc.Grant(ctx, admin, eventInviter, invites.GrantOptions{PerDay: new(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Create(ctx, f.actor(t, eventInviter)); err != nil {
		t.Errorf("second invite under the default of 2: %v", err)
	}
	if _, err := f.svc.Create(ctx, f.actor(t, eventInviter)); !errors.As(err, &q) || q.Limit != policy.LimitPerDay || q.Max != 2 {
		t.Errorf("third invite under the default of 2: %v, want a per-day refusal at 2", err)
	}
}
