package invites_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Event links with a fake server: the cap, the quotas, expiry, pause,
// closing. The same against the real Prosody is in cmd/invitebot.

const (
	eventAdmin   = "admin@durare.test"
	eventInviter = "carol@elsewhere.test"
)

// eventIssuer mints numbered tokens, or fails with err; it deletes tokens
// like a server with a deletion command. With a gate, each Mint says on
// started that the server is minting and waits for release, so that a test
// can act while a token is being minted without guessing how long that is.
type eventIssuer struct {
	mu      sync.Mutex
	minted  int
	gate    *mintGate
	err     error
	deleted []string
}

// mintGate holds mints at the server until the test opens it.
type mintGate struct {
	started chan struct{} // one value per Mint begun
	release chan struct{} // closed to let every Mint finish
	once    sync.Once
}

// newMintGate returns a gate for up to n mints, opened when the test ends
// at the latest, so that no visitor is left minting.
func newMintGate(t *testing.T, n int) *mintGate {
	g := &mintGate{started: make(chan struct{}, n), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

// open lets every mint held and to come finish.
func (g *mintGate) open() { g.once.Do(func() { close(g.release) }) }

// wait waits until n mints are under way.
func (g *mintGate) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.started:
		case <-time.After(10 * time.Second):
			t.Fatalf("the server was never asked to mint")
		}
	}
}

func (f *eventIssuer) Mint(ctx context.Context) (invites.Minted, error) {
	if g := f.gate; g != nil {
		g.started <- struct{}{}
		<-g.release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return invites.Minted{}, f.err
	}
	f.minted++
	tok := fmt.Sprintf("event-token-%03d", f.minted)
	return invites.Minted{URI: "xmpp:durare.test?register;preauth=" + tok, Token: tok,
		Expires: time.Now().Add(7 * 24 * time.Hour)}, nil
}

func (f *eventIssuer) Revocation() invites.Revocation { return invites.RevokeByDeletion }

func (f *eventIssuer) Delete(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, token)
	return nil
}

// eventClock is a settable clock.
type eventClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *eventClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *eventClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// eventCounter records event use outcomes, as the metrics do.
type eventCounter struct {
	mu       sync.Mutex
	outcomes map[invites.EventOutcome]int
}

func (c *eventCounter) InviteCreated() {}
func (c *eventCounter) InviteDenied()  {}
func (c *eventCounter) InviteUsed()    {}
func (c *eventCounter) EventUse(o invites.EventOutcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outcomes[o]++
}

func (c *eventCounter) count(o invites.EventOutcome) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outcomes[o]
}

type eventFixture struct {
	st      *store.Store
	svc     *invites.Service
	issuer  *eventIssuer
	clock   *eventClock
	counter *eventCounter
}

