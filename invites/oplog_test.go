package invites

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// syncBuffer is a log sink the service may write to from several
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines returns the lines of logs holding every one of want.
func logLines(logs string, want ...string) []string {
	var out []string
next:
	for _, line := range strings.Split(logs, "\n") {
		for _, w := range want {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// newLoggedService is a service over a fresh store whose log, at info,
// goes to the returned buffer.
func newLoggedService(t *testing.T, lim policy.Limits, now *time.Time) (*Service, *store.Store, *syncBuffer) {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &syncBuffer{}
	clock := func() time.Time { return *now }
	svc := NewService(Options{
		Store: st, Issuer: &countingIssuer{now: clock}, Domain: "durare.org", Admins: map[string]bool{"admin@durare.org": true},
		Now: clock, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Limits: lim,
	})
	return svc, st, logs
}

// TestRefusalsLogged: a quota refusal is logged at info with actor,
// operation and reason, within the refusal budget the audit log uses, so a
// flood writes a few lines and then one summary.
func TestRefusalsLogged(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	svc, st, logs := newLoggedService(t, policy.Limits{PerDay: 1, MaxPending: 5, GlobalPerDay: 100}, &now)
	const alice = "alice@x.org"
	if err := st.PutGrant(ctx, store.Grant{JID: alice, GrantedBy: "admin@durare.org"}, store.AuditEntry{Actor: "admin@durare.org", Action: ActionGrant}); err != nil {
		t.Fatal(err)
	}
	a, err := svc.Actor(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := svc.Create(ctx, a); err == nil {
			t.Fatal("second invite of the day was not refused")
		}
	}
	lines := logLines(logs.String(), "level=INFO", "refused", "actor="+alice, "operation=invite.create", `reason="quota per-day"`)
	if len(lines) != refusalsAuditedPerActor {
		t.Errorf("%d refusal lines, want %d (the budget):\n%s", len(lines), refusalsAuditedPerActor, logs.String())
	}
	// The next window summarises what went unlogged.
	now = now.Add(refusalWindow)
	if _, err := svc.Create(ctx, a); err == nil {
		t.Fatal("not refused after the window")
	}
	if got := logLines(logs.String(), "level=INFO", "actor="+alice, "15 more refusals"); len(got) != 1 {
		t.Errorf("no summary of the unlogged refusals:\n%s", logs.String())
	}

	// A refusal the front end records (a stranger's command) is logged too.
	svc.RecordRefusal(ctx, "stranger@y.org", "no rights for invite")
	if got := logLines(logs.String(), "level=INFO", "refused", "actor=stranger@y.org", `reason="no rights for invite"`); len(got) != 1 {
		t.Errorf("a recorded refusal is not in the log:\n%s", logs.String())
	}
}

// TestGrantLogShowsEffectiveLimits: the grant line says what limits the
// inviter has, naming the default where the grant has none of its own.
func TestGrantLogShowsEffectiveLimits(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	svc, _, logs := newLoggedService(t, policy.Limits{PerDay: 3, MaxPending: 7}, &now)
	admin, err := svc.Actor(ctx, "admin@durare.org")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Grant(ctx, admin, "bob@y.org", GrantOptions{MaxPending: new(4)}); err != nil {
		t.Fatal(err)
	}
	if got := logLines(logs.String(), "msg=grant", "jid=bob@y.org", `per_day="default (3)"`, "max_pending=4", "events=none"); len(got) != 1 {
		t.Errorf("grant line does not show the effective limits:\n%s", logs.String())
	}
}

// TestUnknownTokenRegistrationLogged: the server reporting an account made
// with a token the bot did not hand out is logged at info, where admins
// look, and only so often.
func TestUnknownTokenRegistrationLogged(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	svc, _, logs := newLoggedService(t, policy.Limits{}, &now)
	for i := range 20 {
		if err := svc.RecordReport(ctx, Report{Token: "unknowntoken" + strings.Repeat("x", i), Account: "eve@durare.org"}); err != nil {
			t.Fatal(err)
		}
	}
	lines := logLines(logs.String(), "level=INFO", "token the bot did not hand out", "account=eve@durare.org", "token=unkn")
	if len(lines) == 0 || len(lines) > refusalsAuditedPerActor {
		t.Errorf("%d lines about unknown tokens, want 1..%d:\n%s", len(lines), refusalsAuditedPerActor, logs.String())
	}
}
