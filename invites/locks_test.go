package invites

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"durare.org/invitebot/store"
)

func TestInviteLocks(t *testing.T) {
	var l inviteLocks
	unlockA, err := l.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.tryLock("a"); ok {
		t.Fatal("tryLock took a held lock")
	}
	unlockB, ok := l.tryLock("b")
	if !ok {
		t.Fatal("one invite's lock held up another's")
	}
	unlockB()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock of a held id with an ending context = %v, want DeadlineExceeded", err)
	}

	got := make(chan func())
	go func() {
		u, err := l.lock(context.Background(), "a")
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("a waiter took the lock while it was held")
	case <-time.After(20 * time.Millisecond):
	}
	unlockA()
	unlockA() // a second call must not release the next holder's lock
	u := <-got
	if _, ok := l.tryLock("a"); ok {
		t.Fatal("a repeated unlock released the next holder's lock")
	}
	u()

	l.mu.Lock()
	n := len(l.byID)
	l.mu.Unlock()
	if n != 0 {
		t.Errorf("%d lock entries left after everything was released", n)
	}
}

// TestOwedUseRecordedBeforeCancel: a browser registration the store failed
// to record is written by whoever takes the invite next, so a cancel finds
// the invite used by that account instead of cancelling it.
func TestOwedUseRecordedBeforeCancel(t *testing.T) {
	s, inv := owedFixture(t)
	admin, err := s.Actor(context.Background(), "admin@durare.test")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Cancel(context.Background(), admin, inv.ID)
	if !errors.Is(err, ErrNotPending) || got.State != StateUsed || got.UsedBy != "new@durare.test" {
		t.Fatalf("Cancel = %+v, %v; want ErrNotPending, used by new@durare.test", got, err)
	}
	if len(s.owed) != 0 {
		t.Errorf("use still owed after it was recorded: %v", s.owed)
	}
}

// TestOwedUseRecordedBySweep: usage tracking records owed uses too.
func TestOwedUseRecordedBySweep(t *testing.T) {
	s, inv := owedFixture(t)
	if err := s.CheckPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec, err := s.store.Invite(context.Background(), inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != store.StateUsed || rec.UsedBy != "new@durare.test" {
		t.Errorf("invite %s, used by %q; want used by new@durare.test", rec.State, rec.UsedBy)
	}
}

// owedFixture is a service whose one pending invite has a registration owed
// to it. It has no server: nothing here may need one.
func owedFixture(t *testing.T) (*Service, store.Invite) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	inv, err := st.AddInvite(ctx, store.Invite{
		Token: "tok", URI: "xmpp:durare.test?register;preauth=tok", Domain: "durare.test",
		Inviter: "carol@elsewhere.test", Created: now, Expires: now.Add(time.Hour),
	}, store.AuditEntry{Time: now, Actor: "carol@elsewhere.test", Action: ActionInviteCreate})
	if err != nil {
		t.Fatal(err)
	}
	s := NewService(Options{Store: st, Domain: "durare.test", Admins: map[string]bool{"admin@durare.test": true},
		Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	s.owed[inv.ID] = owedUse{inv: inv, account: "new@durare.test", at: now}
	return s, inv
}