func newEventFixture(t *testing.T, lim policy.Limits) *eventFixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &eventFixture{st: st, issuer: &eventIssuer{}, clock: &eventClock{t: time.Now().UTC()},
		counter: &eventCounter{outcomes: map[invites.EventOutcome]int{}}}
	f.svc = invites.NewService(invites.Options{
		Store: st, Issuer: f.issuer, Domain: "durare.test", Admins: map[string]bool{eventAdmin: true},
		Now: f.clock.now, Limits: lim, Observer: f.counter,
		Log: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	return f
}

func (f *eventFixture) actor(t *testing.T, jid string) invites.Actor {
	t.Helper()
	a, err := f.svc.Actor(context.Background(), jid)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// grant gives carol the right to invite, with events as her event allowance.
func (f *eventFixture) grant(t *testing.T, events int) {
	t.Helper()
	if _, _, err := f.svc.Grant(context.Background(), f.actor(t, eventAdmin), eventInviter, invites.GrantOptions{Events: &events}); err != nil {
		t.Fatal(err)
	}
}

func (f *eventFixture) event(t *testing.T, who string, uses int, valid time.Duration) invites.EventLink {
	t.Helper()
	ev, err := f.svc.CreateEvent(context.Background(), f.actor(t, who), invites.EventOptions{Uses: uses, Valid: valid, Note: "workshop"})
	if err != nil {
		t.Fatalf("CreateEvent(%s, %d, %s): %v", who, uses, valid, err)
	}
	return ev
}

// TestEventCapHoldsUnderConcurrentVisitors: ten visitors at once on a
// link for three get exactly three invites, each minted once, recorded as
// the creator's with the link, and the other seven hear it is used up.
func TestEventCapHoldsUnderConcurrentVisitors(t *testing.T) {
	f := newEventFixture(t, policy.Limits{})
	gate := newMintGate(t, 10)
	f.issuer.gate = gate
	f.grant(t, 5)
	ev := f.event(t, eventInviter, 3, time.Hour)

	const visitors = 10
	var wg sync.WaitGroup
	results := make(chan error, visitors)
	ids := make(chan string, visitors)
	for range visitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inv, err := f.svc.ClaimEventInvite(context.Background(), ev.ID)
			if err == nil {
				ids <- inv.ID
			}
			results <- err
		}()
	}
	// The three visitors who claimed a use are all minting at once before
	// any of them finishes.
	gate.wait(t, 3)
	gate.open()
	wg.Wait()
	close(results)
	close(ids)
	var got, usedUp int
	for err := range results {
		switch {
		case err == nil:
			got++
		case errors.Is(err, invites.ErrEventUsedUp):
			usedUp++
		default:
			t.Errorf("visitor: %v", err)
		}
	}
	if got != 3 || usedUp != visitors-3 {
		t.Fatalf("%d visitors got an invite and %d heard used up; want 3 and %d", got, usedUp, visitors-3)
	}
	if f.issuer.minted != 3 {
		t.Errorf("the server minted %d tokens, want 3", f.issuer.minted)
	}
	for id := range ids {
		inv, err := f.svc.Lookup(context.Background(), id)
		if err != nil || inv.Event != ev.ID || inv.Inviter != eventInviter || inv.State != invites.StatePending {
			t.Errorf("invite %s = %+v, %v; want carol's, of the link, pending", id, inv, err)
		}
	}
	after, err := f.svc.LookupEvent(context.Background(), ev.ID)
	if !errors.Is(err, invites.ErrEventUsedUp) || after.Uses != 3 || after.Left() != 0 {
		t.Errorf("link after: %+v, %v; want used up with 3 uses", after, err)
	}
	if f.counter.count(invites.EventUseMinted) != 3 || f.counter.count(invites.EventUseUsedUp) != visitors-3 {
		t.Errorf("observed outcomes %v", f.counter.outcomes)
	}
}

