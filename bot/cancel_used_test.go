package bot

import (
	"context"
	"testing"
	"time"

	"durare.org/invitebot/store"
)

// TestCancelUsedNamesTheAccount: cancelling an invite that created an
// account (a browser registration that finished while the cancel waited)
// says which account, so the admin knows whom the link let in.
func TestCancelUsedNamesTheAccount(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter)
	f.mustSay(t, inviter, "invite")
	ctx := context.Background()
	invs, _ := f.store.InvitesByInviter(ctx, inviter)
	id := invs[0].ID
	if _, err := f.store.SetInviteState(ctx, id, store.StateUsed, "newbie@durare.test", store.AuditEntry{
		Time: time.Now(), Actor: "newbie@durare.test", Action: "invite.use",
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.mustSay(t, admin, "cancel "+id), "Invite "+id+" is already used by newbie@durare.test."; got != want {
		t.Errorf("cancel of a used invite: %q, want %q", got, want)
	}
}
