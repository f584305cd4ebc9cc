package bot

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

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

const (
	admin    = "admin@durare.test"
	inviter  = "carol@elsewhere.test"
	stranger = "mallory@elsewhere.test"
)

// fakeIssuer mints predictable invites, or fails with err, and deletes
// tokens like a server with a deletion command.
type fakeIssuer struct {
	mu        sync.Mutex
	n         int
	err       error
	deleteErr error
	deleted   []string
}

func (f *fakeIssuer) Revocation() invites.Revocation { return invites.RevokeByDeletion }

func (f *fakeIssuer) Delete(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleteErr != nil {
		return f.deleteErr
	}
	f.deleted = append(f.deleted, token)
	return nil
}

func (f *fakeIssuer) Mint(context.Context) (invites.Minted, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return invites.Minted{}, f.err
	}
	f.n++
	tok := fmt.Sprintf("token%03d", f.n)
	return invites.Minted{
		URI:     "xmpp:durare.test?register;preauth=" + tok,
		Token:   tok,
		Expires: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
	}, nil
}

// fakeClock is a settable clock for rate-limit tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	bot    *Bot
	store  *store.Store
	issuer *fakeIssuer
	clock  *fakeClock
	notes  *recordingNotifier
}

// recordingNotifier keeps the notifications the service sends.
type recordingNotifier struct {
	mu   sync.Mutex
	sent []string // "to: text"
}

func (n *recordingNotifier) Notify(_ context.Context, to string, ev invites.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, to+": "+eventText(ev))
	return nil
}

// actor resolves a bare JID the way the bot does for each request.
func (f *fixture) actor(t *testing.T, bare string) invites.Actor {
	t.Helper()
	a, err := f.bot.svc.Actor(context.Background(), bare)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (n *recordingNotifier) all() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.sent, "\n")
}

// newFixture is a bot over a fresh store and a fake issuer; opts adjust
// the service's options.
func newFixture(t *testing.T, opts ...func(*invites.Options)) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	iss := &fakeIssuer{}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	notes := &recordingNotifier{}
	o := invites.Options{Store: st, Issuer: iss, Domain: "durare.test",
		Admins: map[string]bool{admin: true}, Now: clock.now, Log: log, Notifier: notes}
	for _, opt := range opts {
		opt(&o)
	}
	svc := invites.NewService(o)
	b := New(Config{Service: svc, Component: jid.MustParse("invites.durare.test"), Log: log, Now: clock.now})
	return &fixture{bot: b, store: st, issuer: iss, clock: clock, notes: notes}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// say runs one chat command and returns the reply ("" and false when the
// bot stays silent).
func (f *fixture) say(t *testing.T, actor, body string) (string, bool) {
	t.Helper()
	res, ok := f.bot.serveChat(context.Background(), actor, body)
	return res.text, ok
}

func (f *fixture) mustSay(t *testing.T, actor, body string) string {
	t.Helper()
	text, ok := f.say(t, actor, body)
	if !ok {
		t.Fatalf("%s: %q got no reply", actor, body)
	}
	return text
}

func TestSplitCommand(t *testing.T) {
	tests := []struct{ in, name, rest string }{
		{"invite", "invite", ""},
		{"  INVITE  ", "invite", ""},
		{"Grant bob@x.org  friend of carol ", "grant", "bob@x.org  friend of carol"},
		{"cancel\tabc", "cancel", "abc"},
		{"", "", ""},
	}
	for _, tc := range tests {
		name, rest := splitCommand(tc.in)
		if name != tc.name || rest != tc.rest {
			t.Errorf("splitCommand(%q) = %q, %q; want %q, %q", tc.in, name, rest, tc.name, tc.rest)
		}
	}
}