// TestEventUsesCountGloballyNotForTheCreator: event invites count toward
// the global daily limit, admins' links included, but not toward the
// creator's per-day or pending limits. (Carol's links may take half the
// global limit at most, policy.EventAllowance: 4 of 8.)
func TestEventUsesCountGloballyNotForTheCreator(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{PerDay: 1, MaxPending: 1, GlobalPerDay: 8})
	f.grant(t, 10)
	carol := f.actor(t, eventInviter)
	ev := f.event(t, eventInviter, 4, time.Hour)
	for range 2 {
		if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Two pending event invites of carol's, and her own limits of one
	// are untouched.
	if _, err := f.svc.Create(ctx, carol); err != nil {
		t.Fatalf("carol's own invite after two event invites: %v", err)
	}
	byAdmin := f.event(t, eventAdmin, 10, time.Hour)
	for range 4 {
		if _, err := f.svc.ClaimEventInvite(ctx, byAdmin.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); err != nil {
		t.Fatal(err)
	}
	// Eight today: carol's own, three from her link, four from the
	// admin's. The next visitor of either link is refused.
	for _, id := range []string{ev.ID, byAdmin.ID} {
		_, err := f.svc.ClaimEventInvite(ctx, id)
		var qe *invites.QuotaError
		if !errors.As(err, &qe) || qe.Limit != policy.LimitGlobal || qe.Count != 8 {
			t.Errorf("visitor past the global limit: %v, want the global limit with 8", err)
		}
	}
	if got, _ := f.svc.LookupEvent(ctx, ev.ID); got.Uses != 3 {
		t.Errorf("refused visitors took uses: %d, want 3", got.Uses)
	}
	if f.counter.count(invites.EventUseQuota) != 2 {
		t.Errorf("observed outcomes %v", f.counter.outcomes)
	}
}

func TestCreateEventLimits(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{EventMaxUses: 30})
	admin := f.actor(t, eventAdmin)
	f.grant(t, 0)
	carol := f.actor(t, eventInviter)
	stranger := f.actor(t, "mallory@elsewhere.test")

	tests := []struct {
		name  string
		who   invites.Actor
		uses  int
		valid time.Duration
		check func(error) bool
	}{
		{"stranger", stranger, 3, time.Hour, func(err error) bool { return errors.Is(err, invites.ErrForbidden) }},
		{"inviter without events", carol, 3, time.Hour, func(err error) bool { return errors.Is(err, invites.ErrEventsNotAllowed) }},
		{"admin above the configured cap", admin, 31, time.Hour, func(err error) bool {
			var ce *invites.EventCapError
			return errors.As(err, &ce) && ce.Max == 30 && ce.Asked == 31
		}},
		{"longer than a day", admin, 3, 25 * time.Hour, func(err error) bool { return errors.Is(err, invites.ErrEventDuration) }},
		{"no time", admin, 3, 0, func(err error) bool { return errors.Is(err, invites.ErrEventDuration) }},
		{"admin at the cap for a day", admin, 30, 24 * time.Hour, func(err error) bool { return err == nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.CreateEvent(ctx, tc.who, invites.EventOptions{Uses: tc.uses, Valid: tc.valid})
			if !tc.check(err) {
				t.Errorf("CreateEvent: %v", err)
			}
		})
	}

	f.grant(t, 8)
	var ce *invites.EventCapError
	if _, err := f.svc.CreateEvent(ctx, carol, invites.EventOptions{Uses: 9, Valid: time.Hour}); !errors.As(err, &ce) || ce.Max != 8 {
		t.Errorf("inviter above their allowance: %v, want a cap error naming 8", err)
	}
	ev := f.event(t, eventInviter, 8, time.Hour)
	if ev.Creator != eventInviter || ev.MaxUses != 8 || ev.Note != "workshop" || !ev.Expires.Equal(ev.Created.Add(time.Hour)) {
		t.Errorf("link = %+v", ev)
	}
	if mine, err := f.svc.Events(ctx, carol, ""); err != nil || len(mine) != 1 || mine[0].ID != ev.ID {
		t.Errorf("carol's links: %+v, %v", mine, err)
	}
	if _, err := f.svc.Events(ctx, carol, eventAdmin); !errors.Is(err, invites.ErrForbidden) {
		t.Errorf("carol listing the admin's links: %v, want ErrForbidden", err)
	}
	if theirs, err := f.svc.Events(ctx, admin, eventInviter); err != nil || len(theirs) != 1 {
		t.Errorf("admin listing carol's links: %+v, %v", theirs, err)
	}

	if _, err := f.svc.Pause(ctx, admin, "spam"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateEvent(ctx, admin, invites.EventOptions{Uses: 3, Valid: time.Hour}); !errors.Is(err, invites.ErrPaused) {
		t.Errorf("a link made while paused: %v, want ErrPaused", err)
	}
}

// TestEventExpiryPauseAndFailedMint: a link stops at its expiry and while
// invites are paused, and a visitor whose invite could not be minted
// costs the link nothing.
func TestEventExpiryPauseAndFailedMint(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{})
	admin := f.actor(t, eventAdmin)
	ev := f.event(t, eventAdmin, 2, time.Hour)

	f.issuer.err = errors.New("server down")
	if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); err == nil {
		t.Fatal("a visitor got an invite from a failing server")
	}
	if got, err := f.svc.LookupEvent(ctx, ev.ID); err != nil || got.Uses != 0 {
		t.Errorf("after a failed mint: %+v, %v; want the use given back", got, err)
	}
	f.issuer.err = nil

	if _, err := f.svc.Pause(ctx, admin, "spam wave"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.LookupEvent(ctx, ev.ID); !errors.Is(err, invites.ErrPaused) {
		t.Errorf("page while paused: %v, want ErrPaused", err)
	}
	if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); !errors.Is(err, invites.ErrPaused) {
		t.Errorf("visitor while paused: %v, want ErrPaused", err)
	}
	if err := f.svc.Resume(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); err != nil {
		t.Fatalf("visitor after resume: %v", err)
	}

	f.clock.advance(time.Hour)
	got, err := f.svc.LookupEvent(ctx, ev.ID)
	if !errors.Is(err, invites.ErrEventExpired) || got.State(f.clock.now()) != invites.EventExpired {
		t.Errorf("page at the expiry: %v, state %s", err, got.State(f.clock.now()))
	}
	if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); !errors.Is(err, invites.ErrEventExpired) {
		t.Errorf("visitor at the expiry: %v, want ErrEventExpired", err)
	}
	if _, err := f.svc.LookupEvent(ctx, "abcdefghijklmnop"); !errors.Is(err, invites.ErrNoSuchEvent) {
		t.Errorf("unknown link: %v", err)
	}
	if _, err := f.svc.LookupEvent(ctx, "../../etc/passwd"); !errors.Is(err, invites.ErrNoSuchEvent) {
		t.Errorf("malformed id: %v", err)
	}
	want := map[invites.EventOutcome]int{invites.EventUseFailed: 1, invites.EventUsePaused: 1, invites.EventUseMinted: 1, invites.EventUseExpired: 1}
	for o, n := range want {
		if f.counter.count(o) != n {
			t.Errorf("observed outcomes %v, want %v", f.counter.outcomes, want)
			break
		}
	}
}

