package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/store"
)

const (
	treeAdmin = "admin@durare.org"
	treeAlice = "alice@elsewhere.org" // a granted inviter on another domain
)

// fakeModule is mod_invitebot as the service sees it, loaded, recording
// the suspensions it is asked for.
type fakeModule struct {
	mu        sync.Mutex
	suspended map[string]bool
	refuse    map[string]bool
}

func (m *fakeModule) State() ModuleState                              { return ModulePresent }
func (m *fakeModule) Detect(context.Context) (ModuleState, error)     { return ModulePresent, nil }
func (m *fakeModule) Delete(context.Context, string) error            { return nil }
func (m *fakeModule) Introduce(context.Context, string, string) error { return nil }

func (m *fakeModule) Suspend(_ context.Context, account jid.JID, _ string) (SuspendHow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refuse[account.String()] {
		return "", ErrSuspendRefused
	}
	m.suspended[account.String()] = true
	return SuspendBlocked, nil
}

func (m *fakeModule) Unsuspend(_ context.Context, account jid.JID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.suspended, account.String())
	return nil
}

func (m *fakeModule) isSuspended(a string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.suspended[a]
}

type treeFixture struct {
	svc *Service
	st  *store.Store
	mod *fakeModule
	now time.Time
	n   int
}

func newTreeFixture(t *testing.T, module bool) *treeFixture {
	t.Helper()
	return newTreeFixtureWith(t, module, nil)
}