func TestBindArgs(t *testing.T) {
	ops := make(map[string]operation)
	for _, op := range operations() {
		ops[op.name] = op
	}
	tests := []struct {
		op, rest string
		want     map[string]string
		wantErr  string
	}{
		{op: "grant", rest: "Bob@Example.ORG", want: map[string]string{"jid": "bob@example.org"}},
		{op: "grant", rest: "bob@example.org met at FOSDEM", want: map[string]string{"jid": "bob@example.org", "note": "met at FOSDEM"}},
		{op: "grant", rest: "", wantErr: "missing <jid>: JID to grant"},
		{op: "grant", rest: "bob@example.org Note :  met at FOSDEM", want: map[string]string{"jid": "bob@example.org", "note": "met at FOSDEM"}},
		{op: "grant", rest: "bob@example.org/phone", wantErr: "not a bare JID"},
		{op: "grant", rest: "example.org", wantErr: "not a bare JID"},
		{op: "grant", rest: "bob@example.org " + strings.Repeat("x", maxTextParam+1), wantErr: "longer than"},
		{op: "revoke", rest: "a@b c@d", wantErr: "too many arguments"},
		{op: "cancel", rest: "not-an-id", wantErr: "not an invite id"},
		{op: "invite", rest: "now please", wantErr: "invite takes no arguments: send just invite"},
		{op: "invite", rest: "", want: map[string]string{}},
	}
	for _, tc := range tests {
		got, err := bindArgs(ops[tc.op], policy.Inviter, tc.rest)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("bindArgs(%s, %q) error = %v, want %q", tc.op, tc.rest, err, tc.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("bindArgs(%s, %q) = %v, %v; want %v", tc.op, tc.rest, got, err, tc.want)
		}
	}
}

