package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"durare.org/invitebot/store"
)

const (
	reqAdmin    = "admin@durare.test"
	reqApprover = "dora@elsewhere.test"
	reqInviter  = "carol@elsewhere.test"
)

// mintingIssuer mints predictable tokens; while gate is set, each Mint
// waits for it, so tests can hold approvals in the middle of minting.
type mintingIssuer struct {
	mu      sync.Mutex
	n       int
	gate    chan struct{}
	minting chan struct{} // receives once per Mint that started
}

func (m *mintingIssuer) Mint(ctx context.Context) (Minted, error) {
	if m.minting != nil {
		m.minting <- struct{}{}
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return Minted{}, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	tok := fmt.Sprintf("reqtoken%03d", m.n)
	return Minted{URI: "xmpp:durare.test?register;preauth=" + tok, Token: tok, Expires: time.Now().Add(7 * 24 * time.Hour)}, nil
}

// events records notifications as "to: type".
type events struct {
	mu   sync.Mutex
	sent []string
	evs  []Event
}

func (e *events) Notify(_ context.Context, to string, ev Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sent = append(e.sent, fmt.Sprintf("%s: %T", to, ev))
	e.evs = append(e.evs, ev)
	return nil
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.sent
	e.sent = nil
	return out
}

// counts is a RequestObserver.
type counts struct {
	mu                                  sync.Mutex
	received, approved, denied, expired int
	nopObserver
}

func (c *counts) RequestReceived() { c.mu.Lock(); c.received++; c.mu.Unlock() }
func (c *counts) RequestApproved() { c.mu.Lock(); c.approved++; c.mu.Unlock() }
func (c *counts) RequestDenied()   { c.mu.Lock(); c.denied++; c.mu.Unlock() }
func (c *counts) RequestExpired()  { c.mu.Lock(); c.expired++; c.mu.Unlock() }

type reqFixture struct {
	svc    *Service
	st     *store.Store
	iss    *mintingIssuer
	notes  *events
	counts *counts
	now    time.Time
	mu     sync.Mutex
}

func (f *reqFixture) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *reqFixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func newReqFixture(t *testing.T, o RequestOptions) *reqFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o.Enabled = true
	f := &reqFixture{st: st, iss: &mintingIssuer{}, notes: &events{}, counts: &counts{}, now: time.Now().UTC()}
	f.svc = NewService(Options{Store: st, Issuer: f.iss, Domain: "durare.test", Admins: map[string]bool{reqAdmin: true},
		Log: slog.New(slog.NewTextHandler(t.Output(), nil)), Notifier: f.notes, Observer: f.counts, Now: f.clock,
		Requests: o})
	admin := f.actor(t, reqAdmin)
	yes, no := true, false
	if _, _, err := f.svc.Grant(ctx, admin, reqApprover, GrantOptions{Requests: &yes, PerDay: new(1)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Grant(ctx, admin, reqInviter, GrantOptions{Requests: &no}); err != nil {
		t.Fatal(err)
	}
	f.notes.take()
	return f
}

func (f *reqFixture) actor(t *testing.T, who string) Actor {
	t.Helper()
	a, err := f.svc.Actor(context.Background(), who)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *reqFixture) submit(t *testing.T, name string) (string, Request) {
	t.Helper()
	key, err := f.svc.SubmitRequest(context.Background(), NewRequest{Name: name, Message: "I know Bob from the club"})
	if err != nil {
		t.Fatalf("SubmitRequest(%s): %v", name, err)
	}
	r, err := f.svc.RequestStatus(context.Background(), key)
	if err != nil {
		t.Fatalf("RequestStatus: %v", err)
	}
	return key, r
}

// TestRequestSubmitAndStatus: a request is stored in plain text, its
// approvers (admins and granted approvers, not plain inviters) are told,
// and only the exact key opens its status.
func TestRequestSubmitAndStatus(t *testing.T) {
	f := newReqFixture(t, RequestOptions{})
	ctx := context.Background()
	key, err := f.svc.SubmitRequest(ctx, NewRequest{Name: " Anna\u202e <b>x</b>\n", Contact: "xmpp:Anna@Example.ORG",
		Message: "line one\r\nline two\u0007"})
	if err != nil {
		t.Fatal(err)
	}
	if !ValidRequestKey(key) || len(key) != 42 {
		t.Fatalf("key %q", key)
	}
	r, err := f.svc.RequestStatus(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "Anna <b>x</b>" || r.Message != "line one line two" || r.Contact != "anna@example.org" ||
		r.State != RequestOpen || r.Outcome(f.clock()) != RequestOpen || !r.Expires.Equal(r.Created.Add(DefaultRequestExpiry)) {
		t.Errorf("stored request %+v", r)
	}
	got := strings.Join(f.notes.take(), "\n")
	want := reqAdmin + ": invites.RequestReceived\n" + reqApprover + ": invites.RequestReceived"
	if got != want {
		t.Errorf("notified\n%s\nwant\n%s", got, want)
	}
	if f.counts.received != 1 {
		t.Errorf("received counted %d times", f.counts.received)
	}
	// The id alone, a wrong secret, or garbage open nothing.
	wrong := key[:16] + strings.Repeat("a", len(key)-16)
	for _, k := range []string{key[:16], wrong, strings.ToUpper(key), key + "a", ""} {
		if _, err := f.svc.RequestStatus(ctx, k); !errors.Is(err, ErrNoSuchRequest) {
			t.Errorf("status of %q: %v, want ErrNoSuchRequest", k, err)
		}
	}
	// The requester's text stays out of the audit log.
	entries, _ := f.svc.Audit(ctx, f.actor(t, reqAdmin), r.ID, 10)
	if len(entries) != 1 || entries[0].Action != ActionRequestReceive || entries[0].Actor != "web" || entries[0].Detail != "" {
		t.Errorf("audit %+v", entries)
	}
}

func TestRequestValidation(t *testing.T) {
	f := newReqFixture(t, RequestOptions{})
	long := func(n int) string { return strings.Repeat("é", n) }
	for _, tt := range []struct {
		name string
		nr   NewRequest
	}{
		{"no name", NewRequest{Message: "hi"}},
		{"blank name", NewRequest{Name: "\u202e\n ", Message: "hi"}},
		{"no message", NewRequest{Name: "Anna"}},
		{"long name", NewRequest{Name: long(MaxRequestName + 1), Message: "hi"}},
		{"long message", NewRequest{Name: "Anna", Message: long(MaxRequestMessage + 1)}},
		{"contact not a JID", NewRequest{Name: "Anna", Message: "hi", Contact: "https://evil.example/x"}},
		{"contact a domain", NewRequest{Name: "Anna", Message: "hi", Contact: "example.org"}},
		{"contact with resource", NewRequest{Name: "Anna", Message: "hi", Contact: "a@example.org/phone"}},
	} {
		if _, err := f.svc.SubmitRequest(context.Background(), tt.nr); !errors.Is(err, ErrRequestInvalid) {
			t.Errorf("%s: %v, want ErrRequestInvalid", tt.name, err)
		}
	}
	if _, err := f.svc.SubmitRequest(context.Background(), NewRequest{Name: long(MaxRequestName), Message: long(MaxRequestMessage)}); err != nil {
		t.Errorf("fields at their limits: %v", err)
	}
}

// TestApproveRequest: the invite is the approver's (recorded, counted in
// their quota), the requester and the other approvers are told, and a
// later answer learns who answered.
func TestApproveRequest(t *testing.T) {
	f := newReqFixture(t, RequestOptions{})
	ctx := context.Background()
	key, _ := f.svc.SubmitRequest(ctx, NewRequest{Name: "Anna", Contact: "anna@example.org", Message: "hi"})
	r, _ := f.svc.RequestStatus(ctx, key)
	f.notes.take()

	dora := f.actor(t, reqApprover)
	answered, inv, err := f.svc.ApproveRequest(ctx, dora, r.ID)
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	if answered.State != RequestApproved || answered.AnsweredBy != reqApprover || answered.Invite != inv.ID {
		t.Errorf("answered %+v", answered)
	}
	if inv.Inviter != reqApprover || inv.Request != r.ID || inv.State != StatePending {
		t.Errorf("invite %+v", inv)
	}
	if st, _ := f.svc.RequestStatus(ctx, key); st.Invite != inv.ID || st.State != RequestApproved {
		t.Errorf("status after approval %+v", st)
	}
	if got := strings.Join(f.notes.take(), "\n"); got != "anna@example.org: invites.RequestDecided\n"+reqAdmin+": invites.RequestAnswered" {
		t.Errorf("told:\n%s", got)
	}
	// Counted in dora's quota (per-day 1): her own invite is refused now.
	var qe *QuotaError
	if _, err := f.svc.Create(ctx, dora); !errors.As(err, &qe) {
		t.Errorf("dora's own invite after approving: %v, want a quota refusal", err)
	}
	// A late answer learns who answered.
	late, _, err := f.svc.ApproveRequest(ctx, f.actor(t, reqAdmin), r.ID)
	if !errors.Is(err, ErrRequestAnswered) || late.AnsweredBy != reqApprover {
		t.Errorf("late approval: %+v, %v", late, err)
	}
	if _, err := f.svc.DenyRequest(ctx, f.actor(t, reqAdmin), r.ID, "no"); !errors.Is(err, ErrRequestAnswered) {
		t.Errorf("late denial: %v", err)
	}
	entries, _ := f.svc.Audit(ctx, f.actor(t, reqAdmin), r.ID, 10)
	if len(entries) != 2 || entries[0].Action != ActionRequestApprove || entries[0].Actor != reqApprover || entries[0].Detail != "invite "+inv.ID {
		t.Errorf("audit %+v", entries)
	}
	if f.counts.approved != 1 {
		t.Errorf("approved counted %d", f.counts.approved)
	}
}

// TestApproveRequestLimits: only approvers may answer; an approver over
// quota or a pause refuses the approval and the request stays open.
func TestApproveRequestLimits(t *testing.T) {
	f := newReqFixture(t, RequestOptions{})
	ctx := context.Background()
	_, r := f.submit(t, "Anna")
	if _, _, err := f.svc.ApproveRequest(ctx, f.actor(t, reqInviter), r.ID); !errors.Is(err, ErrForbidden) {
		t.Errorf("plain inviter approves: %v, want ErrForbidden", err)
	}
	if _, err := f.svc.Requests(ctx, f.actor(t, reqInviter)); !errors.Is(err, ErrForbidden) {
		t.Errorf("plain inviter lists: %v, want ErrForbidden", err)
	}
	dora := f.actor(t, reqApprover)
	if _, err := f.svc.Create(ctx, dora); err != nil {
		t.Fatal(err)
	}
	var qe *QuotaError
	if _, _, err := f.svc.ApproveRequest(ctx, dora, r.ID); !errors.As(err, &qe) {
		t.Errorf("approver over quota: %v, want QuotaError", err)
	}
	admin := f.actor(t, reqAdmin)
	if _, err := f.svc.Pause(ctx, admin, "spam"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.ApproveRequest(ctx, admin, r.ID); !errors.Is(err, ErrPaused) {
		t.Errorf("approval while paused: %v, want ErrPaused", err)
	}
	if open, _ := f.svc.Requests(ctx, admin); len(open) != 1 {
		t.Errorf("open after refused approvals: %+v", open)
	}
	if _, _, err := f.svc.ApproveRequest(ctx, admin, "nosuchrequestxxx"); !errors.Is(err, ErrNoSuchRequest) {
		t.Errorf("unknown request: %v", err)
	}
}

// TestFirstApprovalWins: two approvers approve at once, both minting; one
// wins, the other is told who, and only one invite is stored.
func TestFirstApprovalWins(t *testing.T) {
	f := newReqFixture(t, RequestOptions{})
	ctx := context.Background()
	_, r := f.submit(t, "Anna")
	f.iss.gate, f.iss.minting = make(chan struct{}), make(chan struct{}, 2)
	type result struct {
		who string
		r   Request
		err error
	}
	results := make(chan result, 2)
	for _, who := range []string{reqAdmin, reqApprover} {
		a := f.actor(t, who)
		go func() {
			ans, _, err := f.svc.ApproveRequest(ctx, a, r.ID)
			results <- result{who, ans, err}
		}()
	}
	<-f.iss.minting
	<-f.iss.minting
	close(f.iss.gate) // both are minting now
	var won, lost []result
	for range 2 {
		res := <-results
		if res.err == nil {
			won = append(won, res)
		} else {
			lost = append(lost, res)
		}
	}
	if len(won) != 1 || len(lost) != 1 || !errors.Is(lost[0].err, ErrRequestAnswered) || lost[0].r.AnsweredBy != won[0].who {
		t.Fatalf("won %+v, lost %+v", won, lost)
	}
	total := 0
	for _, who := range []string{reqAdmin, reqApprover} {
		invs, _ := f.st.InvitesByInviter(ctx, who)
		total += len(invs)
	}
	if total != 1 {
		t.Errorf("%d invites stored, want 1", total)
	}
}

// TestDenyBeatsSlowApproval: a denial while an approval is minting wins;
// the approval's invite is dropped.
func TestDenyBeatsSlowApproval(t *testing.T) {
	f := newReqFixture(t, RequestOptions{})
	ctx := context.Background()
	key, r := f.submit(t, "Anna")
	f.iss.gate, f.iss.minting = make(chan struct{}), make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, _, err := f.svc.ApproveRequest(ctx, f.actor(t, reqApprover), r.ID)
		done <- err
	}()
	<-f.iss.minting
	denied, err := f.svc.DenyRequest(ctx, f.actor(t, reqAdmin), r.ID, "  we\tdo not know you\u202e ")
	if err != nil || denied.Reason != "we do not know you" || denied.AnsweredBy != reqAdmin {
		t.Fatalf("deny: %+v, %v", denied, err)
	}
	close(f.iss.gate)
	if err := <-done; !errors.Is(err, ErrRequestAnswered) {
		t.Errorf("slow approval: %v, want ErrRequestAnswered", err)
	}
	if invs, _ := f.st.InvitesByInviter(ctx, reqApprover); len(invs) != 0 {
		t.Errorf("the losing approval stored %+v", invs)
	}
	st, _ := f.svc.RequestStatus(ctx, key)
	if st.State != RequestDenied || st.Reason != "we do not know you" {
		t.Errorf("status %+v", st)
	}
}

// TestRequestCapAndPause: past max_open the intake is closed (and says
// why), as it is while invites are paused.
func TestRequestCapAndPause(t *testing.T) {
	f := newReqFixture(t, RequestOptions{MaxOpen: 2})
	ctx := context.Background()
	f.submit(t, "one")
	if err := f.svc.RequestIntake(ctx); err != nil {
		t.Errorf("intake with one open: %v", err)
	}
	_, second := f.submit(t, "two")
	if err := f.svc.RequestIntake(ctx); !errors.Is(err, ErrRequestsFull) {
		t.Errorf("intake at the cap: %v", err)
	}
	if _, err := f.svc.SubmitRequest(ctx, NewRequest{Name: "three", Message: "hi"}); !errors.Is(err, ErrRequestsFull) {
		t.Errorf("submit at the cap: %v", err)
	}
	if _, err := f.svc.DenyRequest(ctx, f.actor(t, reqAdmin), second.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RequestIntake(ctx); err != nil {
		t.Errorf("intake after a denial: %v", err)
	}
	if _, err := f.svc.Pause(ctx, f.actor(t, reqAdmin), "spam wave"); err != nil {
		t.Fatal(err)
	}
	var pe *PausedError
	if err := f.svc.RequestIntake(ctx); !errors.As(err, &pe) || pe.Reason != "spam wave" {
		t.Errorf("intake while paused: %v", err)
	}
	if _, err := f.svc.SubmitRequest(ctx, NewRequest{Name: "four", Message: "hi"}); !errors.Is(err, ErrPaused) {
		t.Errorf("submit while paused: %v", err)
	}
}

func TestRequestsOff(t *testing.T) {
	f := newReqFixture(t, RequestOptions{})
	f.svc.requests.Enabled = false
	if err := f.svc.RequestIntake(context.Background()); !errors.Is(err, ErrRequestsOff) {
		t.Errorf("intake: %v", err)
	}
	if _, err := f.svc.SubmitRequest(context.Background(), NewRequest{Name: "x", Message: "y"}); !errors.Is(err, ErrRequestsOff) {
		t.Errorf("submit: %v", err)
	}
}

// TestRequestExpiry: past expire_after a request reads expired at once,
// cannot be answered, and the sweep marks it so.
func TestRequestExpiry(t *testing.T) {
	f := newReqFixture(t, RequestOptions{ExpireAfter: time.Hour})
	ctx := context.Background()
	key, r := f.submit(t, "Anna")
	f.notes.take()
	f.advance(time.Hour)
	st, _ := f.svc.RequestStatus(ctx, key)
	if st.State != RequestOpen || st.Outcome(f.clock()) != RequestExpired {
		t.Errorf("lapsed, before the sweep: %+v", st)
	}
	admin := f.actor(t, reqAdmin)
	if open, _ := f.svc.Requests(ctx, admin); len(open) != 0 {
		t.Errorf("lapsed request listed: %+v", open)
	}
	if _, _, err := f.svc.ApproveRequest(ctx, admin, r.ID); !errors.Is(err, ErrRequestAnswered) {
		t.Errorf("approving a lapsed request: %v", err)
	}
	if err := f.svc.CheckPending(ctx); err != nil { // no invites, so no server needed
		t.Fatal(err)
	}
	st, _ = f.svc.RequestStatus(ctx, key)
	if st.State != RequestExpired || f.counts.expired != 1 {
		t.Errorf("after the sweep: %+v, %d counted", st, f.counts.expired)
	}
	if len(f.notes.take()) != 0 {
		t.Error("an expiry sent a message")
	}
}

// TestGrantRequestsFlag: the flag makes an approver, is kept when a grant
// is updated without it, is audited when set, and the holder is told.
func TestGrantRequestsFlag(t *testing.T) {
	f := newReqFixture(t, RequestOptions{})
	ctx := context.Background()
	admin := f.actor(t, reqAdmin)
	if a := f.actor(t, reqApprover); a.Role().String() != "approver" {
		t.Errorf("dora is %s", a.Role())
	}
	if _, _, err := f.svc.Grant(ctx, admin, reqApprover, GrantOptions{Note: "still"}); err != nil {
		t.Fatal(err)
	}
	if a := f.actor(t, reqApprover); a.Role().String() != "approver" {
		t.Errorf("after an update without the flag dora is %s", a.Role())
	}
	yes := true
	g, _, err := f.svc.Grant(ctx, admin, reqInviter, GrantOptions{Requests: &yes})
	if err != nil || !g.Requests {
		t.Fatalf("grant requests yes: %+v, %v", g, err)
	}
	if got := f.notes.take(); len(got) != 1 || got[0] != reqInviter+": invites.RequestsGranted" {
		t.Errorf("told %q", got)
	}
	entries, _ := f.svc.Audit(ctx, admin, reqInviter, 1)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Detail, ", requests yes") {
		t.Errorf("audit %+v", entries)
	}
}
