package store

import (
	"errors"
	"testing"
	"time"
)

func TestInviteByToken(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	a := mustAdd(t, s, testInvite("alice@example.org", "tok-a", t0))
	mustAdd(t, s, testInvite("bob@example.org", "tok-b", t0))

	got, err := s.InviteByToken(ctx, "tok-a")
	if err != nil || got.ID != a.ID {
		t.Fatalf("InviteByToken(tok-a) = %s, %v; want %s", got.ID, err, a.ID)
	}
	for _, tok := range []string{"", "tok-c", "tok"} {
		if _, err := s.InviteByToken(ctx, tok); !errors.Is(err, ErrNotFound) {
			t.Errorf("InviteByToken(%q) = %v, want ErrNotFound", tok, err)
		}
	}
}

func TestMarkUsedBy(t *testing.T) {
	entry := AuditEntry{Time: t0.Add(time.Hour), Actor: "new@example.org", Action: "invite.use", Detail: "reported"}
	tests := []struct {
		name    string
		state   State
		usedBy  string
		wantErr error
	}{
		{"pending becomes used", StatePending, "", nil},
		{"expired was a guess", StateExpired, "", nil},
		{"used without account gets it", StateUsed, "", nil},
		{"used with an account stays", StateUsed, "other@example.org", ErrNotPending},
		{"cancelled stays", StateCancelled, "", ErrNotPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t)
			ctx := t.Context()
			inv := mustAdd(t, s, testInvite("alice@example.org", "tok-a", t0))
			if tt.state != StatePending {
				if _, err := s.SetInviteState(ctx, inv.ID, tt.state, tt.usedBy, AuditEntry{Time: t0, Actor: "system", Action: "x"}); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := s.Invite(ctx, inv.ID)
			entries := len(mustAudit(t, s, inv.ID))
			got, prev, err := s.MarkUsedBy(ctx, inv.ID, "new@example.org", entry)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("MarkUsedBy = %v, want %v", err, tt.wantErr)
			}
			stored, _ := s.Invite(ctx, inv.ID)
			if tt.wantErr != nil {
				if stored.State != before.State || stored.UsedBy != before.UsedBy {
					t.Errorf("refused MarkUsedBy changed the invite: %+v", stored)
				}
				if n := len(mustAudit(t, s, inv.ID)); n != entries {
					t.Errorf("refused MarkUsedBy wrote an audit entry")
				}
				return
			}
			if prev != tt.state {
				t.Errorf("previous state = %s, want %s", prev, tt.state)
			}
			if got.State != StateUsed || got.UsedBy != "new@example.org" || stored.UsedBy != "new@example.org" {
				t.Errorf("after MarkUsedBy: returned %+v, stored %+v", got, stored)
			}
			wantChanged := entry.Time
			if tt.state == StateUsed {
				wantChanged = before.Changed // when it was used, not when we learnt by whom
			}
			if !stored.Changed.Equal(wantChanged) {
				t.Errorf("Changed = %s, want %s", stored.Changed, wantChanged)
			}
			// Newest first.
			if last := mustAudit(t, s, inv.ID)[0]; last.Action != "invite.use" || last.Actor != "new@example.org" {
				t.Errorf("latest audit entry = %+v", last)
			}
		})
	}
	s, _ := openTest(t)
	if _, _, err := s.MarkUsedBy(t.Context(), "aaaaaaaaaaaaaaaa", "new@example.org", entry); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkUsedBy(unknown id) = %v, want ErrNotFound", err)
	}
	inv := mustAdd(t, s, testInvite("alice@example.org", "tok-a", t0))
	if _, _, err := s.MarkUsedBy(t.Context(), inv.ID, "", entry); !errors.Is(err, ErrInvalid) {
		t.Errorf("MarkUsedBy(empty account) = %v, want ErrInvalid", err)
	}
}

func mustAudit(t *testing.T, s *Store, about string) []AuditEntry {
	t.Helper()
	log, err := s.Audit(t.Context(), about, 100)
	if err != nil {
		t.Fatal(err)
	}
	return log
}