func TestInviteIsStoredBeforeReply(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter)
	reply := f.mustSay(t, inviter, "  Invite ")

	invs, err := f.store.InvitesByInviter(context.Background(), inviter)
	if err != nil || len(invs) != 1 {
		t.Fatalf("stored invites = %v, %v; want 1", invs, err)
	}
	inv := invs[0]
	lines := strings.Split(reply, "\n")
	if !contains(lines, inv.URI) {
		t.Errorf("reply has no line that is exactly the URI %q:\n%s", inv.URI, reply)
	}
	for _, want := range []string{"cancel " + inv.ID, "2026-12-01 10:00 UTC", "single use"} {
		if !strings.Contains(reply, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply)
		}
	}
	if inv.State != store.StatePending || inv.Token != "token001" || inv.Domain != "durare.test" {
		t.Errorf("stored invite = %+v", inv)
	}
	entries, err := f.store.Audit(context.Background(), inviter, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 || entries[0].Action != invites.ActionInviteCreate || entries[0].Subject != inv.ID {
		t.Errorf("newest audit entry about %s = %+v, want invite.create of %s", inviter, entries, inv.ID)
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func TestChatPermissions(t *testing.T) {
	f := newFixture(t)
	if got := f.mustSay(t, stranger, "help"); strings.Contains(got, "invite:") || strings.Contains(got, "grant") {
		t.Errorf("stranger's help lists commands they cannot run:\n%s", got)
	}
	if got := f.mustSay(t, admin, "help"); !strings.Contains(got, "grant <jid> [per-day N|default] [pending N|default] [requests yes|no] [events N|none] [note]") || !strings.Contains(got, "inviters") {
		t.Errorf("admin's help lacks admin commands:\n%s", got)
	}
	if got := f.mustSay(t, inviter, "grant bob@example.org"); !strings.Contains(got, "may not") {
		t.Errorf("stranger granting got %q", got)
	}
	f.mustSay(t, admin, "grant "+inviter+" met at the meetup")
	if got := f.mustSay(t, inviter, "help"); !strings.Contains(got, "invite:") || strings.Contains(got, "grant") {
		t.Errorf("inviter's help:\n%s", got)
	}
	if got := f.mustSay(t, inviter, "grant bob@example.org"); !strings.Contains(got, "may not use grant") {
		t.Errorf("inviter granting got %q", got)
	}
	if got := f.mustSay(t, admin, "inviters"); !strings.Contains(got, inviter) || !strings.Contains(got, "met at the meetup") {
		t.Errorf("inviters:\n%s", got)
	}
	if got := f.mustSay(t, admin, "revoke "+inviter); !strings.Contains(got, "no longer") {
		t.Errorf("revoke got %q", got)
	}
	if got := f.mustSay(t, admin, "revoke "+inviter); !strings.Contains(got, "is not an inviter") {
		t.Errorf("second revoke got %q", got)
	}
	// Revoked: back to a stranger. The refusal for "grant" above used up
	// this hour's answer, so wait it out.
	f.clock.advance(time.Hour)
	if got := f.mustSay(t, inviter, "invite"); !strings.Contains(got, "may not use invite") {
		t.Errorf("revoked inviter got %q", got)
	}
	if f.issuer.n != 0 {
		t.Errorf("issuer minted %d invites, want 0", f.issuer.n)
	}
}

func TestStrangerRefusalsAreRateLimited(t *testing.T) {
	f := newFixture(t)
	if got := f.mustSay(t, stranger, "invite"); !strings.Contains(got, "may not use invite") {
		t.Fatalf("first refusal = %q", got)
	}
	for _, body := range []string{"invite", "grant me@x.org", "frobnicate", strings.Repeat("a", maxBodyBytes+1)} {
		if got, ok := f.say(t, stranger, body); ok {
			t.Errorf("second refusal within the hour for %.20q: %q", body, got)
		}
	}
	// help is answered once a minute.
	f.mustSay(t, stranger, "help")
	if _, ok := f.say(t, stranger, "help"); ok {
		t.Error("second help within a minute answered")
	}
	f.clock.advance(time.Hour)
	if got := f.mustSay(t, stranger, "frobnicate"); !strings.Contains(got, "Unknown command") {
		t.Errorf("refusal after an hour = %q", got)
	}
	// Refusals are audited, once per answer.
	entries, err := f.store.Audit(context.Background(), stranger, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("audit entries about stranger = %d, want 2: %+v", len(entries), entries)
	}
}

func TestTooLongAndUnknown(t *testing.T) {
	f := newFixture(t)
	if got := f.mustSay(t, admin, strings.Repeat("x", maxBodyBytes+1)); got != "Too long: a command is at most 4096 bytes." {
		t.Errorf("long body got %q", got)
	}
	if got := f.mustSay(t, admin, "invite"+strings.Repeat(" ", maxBodyBytes)); got != "Too long: a command is at most 4096 bytes." {
		t.Errorf("long body got %q", got)
	}
	if got := f.mustSay(t, admin, "Frobnicate now"); got != `Unknown command "frobnicate". Send help to see what you can do.` {
		t.Errorf("unknown command got %q", got)
	}
	if _, ok := f.say(t, admin, "   "); ok {
		t.Error("blank body got a reply")
	}
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter)
	f.mustSay(t, admin, "grant dave@elsewhere.test")
	f.mustSay(t, inviter, "invite")
	invs, _ := f.store.InvitesByInviter(context.Background(), inviter)
	id := invs[0].ID

	if got := f.mustSay(t, "dave@elsewhere.test", "cancel "+id); !strings.Contains(got, "No such invite") {
		t.Errorf("cancelling someone else's invite: %q", got)
	}
	if got := f.mustSay(t, inviter, "cancel "+strings.ToUpper(id)); got != "Invite "+id+" is cancelled; its link no longer works." {
		t.Errorf("cancel own: %q", got)
	}
	if len(f.issuer.deleted) != 1 || f.issuer.deleted[0] != invs[0].Token {
		t.Errorf("tokens deleted at the server: %q, want the cancelled invite's", f.issuer.deleted)
	}
	if got := f.mustSay(t, inviter, "cancel "+id); got != "Invite "+id+" is already cancelled." {
		t.Errorf("cancel twice: %q", got)
	}
	if got := f.mustSay(t, inviter, "invites"); !strings.Contains(got, id+"  cancelled") {
		t.Errorf("invites list: %q", got)
	}
	f.clock.advance(time.Minute) // so "newest first" has a newest
	f.mustSay(t, inviter, "invite")
	invs, _ = f.store.InvitesByInviter(context.Background(), inviter)
	if got := f.mustSay(t, admin, "cancel "+invs[0].ID); !strings.Contains(got, "is cancelled") {
		t.Errorf("admin cancelling any invite: %q", got)
	}
	if got := f.mustSay(t, inviter, "cancel"); !strings.Contains(got, "Usage: cancel <id>") {
		t.Errorf("cancel without id: %q", got)
	}
}

func TestIssuerFailuresGetShortAnswers(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("mint: %w", invites.ErrIssuerForbidden), msgIssuerRefuse},
		{fmt.Errorf("mint: %w", invites.ErrIssuerUnsupported), msgIssuerRefuse},
		{fmt.Errorf("mint: %w", ErrLinkDown), msgUnavailable},
		{errors.New("boom"), msgInternal},
	}
	for _, tc := range tests {
		f := newFixture(t)
		f.issuer.err = tc.err
		if got := f.mustSay(t, admin, "invite"); got != tc.want {
			t.Errorf("issuer error %v: reply %q, want %q", tc.err, got, tc.want)
		}
		if invs, _ := f.store.InvitesByInviter(context.Background(), admin); len(invs) != 0 {
			t.Errorf("issuer error %v: %d invites stored", tc.err, len(invs))
		}
	}
}