// TestCloseEventCancelsUnusedInvites: closing a link stops it and cancels
// (and revokes at the server) the invites it handed out that are still
// pending; only the creator or an admin may close it; a revoked inviter's
// links close with their grant.
func TestCloseEventCancelsUnusedInvites(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{})
	f.grant(t, 5)
	carol := f.actor(t, eventInviter)
	ev := f.event(t, eventInviter, 5, time.Hour)
	first, err := f.svc.ClaimEventInvite(ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.ClaimEventInvite(ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	// One of them created an account already: closing leaves it alone.
	if _, err := f.st.SetInviteState(ctx, first.ID, store.StateUsed, "newbie@durare.test",
		store.AuditEntry{Actor: "system", Action: invites.ActionInviteUse}); err != nil {
		t.Fatal(err)
	}
	own, err := f.svc.Create(ctx, carol)
	if err != nil {
		t.Fatal(err)
	}

	if _, _, err := f.svc.Grant(ctx, f.actor(t, eventAdmin), "dave@elsewhere.test", invites.GrantOptions{Events: new(5)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CloseEvent(ctx, f.actor(t, "dave@elsewhere.test"), ev.ID); !errors.Is(err, invites.ErrNoSuchEvent) {
		t.Errorf("another inviter closing carol's link: %v, want ErrNoSuchEvent", err)
	}

	res, err := f.svc.CloseEvent(ctx, carol, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cancelled != 1 || res.StillValid != 0 || res.AlreadyClosed || res.Link.ClosedBy != eventInviter {
		t.Errorf("close: %+v", res)
	}
	if inv, _ := f.svc.Lookup(ctx, second.ID); inv.State != invites.StateCancelled || !inv.Revoked {
		t.Errorf("the unused invite after closing: %+v", inv)
	}
	if inv, _ := f.svc.Lookup(ctx, first.ID); inv.State != invites.StateUsed {
		t.Errorf("the used invite after closing: %+v", inv)
	}
	if inv, _ := f.svc.Lookup(ctx, own.ID); inv.State != invites.StatePending {
		t.Errorf("carol's own invite after closing her link: %+v", inv)
	}
	if len(f.issuer.deleted) != 1 || f.issuer.deleted[0] != "event-token-002" {
		t.Errorf("tokens deleted at the server: %v", f.issuer.deleted)
	}
	if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); !errors.Is(err, invites.ErrEventClosed) {
		t.Errorf("visitor of a closed link: %v, want ErrEventClosed", err)
	}
	again, err := f.svc.CloseEvent(ctx, f.actor(t, eventAdmin), ev.ID)
	if err != nil || !again.AlreadyClosed || again.Cancelled != 0 {
		t.Errorf("closing again: %+v, %v", again, err)
	}

	// Revoking carol closes her other link, and its invites go with hers.
	// (Her first link handed out 2 of her allowance of 5.)
	other := f.event(t, eventInviter, 3, time.Hour)
	if _, err := f.svc.ClaimEventInvite(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	rev, err := f.svc.Revoke(ctx, f.actor(t, eventAdmin), eventInviter)
	if err != nil || rev.Cancelled != 2 {
		t.Errorf("revoke: %+v, %v; want carol's own and the event invite cancelled", rev, err)
	}
	if _, err := f.svc.LookupEvent(ctx, other.ID); !errors.Is(err, invites.ErrEventClosed) {
		t.Errorf("a revoked inviter's link: %v, want ErrEventClosed", err)
	}
	if links, _ := f.svc.Events(ctx, f.actor(t, eventAdmin), eventInviter); len(links) != 2 || links[0].State(f.clock.now()) != invites.EventClosed {
		t.Errorf("carol's links after revoke: %+v", links)
	}
}

// TestEventClosedWhileMinting: a link closed while the server mints a
// visitor's token hands out nothing: the token is dropped unseen and the
// use given back.
func TestEventClosedWhileMinting(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{})
	gate := newMintGate(t, 1)
	f.issuer.gate = gate
	ev := f.event(t, eventAdmin, 3, time.Hour)
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.ClaimEventInvite(ctx, ev.ID)
		done <- err
	}()
	gate.wait(t, 1) // the server is minting the visitor's token now
	_, err := f.svc.CloseEvent(ctx, f.actor(t, eventAdmin), ev.ID)
	gate.open()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, invites.ErrEventClosed) {
		t.Errorf("visitor whose link closed while minting: %v, want ErrEventClosed", err)
	}
	invs, err := f.st.InvitesOfEvent(ctx, ev.ID)
	if err != nil || len(invs) != 0 {
		t.Errorf("invites of the link: %+v, %v; want none", invs, err)
	}
	if got, _ := f.svc.LookupEvent(ctx, ev.ID); got.Uses != 0 {
		t.Errorf("uses after the dropped mint: %d, want 0", got.Uses)
	}
}

// TestGrantEventsAllowance: an update sets, keeps (nil) or takes away (0)
// the event allowance, the audit log says which, a negative allowance
// changes nothing, and links made before the allowance went away keep
// working until they are closed.
func TestGrantEventsAllowance(t *testing.T) {
	ctx := context.Background()
	f := newEventFixture(t, policy.Limits{})
	admin := f.actor(t, eventAdmin)
	const terms = "per-day default, pending default"
	tests := []struct {
		name       string
		jid        string
		opts       invites.GrantOptions
		wantErr    bool
		wantEvents int
		wantDetail string // the grant's newest audit entry; "" for none written
	}{
		{name: "new grant without", jid: eventInviter, wantDetail: terms},
		{name: "set", jid: eventInviter, opts: invites.GrantOptions{Events: new(5)}, wantEvents: 5, wantDetail: "updated; " + terms + ", events 5"},
		{name: "left out keeps it", jid: eventInviter, opts: invites.GrantOptions{Note: "still"}, wantEvents: 5,
			wantDetail: "updated; " + terms + ", events 5; still"},
		{name: "negative", jid: eventInviter, opts: invites.GrantOptions{Events: new(-1)}, wantErr: true, wantEvents: 5},
		{name: "lowered", jid: eventInviter, opts: invites.GrantOptions{Events: new(2)}, wantEvents: 2, wantDetail: "updated; " + terms + ", events 2; still"},
		{name: "zero takes it away", jid: eventInviter, opts: invites.GrantOptions{Events: new(0)}, wantDetail: "updated; " + terms + ", events none; still"},
		{name: "left out keeps none", jid: eventInviter, wantDetail: "updated; " + terms + "; still"},
		{name: "new grant with none", jid: "dave@elsewhere.test", opts: invites.GrantOptions{Events: new(0)}, wantDetail: terms + ", events none"},
		{name: "new grant with some", jid: "erin@elsewhere.test", opts: invites.GrantOptions{Events: new(3)}, wantEvents: 3, wantDetail: terms + ", events 3"},
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
		if err == nil && g.Events != tc.wantEvents {
			t.Errorf("%s: returned grant has events %d, want %d", tc.name, g.Events, tc.wantEvents)
		}
		stored, err := f.st.Grant(ctx, tc.jid)
		if err != nil || stored.Events != tc.wantEvents {
			t.Errorf("%s: stored grant %+v, %v; want events %d", tc.name, stored, err, tc.wantEvents)
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

	// A link made while the allowance stood keeps admitting visitors after
	// it is gone (people may be in the room with it); no new one is made.
	f.grant(t, 5)
	ev := f.event(t, eventInviter, 3, time.Hour)
	f.grant(t, 0)
	carol := f.actor(t, eventInviter)
	if _, err := f.svc.CreateEvent(ctx, carol, invites.EventOptions{Uses: 1, Valid: time.Hour}); !errors.Is(err, invites.ErrEventsNotAllowed) {
		t.Errorf("a new link without the allowance: %v, want ErrEventsNotAllowed", err)
	}
	if _, err := f.svc.ClaimEventInvite(ctx, ev.ID); err != nil {
		t.Errorf("a visitor of the link made before: %v", err)
	}
}
