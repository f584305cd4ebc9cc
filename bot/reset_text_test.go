package bot

import (
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/invites"
)

// TestCancelNoticesTellTheTruth: the notice to an inviter whose link
// someone else cancelled says whether the link still works at the server,
// and the owner of an account whose reset link cannot be cancelled is told
// to act at once.
func TestCancelNoticesTellTheTruth(t *testing.T) {
	created := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	expires := created.Add(24 * time.Hour)
	reset := invites.Invite{ID: "abcdefghijklmnop", ResetFor: "alice@durare.test", Created: created, Expires: expires}
	for _, tc := range []struct {
		name      string
		ev        invites.Event
		want, not string
	}{
		{"revoked", invites.InviteCancelled{Invite: withRevoked(reset, true, false), By: "admin@durare.test"},
			"Your password reset link abcdefghijklmnop for alice@durare.test was cancelled by admin@durare.test; its link no longer works.", ""},
		{"unrevocable", invites.InviteCancelled{Invite: withRevoked(reset, false, true), By: "admin@durare.test"},
			"but the server cannot cancel it: the link works until " + formatTime(expires), "no longer works"},
		{"not yet revoked", invites.InviteCancelled{Invite: withRevoked(reset, false, false), By: "admin@durare.test"},
			"the server still accepts its link for now", "no longer works"},
		{"owner of an uncancellable link", invites.ResetCreated{Account: "alice@durare.test", By: "admin@durare.test",
			At: created, Expires: expires, Uncancellable: true},
			"tell an admin of this service at once by replying here or to admin@durare.test: this server cannot cancel the link, which works until " + formatTime(expires), "can be cancelled"},
	} {
		got := eventText(tc.ev)
		if !strings.Contains(got, tc.want) || tc.not != "" && strings.Contains(got, tc.not) {
			t.Errorf("%s: notice %q, want %q and not %q", tc.name, got, tc.want, tc.not)
		}
	}
}

func withRevoked(inv invites.Invite, revoked, unrevocable bool) invites.Invite {
	inv.State, inv.Revoked, inv.Unrevocable = invites.StateCancelled, revoked, unrevocable
	return inv
}

// TestReplacedText: a new reset link names the earlier links that still
// work at the server, and says nothing of those that do not.
func TestReplacedText(t *testing.T) {
	expires := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	got := replacedText([]invites.Invite{
		{ID: "aaaaaaaaaaaaaaaa", Revoked: true, Expires: expires},
		{ID: "bbbbbbbbbbbbbbbb", Unrevocable: true, Expires: expires},
		{ID: "cccccccccccccccc", Expires: expires},
	})
	if strings.Contains(got, "aaaaaaaaaaaaaaaa") {
		t.Errorf("names a revoked link: %q", got)
	}
	for _, want := range []string{
		"The earlier reset link bbbbbbbbbbbbbbbb is cancelled here, but the server cannot cancel it: it still works until " + formatTime(expires),
		"The earlier reset link cccccccccccccccc is cancelled here, but the server still accepts it for now",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("replaced text %q lacks %q", got, want)
		}
	}
}