func TestReplyLimiterBoundsMemory(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	l := newReplyLimiter(time.Hour, clock.now)
	for i := range maxTrackedJIDs {
		if !l.allow(fmt.Sprintf("u%d@x", i)) {
			t.Fatalf("entry %d refused", i)
		}
	}
	if l.allow("one-more@x") {
		t.Error("limiter grew past its bound while all entries are recent")
	}
	clock.advance(time.Hour)
	if !l.allow("one-more@x") {
		t.Error("limiter did not sweep stale entries")
	}
	if len(l.last) != 1 {
		t.Errorf("after sweep %d entries, want 1", len(l.last))
	}
}

func TestStrangerAuditBudget(t *testing.T) {
	f := newFixture(t)
	for i := range strangerAuditsPerHour + 50 {
		f.say(t, fmt.Sprintf("s%d@spam.example", i), "invite")
	}
	entries, _ := f.store.Audit(context.Background(), "", 1000)
	if len(entries) != strangerAuditsPerHour {
		t.Errorf("%d audit entries from a flood of strangers, want %d", len(entries), strangerAuditsPerHour)
	}
	f.clock.advance(time.Hour)
	f.say(t, "late@spam.example", "invite")
	entries, _ = f.store.Audit(context.Background(), "system", 10)
	if len(entries) != 1 || !strings.Contains(entries[0].Detail, "50 refusals") {
		t.Errorf("summary entry = %+v, want one saying 50 were left out", entries)
	}
}