// newTreeFixtureWith is newTreeFixture with tune changing the options.
func newTreeFixtureWith(t *testing.T, module bool, tune func(*Options)) *treeFixture {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &treeFixture{st: st, mod: &fakeModule{suspended: map[string]bool{}, refuse: map[string]bool{}},
		now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	o := Options{Store: st, Issuer: &countingIssuer{now: func() time.Time { return f.now }}, Domain: "durare.org",
		Admins: map[string]bool{treeAdmin: true}, Now: func() time.Time { return f.now },
		Log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	if module {
		o.Module = f.mod
	}
	if tune != nil {
		tune(&o)
	}
	f.svc = NewService(o)
	f.grant(t, treeAlice)
	return f
}

func (f *treeFixture) grant(t *testing.T, who string) {
	t.Helper()
	if err := f.st.PutGrant(t.Context(), store.Grant{JID: who, GrantedBy: treeAdmin, PerDay: 7},
		store.AuditEntry{Actor: treeAdmin, Action: ActionGrant}); err != nil {
		t.Fatal(err)
	}
}

// invited records that inviter's invite created account, a minute after
// the last one.
func (f *treeFixture) invited(t *testing.T, inviter, account string) store.Invite {
	t.Helper()
	f.n++
	f.now = f.now.Add(time.Minute)
	inv, err := f.st.AddInvite(t.Context(), store.Invite{Token: fmt.Sprintf("t%d", f.n), URI: "xmpp:durare.org?register;preauth=x",
		Domain: "durare.org", Inviter: inviter, Created: f.now, Expires: f.now.Add(time.Hour)},
		store.AuditEntry{Actor: inviter, Action: ActionInviteCreate})
	if err != nil {
		t.Fatal(err)
	}
	if account == "" {
		return inv
	}
	inv, _, err = f.st.MarkUsedBy(t.Context(), inv.ID, account, store.AuditEntry{Actor: account, Action: ActionInviteUse})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func (f *treeFixture) actor(t *testing.T, who string) Actor {
	t.Helper()
	a, err := f.svc.Actor(t.Context(), who)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// threeLevels: alice invited a1 and a2; a1 invited b1; b1 invited c1;
// a1 holds a grant; alice also has a pending invite.
func (f *treeFixture) threeLevels(t *testing.T) {
	f.invited(t, treeAlice, "a1@durare.org")
	f.invited(t, treeAlice, "a2@durare.org")
	f.grant(t, "a1@durare.org")
	f.invited(t, "a1@durare.org", "b1@durare.org")
	f.invited(t, "b1@durare.org", "c1@durare.org")
	f.invited(t, treeAlice, "")
}

func accountsOf(b Branch) string {
	var out []string
	for _, a := range b.Accounts {
		out = append(out, fmt.Sprintf("%d:%s", a.Depth, strings.TrimSuffix(a.Account, "@durare.org")))
	}
	return strings.Join(out, " ")
}

func TestBranchBothWays(t *testing.T) {
	f := newTreeFixture(t, true)
	f.threeLevels(t)
	ctx := t.Context()
	admin := f.actor(t, treeAdmin)

	b, err := f.svc.Branch(ctx, admin, treeAlice)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := accountsOf(b), "1:a1 2:b1 3:c1 1:a2"; got != want {
		t.Errorf("branch of alice = %s, want %s", got, want)
	}
	if b.RootInviter != InviterGranted || b.RootAccount != "" || len(b.Up) != 0 {
		t.Errorf("alice: inviter %s, account %q, up %v", b.RootInviter, b.RootAccount, b.Up)
	}
	if a1 := b.Accounts[0]; a1.Children != 1 || a1.Below != 2 || a1.Inviter != InviterGranted {
		t.Errorf("a1 = %+v, want 1 child, 2 below, granted", a1)
	}
	if b1 := b.Accounts[1]; b1.Inviter != InviterRevoked || b1.Below != 1 {
		t.Errorf("b1 = %+v, want an inviter without grant, 1 below", b1)
	}
	if got := b.Depths(); !slices.Equal(got, []int{2, 1, 1}) {
		t.Errorf("depths = %v", got)
	}

	up, err := f.svc.Branch(ctx, admin, "c1@durare.org")
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for _, l := range up.Up {
		chain = append(chain, l.Invite.Inviter)
	}
	if got, want := strings.Join(chain, " "), "b1@durare.org a1@durare.org "+treeAlice; got != want {
		t.Errorf("chain above c1 = %s, want %s", got, want)
	}
	if up.RootAccount != AccountActive || len(up.Accounts) != 0 {
		t.Errorf("c1: account %q, below %d", up.RootAccount, len(up.Accounts))
	}

	// An inviter sees their own branch and the accounts in it, nobody
	// else's; a stranger nothing.
	a1 := f.actor(t, "a1@durare.org")
	if _, err := f.svc.Branch(ctx, a1, "c1@durare.org"); err != nil {
		t.Errorf("a1 asks about c1 (in a1's branch): %v", err)
	}
	if _, err := f.svc.Branch(ctx, a1, "a2@durare.org"); !errors.Is(err, ErrNotInBranch) {
		t.Errorf("a1 asks about a2: %v, want ErrNotInBranch", err)
	}
	if _, err := f.svc.Branch(ctx, f.actor(t, "c1@durare.org"), "c1@durare.org"); !errors.Is(err, ErrForbidden) {
		t.Errorf("a stranger asks: %v, want ErrForbidden", err)
	}
}

// TestBranchOrderLarge: a bot wave of 10 k accounts, wide and deep, is laid
// out in one pass with its counts right.
func TestBranchOrderLarge(t *testing.T) {
	const n = 10000
	var invs []store.Invite
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// A chain of 5000, each link also inviting one leaf.
	parent := "root"
	for i := range n / 2 {
		acct := fmt.Sprintf("c%d@d", i)
		invs = append(invs, store.Invite{ID: fmt.Sprint(i), Inviter: parent, UsedBy: acct, Created: base.Add(time.Duration(i) * time.Second)})
		invs = append(invs, store.Invite{ID: fmt.Sprint(-i), Inviter: parent, UsedBy: fmt.Sprintf("l%d@d", i), Created: base.Add(time.Duration(i)*time.Second + 1)})
		parent = acct
	}
	start := time.Now()
	out := order("root", invs)
	took := time.Since(start)
	if len(out) != n {
		t.Fatalf("%d accounts laid out, want %d", len(out), n)
	}
	if out[0].Account != "c0@d" || out[0].Below != n-2 || out[0].Children != 2 {
		t.Errorf("first = %+v, want c0 with 2 children and %d below", out[0], n-2)
	}
	deepest := 0
	for _, a := range out {
		deepest = max(deepest, a.Depth)
	}
	if deepest != n/2 || out[len(out)-1].Account != "l0@d" {
		t.Errorf("deepest = %d, want %d; last = %s, want l0@d (root's second child)", deepest, n/2, out[len(out)-1].Account)
	}
	t.Logf("10 k accounts laid out in %v", took)
}

func TestSuspendPreviewConfirmUndo(t *testing.T) {
	f := newTreeFixture(t, true)
	f.threeLevels(t)
	// An admin's account and another domain's account in the branch are
	// never touched.
	f.invited(t, treeAlice, treeAdmin)
	f.invited(t, treeAlice, "far@other.org")
	ctx := t.Context()
	admin := f.actor(t, treeAdmin)

	if _, err := f.svc.PlanSuspend(ctx, admin, treeAdmin, false, ""); !errors.Is(err, ErrTargetIsAdmin) {
		t.Errorf("suspend an admin: %v", err)
	}
	if _, err := f.svc.ConfirmSuspend(ctx, admin); !errors.Is(err, ErrNoPlan) {
		t.Errorf("yes without a preview: %v", err)
	}
	if _, err := f.svc.PlanSuspend(ctx, f.actor(t, treeAlice), "a1@durare.org", false, ""); !errors.Is(err, ErrForbidden) {
		t.Errorf("an inviter suspends: %v", err)
	}
	p, err := f.svc.PlanSuspend(ctx, admin, treeAlice, false, "bot wave")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(p.Accounts, " "), "a1@durare.org a2@durare.org"; got != want {
		t.Errorf("depth 1 accounts = %s, want %s", got, want)
	}
	if got, want := strings.Join(p.Skipped, " "), treeAdmin+" far@other.org"; got != want {
		t.Errorf("skipped = %s, want %s", got, want)
	}
	if p.Pending != 1 || !slices.Equal(p.Revoke, []string{treeAlice}) {
		t.Errorf("plan = %+v", p)
	}
	// Nothing happened yet.
	if f.mod.isSuspended("a1@durare.org") {
		t.Fatal("suspended before the yes")
	}
	// The branch grows between preview and yes: nothing is done.
	f.invited(t, treeAlice, "a3@durare.org")
	if _, err := f.svc.ConfirmSuspend(ctx, admin); !errors.Is(err, ErrPlanChanged) {
		t.Fatalf("yes after the branch grew: %v, want ErrPlanChanged", err)
	}
	if f.mod.isSuspended("a1@durare.org") {
		t.Fatal("suspended although the branch changed")
	}
	res, err := f.svc.ConfirmSuspend(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Suspended) != 3 || res.Cancelled != 1 {
		t.Errorf("result = %+v, want 3 accounts suspended, 1 invite cancelled", res)
	}
	for _, a := range []string{"a1@durare.org", "a2@durare.org", "a3@durare.org"} {
		if !f.mod.isSuspended(a) {
			t.Errorf("%s not suspended at the server", a)
		}
	}
	for _, a := range []string{treeAdmin, "far@other.org", "b1@durare.org"} {
		if f.mod.isSuspended(a) {
			t.Errorf("%s suspended", a)
		}
	}
	if _, err := f.st.Grant(ctx, treeAlice); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice's grant after suspend: %v", err)
	}
	if !f.svc.IsSuspended(ctx, "a1@durare.org") {
		t.Error("a1 not recorded as suspended")
	}

	u, err := f.svc.Unsuspend(ctx, admin, treeAlice)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Restored) != 3 || !slices.Equal(u.Regranted, []string{treeAlice}) || u.Cancelled != 1 {
		t.Errorf("unsuspend = %+v", u)
	}
	if f.mod.isSuspended("a1@durare.org") || f.svc.IsSuspended(ctx, "a1@durare.org") {
		t.Error("a1 still suspended")
	}
	if g, err := f.st.Grant(ctx, treeAlice); err != nil || g.PerDay != 7 {
		t.Errorf("alice's grant after unsuspend: %+v, %v (want the old one back)", g, err)
	}
	if _, err := f.svc.Unsuspend(ctx, admin, treeAlice); !errors.Is(err, ErrNotSuspended) {
		t.Errorf("unsuspend again: %v", err)
	}
	// The audit log says what happened, step by step.
	entries, err := f.st.Audit(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if strings.Contains(e.Action, "suspend") {
			actions = append(actions, e.Action+" "+e.Subject)
		}
	}
	for _, want := range []string{"suspend " + treeAlice, "unsuspend " + treeAlice, "account.suspend a2@durare.org", "account.unsuspend a2@durare.org"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit lacks %q: %v", want, actions)
		}
	}
}

// TestSuspendDeepAndManual: deep takes the whole branch and revokes its
// inviters too; without a module the accounts are recorded for an admin
// to suspend by hand.
func TestSuspendDeepAndManual(t *testing.T) {
	f := newTreeFixture(t, false)
	f.threeLevels(t)
	ctx := t.Context()
	admin := f.actor(t, treeAdmin)
	p, err := f.svc.PlanSuspend(ctx, admin, treeAlice, true, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Accounts) != 4 || !slices.Equal(p.Revoke, []string{treeAlice, "a1@durare.org"}) {
		t.Errorf("deep plan = %+v", p)
	}
	res, err := f.svc.ConfirmSuspend(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manual) != 4 || len(res.Suspended) != 0 {
		t.Errorf("without a module: %+v", res)
	}
	if _, err := f.st.Grant(ctx, "a1@durare.org"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a1's grant after a deep suspend: %v", err)
	}
	b, err := f.svc.Branch(ctx, admin, treeAlice)
	if err != nil {
		t.Fatal(err)
	}
	if b.Suspended() != 4 {
		t.Errorf("tree shows %d suspended, want 4", b.Suspended())
	}
	u, err := f.svc.Unsuspend(ctx, admin, "c1@durare.org")
	if err != nil || len(u.Manual) != 1 {
		t.Errorf("unsuspend one account: %+v, %v", u, err)
	}
}

// TestTreeLinks: a link opens once, for 15 minutes, with the rights its
// owner holds when it is opened: an admin removed meanwhile gets nothing.
func TestTreeLinks(t *testing.T) {
	f := newTreeFixture(t, true)
	f.threeLevels(t)
	ctx := t.Context()
	admin := f.actor(t, treeAdmin)

	tok, err := f.svc.TreeLink(ctx, admin, treeAlice)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := f.svc.OpenTreeLink(ctx, tok); err != nil || len(b.Accounts) != 4 {
		t.Fatalf("first open: %d accounts, %v", len(b.Accounts), err)
	}
	if _, err := f.svc.OpenTreeLink(ctx, tok); !errors.Is(err, ErrTreeLinkGone) {
		t.Errorf("second open: %v, want ErrTreeLinkGone", err)
	}
	if _, err := f.svc.OpenTreeLink(ctx, "AAAA"); !errors.Is(err, ErrNoSuchTreeLink) {
		t.Errorf("unknown token: %v", err)
	}

	late, err := f.svc.TreeLink(ctx, admin, treeAlice)
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(treeLinkTTL + time.Second)
	if _, err := f.svc.OpenTreeLink(ctx, late); !errors.Is(err, ErrTreeLinkGone) {
		t.Errorf("open after 15 minutes: %v, want ErrTreeLinkGone", err)
	}

	// Made for one admin, who is no admin any more when it is opened.
	other := "other@durare.org"
	f.svc.SetAdmins(map[string]bool{treeAdmin: true, other: true})
	tok, err = f.svc.TreeLink(ctx, f.actor(t, other), treeAlice)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.SetAdmins(map[string]bool{treeAdmin: true})
	if _, err := f.svc.OpenTreeLink(ctx, tok); !errors.Is(err, ErrForbidden) {
		t.Errorf("a removed admin's link: %v, want ErrForbidden", err)
	}
	// Nobody gets a link to a branch they may not see.
	if _, err := f.svc.TreeLink(ctx, f.actor(t, "a1@durare.org"), "a2@durare.org"); !errors.Is(err, ErrNotInBranch) {
		t.Errorf("an inviter's link to another branch: %v", err)
	}
}
