package invites_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// deletingModule is a server module that is loaded and records deletions.
type deletingModule struct {
	mu      sync.Mutex
	deleted []string
}

func (m *deletingModule) State() invites.ModuleState { return invites.ModulePresent }
func (m *deletingModule) Detect(context.Context) (invites.ModuleState, error) {
	return invites.ModulePresent, nil
}
func (m *deletingModule) Introduce(context.Context, string, string) error { return nil }
func (m *deletingModule) Delete(_ context.Context, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleted = append(m.deleted, token)
	return nil
}

// noMint is an issuer the test never needs.
type noMint struct{}

func (noMint) Mint(context.Context) (invites.Minted, error) { return invites.Minted{}, io.EOF }

// TestExpiredTokensAreDeletedAtTheServer: an invite that expires has its
// token deleted at the server when the server can delete tokens (issue 22:
// Prosody keeps every expired token, and each one makes minting slower).
func TestExpiredTokensAreDeletedAtTheServer(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	made := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tok := range []string{"expired-token", "live-token"} {
		expires := made.Add(time.Hour)
		if tok == "live-token" {
			expires = made.Add(30 * 24 * time.Hour)
		}
		if _, err := st.AddInvite(ctx, store.Invite{Token: tok, Inviter: "alice@x.org", Created: made, Expires: expires},
			store.AuditEntry{Actor: "alice@x.org", Action: invites.ActionInviteCreate}); err != nil {
			t.Fatal(err)
		}
	}
	mod := &deletingModule{}
	svc := invites.NewService(invites.Options{Store: st, Issuer: noMint{}, Domain: "durare.org", Module: mod,
		Now: func() time.Time { return made.Add(2 * time.Hour) }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// The live token cannot be checked (no client port here); the sweep
	// settles the expired one before it tries.
	_ = svc.CheckPending(ctx)
	mod.mu.Lock()
	defer mod.mu.Unlock()
	if !slices.Equal(mod.deleted, []string{"expired-token"}) {
		t.Errorf("deleted at the server: %q, want only the expired token", mod.deleted)
	}
}