func TestBindArgsKeywordsAndFallback(t *testing.T) {
	ops := make(map[string]operation)
	for _, op := range operations() {
		ops[op.name] = op
	}
	tests := []struct {
		op, rest string
		want     string
		wantErr  string
	}{
		{op: "grant", rest: "bob@x.org per-day 3 pending 2 a friend", want: "map[jid:bob@x.org note:a friend pending:2 per-day:3]"},
		{op: "grant", rest: "bob@x.org PENDING 4", want: "map[jid:bob@x.org pending:4]"},
		{op: "grant", rest: "bob@x.org per-day", wantErr: "per-day needs a value"},
		{op: "grant", rest: "bob@x.org per-day 0", wantErr: "per-day must be at least 1; for the configured default, write default"},
		{op: "grant", rest: "bob@x.org pending 0", wantErr: "pending must be at least 1; for the configured default, write default"},
		{op: "grant", rest: "bob@x.org per-day default", want: "map[jid:bob@x.org per-day:default]"},
		{op: "grant", rest: "bob@x.org PER-DAY Default pending DEFAULT back to normal", want: "map[jid:bob@x.org note:back to normal pending:default per-day:default]"},
		{op: "grant", rest: "bob@x.org pending default per-day 2", want: "map[jid:bob@x.org pending:default per-day:2]"},
		{op: "grant", rest: "bob@x.org per-day -1", wantErr: `per-day must be a number from 1 to 1000, or default, not "-1"`},
		{op: "grant", rest: "bob@x.org pending lots", wantErr: `pending must be a number from 1 to 1000, or default, not "lots"`},
		{op: "grant", rest: "bob@x.org per-day 1001", wantErr: "or default"},
		{op: "grant", rest: "bob@x.org per-day none", wantErr: `or default, not "none"`},
		{op: "grant", rest: "bob@x.org events 20", want: "map[events:20 jid:bob@x.org]"},
		{op: "grant", rest: "bob@x.org events none", want: "map[events:0 jid:bob@x.org]"},
		{op: "grant", rest: "bob@x.org EVENTS None", want: "map[events:0 jid:bob@x.org]"},
		{op: "grant", rest: "bob@x.org events 0 no more workshops", want: "map[events:0 jid:bob@x.org note:no more workshops]"},
		{op: "grant", rest: "bob@x.org events -1", wantErr: `events must be a number from 1 to 1000, or none, not "-1"`},
		{op: "grant", rest: "bob@x.org events lots", wantErr: `events must be a number from 1 to 1000, or none, not "lots"`},
		{op: "grant", rest: "bob@x.org events 1001", wantErr: "or none"},
		{op: "grant", rest: "bob@x.org events", wantErr: "events needs a value"},
		{op: "audit", rest: "", want: "map[]"},
		{op: "audit", rest: "50", want: "map[n:50]"},
		{op: "audit", rest: "Carol@X.org 5", want: "map[about:carol@x.org n:5]"},
		{op: "audit", rest: "abcdefghijklmnop", want: "map[about:abcdefghijklmnop]"},
		{op: "audit", rest: "nonsense", wantErr: "must be a number"},
		{op: "invites", rest: "carol@x.org", want: "map[jid:carol@x.org]"},
	}
	for _, tc := range tests {
		got, err := bindArgs(ops[tc.op], policy.Admin, tc.rest)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("bindArgs(%s, %q) error = %v, want %q", tc.op, tc.rest, err, tc.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("bindArgs(%s, %q) = %v, %v; want %v", tc.op, tc.rest, got, err, tc.want)
		}
	}
	// Admin-only parameters do not exist for inviters.
	if _, err := bindArgs(ops["invites"], policy.Inviter, "carol@x.org"); err == nil {
		t.Error("an inviter could name someone else's invites")
	}
}

func TestQuotasHoldUnderConcurrency(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter+" per-day 5 pending 50")
	var wg sync.WaitGroup
	replies := make(chan string, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text, _ := f.say(t, inviter, "invite")
			replies <- text
		}()
	}
	wg.Wait()
	close(replies)
	var ok, refused int
	for r := range replies {
		switch {
		case strings.Contains(r, "preauth="):
			ok++
		case strings.Contains(r, "No invite: you have created 5 invites in the last 24 hours (cancelled ones count too); your limit is 5") && strings.Contains(r, "next possible"):
			refused++
		default:
			t.Errorf("unexpected reply %q", r)
		}
	}
	invs, _ := f.store.InvitesByInviter(context.Background(), inviter)
	if ok != 5 || refused != 45 || len(invs) != 5 {
		t.Errorf("%d invites handed out, %d refused, %d stored; want 5, 45, 5", ok, refused, len(invs))
	}
	// Admins are not limited.
	for range 6 {
		if got := f.mustSay(t, admin, "invite"); !strings.Contains(got, "preauth=") {
			t.Fatalf("admin refused: %q", got)
		}
	}
}

