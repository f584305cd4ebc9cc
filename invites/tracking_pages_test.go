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

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/store"
)

// TestCheckPendingPages has more expired invites than a sweep page holds:
// the sweep settles page after page without losing any, and without
// dialling the server, which only live tokens need.
func TestCheckPendingPages(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	n := 2*sweepPage + 7
	for i := range n {
		created := start.Add(time.Duration(i) * time.Second)
		_, err := st.AddInvite(ctx, store.Invite{Token: fmt.Sprintf("tok%d", i), Inviter: "alice@x.org",
			Created: created, Expires: created.Add(time.Hour)}, store.AuditEntry{Actor: "alice@x.org", Action: ActionInviteCreate})
		if err != nil {
			t.Fatal(err)
		}
	}
	svc := NewService(Options{
		Store: st, Issuer: &countingIssuer{now: time.Now}, Domain: "durare.org",
		// Nothing listens there: a dial would fail the sweep.
		Registrar: unreachable{},
		Now:       func() time.Time { return start.Add(48 * time.Hour) }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := svc.CheckPending(ctx); err != nil {
		t.Fatalf("CheckPending: %v", err)
	}
	if left, _ := st.PendingInvites(ctx); len(left) != 0 {
		t.Errorf("%d invites still pending after the sweep", len(left))
	}
	if q, _ := st.QuotaCounts(ctx, "alice@x.org", start, nil); q.Pending != 0 || q.Created != n {
		t.Errorf("counts after the sweep = %+v, want %d created, none pending", q, n)
	}
	expired, _ := st.Audit(ctx, "system", 1<<20)
	if len(expired) != n {
		t.Errorf("%d expiry entries, want %d", len(expired), n)
	}
}

// unreachable is a server whose client port cannot be reached.
type unreachable struct{}

func (unreachable) Register(context.Context, string, string, string) (jid.JID, error) {
	return jid.JID{}, errUnreachable
}
func (unreachable) BoundJID(context.Context, jid.JID, string) (jid.JID, error) {
	return jid.JID{}, errUnreachable
}
func (unreachable) Remove(context.Context, jid.JID, string) error { return errUnreachable }
func (unreachable) DialChecker(context.Context) (TokenChecker, error) {
	return nil, errUnreachable
}

var errUnreachable = errors.New("dial 127.0.0.1:1: connection refused")