func TestPendingAndGlobalLimits(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter+" pending 2")
	f.mustSay(t, admin, "grant dave@elsewhere.test")
	f.mustSay(t, inviter, "invite")
	f.mustSay(t, inviter, "invite")
	got := f.mustSay(t, inviter, "invite")
	if !strings.Contains(got, "you have 2 pending invites; your limit is 2") || !strings.Contains(got, "next possible 2026-12-01 10:00 UTC") {
		t.Errorf("pending limit reply %q", got)
	}
	invs, _ := f.store.InvitesByInviter(context.Background(), inviter)
	f.mustSay(t, inviter, "cancel "+invs[0].ID)
	if got := f.mustSay(t, inviter, "invite"); !strings.Contains(got, "preauth=") {
		t.Errorf("after cancelling one, still refused: %q", got)
	}
	entries, _ := f.store.Audit(context.Background(), inviter, 50)
	var refusals int
	for _, e := range entries {
		if e.Action == invites.ActionInviteRefuse && strings.Contains(e.Detail, "pending") {
			refusals++
		}
	}
	if refusals != 1 {
		t.Errorf("audit has %d pending-limit refusals, want 1", refusals)
	}
}

func TestPauseAndResume(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter)
	if got := f.mustSay(t, inviter, "pause"); !strings.Contains(got, "may not use pause") {
		t.Errorf("inviter pausing: %q", got)
	}
	f.mustSay(t, admin, "pause spam wave from example.net")
	for _, who := range []string{inviter, admin} {
		if got := f.mustSay(t, who, "invite"); got != "Invites are paused: spam wave from example.net" {
			t.Errorf("%s while paused: %q", who, got)
		}
	}
	// The switch is in the database, not in this process.
	if p, err := f.store.Pause(context.Background()); err != nil || !p.Paused || p.By != admin {
		t.Errorf("stored pause = %+v, %v", p, err)
	}
	f.mustSay(t, admin, "resume")
	if got := f.mustSay(t, inviter, "invite"); !strings.Contains(got, "preauth=") {
		t.Errorf("after resume: %q", got)
	}
	audit := f.mustSay(t, admin, "audit 10")
	for _, want := range []string{"pause", "resume", "invite.refuse", "invite.create", "grant"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
}

func TestRevokeCancelsPendingInvites(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter)
	f.mustSay(t, inviter, "invite")
	f.mustSay(t, inviter, "invite")
	got := f.mustSay(t, admin, "revoke "+inviter)
	if !strings.Contains(got, "Cancelled 2 pending invites; none of their links works any more.") {
		t.Errorf("revoke reply %q", got)
	}
	if len(f.issuer.deleted) != 2 {
		t.Errorf("%d tokens deleted at the server, want 2", len(f.issuer.deleted))
	}
	list := f.mustSay(t, admin, "invites "+inviter)
	if strings.Count(list, "cancelled") != 2 {
		t.Errorf("admin's view of the revoked inviter's invites:\n%s", list)
	}
	if got := f.mustSay(t, admin, "whoinvited nobody@durare.test"); !strings.Contains(got, "No record") {
		t.Errorf("whoinvited unknown: %q", got)
	}
}

func TestInviteLinksToTheBotsPage(t *testing.T) {
	f := newFixture(t)
	f.bot.links = func(id string) (string, string) {
		return "https://invites.durare.test/i/" + id, "https://invites.durare.test/i/" + id + "/qr.png"
	}
	res, ok := f.bot.serveChat(context.Background(), admin, "invite")
	if !ok {
		t.Fatal("no reply")
	}
	invs, _ := f.store.InvitesByInviter(context.Background(), admin)
	id := invs[0].ID
	if !strings.Contains(res.text, "https://invites.durare.test/i/"+id) {
		t.Errorf("reply lacks the landing page:\n%s", res.text)
	}
	if res.image != "https://invites.durare.test/i/"+id+"/qr.png" {
		t.Errorf("image = %q", res.image)
	}
	if got := res.form.Value("landing-url"); got != "https://invites.durare.test/i/"+id {
		t.Errorf("ad-hoc landing-url = %q, want the bot's page", got)
	}
}

func TestGrantUpdatesKeepWhatIsNotGiven(t *testing.T) {
	f := newFixture(t)
	if got := f.mustSay(t, admin, "grant "+inviter+" per-day 1 pending 2 trusted friend"); got != inviter+" may now create invites (per-day 1, pending 2)." {
		t.Errorf("first grant: %q", got)
	}
	if got := f.mustSay(t, admin, "grant "+inviter); got != "Updated the grant of "+inviter+": per-day 1, pending 2." {
		t.Errorf("second grant: %q", got)
	}
	f.mustSay(t, admin, "grant "+inviter+" per-day 4")
	g, err := f.store.Grant(context.Background(), inviter)
	if err != nil || g.PerDay != 4 || g.MaxPending != 2 || g.Note != "trusted friend" {
		t.Errorf("grant after updates = %+v, %v", g, err)
	}
	if got := f.mustSay(t, admin, "inviters"); !strings.Contains(got, "per-day 4, pending 2 (trusted friend)") {
		t.Errorf("inviters does not show the limits:\n%s", got)
	}
	// Only the first grant is news to the inviter; revoking is too.
	f.mustSay(t, admin, "revoke "+inviter)
	notes := f.notes.all()
	if strings.Count(notes, inviter+": You may now create account invites") != 1 ||
		!strings.Contains(notes, inviter+": Your right to create invites for durare.test was revoked; none of your invites was still pending") {
		t.Errorf("notifications:\n%s", notes)
	}
}

func TestPauseTwiceAndResumeUnpaused(t *testing.T) {
	f := newFixture(t)
	if got := f.mustSay(t, admin, "resume"); got != "Invites were not paused." {
		t.Errorf("resume while running: %q", got)
	}
	f.mustSay(t, admin, "pause spam wave")
	if got := f.mustSay(t, admin, "pause"); !strings.Contains(got, "reason: spam wave") {
		t.Errorf("bare pause while paused lost the reason: %q", got)
	}
	if got := f.mustSay(t, admin, "pause bots from example.net"); !strings.Contains(got, "reason: bots from example.net") {
		t.Errorf("new reason: %q", got)
	}
	entries, _ := f.store.Audit(context.Background(), admin, 20)
	var pauses, resumes int
	for _, e := range entries {
		switch e.Action {
		case invites.ActionPause:
			pauses++
		case invites.ActionResume:
			resumes++
		}
	}
	if pauses != 2 || resumes != 0 {
		t.Errorf("audit has %d pause and %d resume entries, want 2 and 0", pauses, resumes)
	}
}

// FuzzBindArgs: no chat line makes the parser panic, and whatever it
// accepts is valid for the parameter it was bound to.
func FuzzBindArgs(f *testing.F) {
	for _, s := range []string{"bob@x.org per-day 3 pending 2 note", "per-day", "50", "a@b c@d e", "\t\n", "Ünïcödé@例え.jp"} {
		f.Add(s)
	}
	ops := operations()
	f.Fuzz(func(t *testing.T, rest string) {
		for _, op := range ops {
			args, err := bindArgs(op, policy.Admin, rest)
			if err != nil {
				continue
			}
			for _, p := range op.params {
				v, ok := args[p.name]
				if !ok {
					continue
				}
				if again, err := parseParam(p, v); err != nil || again != v {
					t.Fatalf("%s: %s=%q is not a fixed point of its parser (%q, %v)", op.name, p.name, v, again, err)
				}
			}
		}
	})
}
