package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/testwait"
)

// TestQuotaUnderConcurrentRequests: one inviter fires requests at once; the
// per-day limit holds exactly, and each refusal says which limit and when.
func TestQuotaUnderConcurrentRequests(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	carol := w.user(t, "carol", w.srv.OtherDomain)
	expectContains(t, admin.Chat(t, w.component, "grant carol@"+w.srv.OtherDomain+" per-day 3 pending 20"), "per-day 3, pending 20")
	expectNotice(t, carol, "You may now create account invites")

	const requests = 20
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	for range requests {
		if err := carol.Send(ctx, w.component, stanza.ChatMessage, "invite"); err != nil {
			t.Fatal(err)
		}
	}
	var handed, refused int
	for range requests {
		m := carol.Next(t)
		switch {
		case strings.Contains(m.Body, "preauth="):
			handed++
		case strings.Contains(m.Body, "you have created 3 invites in the last 24 hours (cancelled ones count too); your limit is 3") && strings.Contains(m.Body, "next possible"):
			refused++
		default:
			t.Errorf("unexpected reply: %s", m.Body)
		}
	}
	if handed != 3 || refused != requests-3 {
		t.Errorf("%d invites handed out and %d refused; want 3 and %d", handed, refused, requests-3)
	}
	list := admin.Chat(t, w.component, "invites carol@"+w.srv.OtherDomain)
	if n := strings.Count(list, " pending "); n != 3 {
		t.Errorf("admin sees %d pending invites of carol, want 3:\n%s", n, list)
	}
}

// TestAbuseResponse walks an admin through an incident: pause, see who
// issued what, revoke the inviter, and know none of their links works.
func TestAbuseResponse(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	carol := w.user(t, "carol", w.srv.OtherDomain)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	expectContains(t, admin.Chat(t, w.component, "grant carol@"+w.srv.OtherDomain), "may now create invites")
	expectNotice(t, carol, "You may now create account invites")

	// A cancelled invite's token no longer registers an account.
	first := inviteURI(t, carol.Chat(t, w.component, "invite"))
	id := inviteID(t, carol.Chat(t, w.component, "invites"))
	expectContains(t, carol.Chat(t, w.component, "cancel "+id), "its link no longer works")
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), first.Token, "spambot1", "password123"); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("registering with a cancelled invite: %v, want ErrTokenRejected", err)
	}

	// Pause stops everybody, with the reason.
	expectContains(t, admin.Chat(t, w.component, "pause investigating spam"), "paused")
	expectContains(t, carol.Chat(t, w.component, "invite"), "Invites are paused: investigating spam")
	expectContains(t, admin.Chat(t, w.component, "invite"), "Invites are paused: investigating spam")
	expectContains(t, admin.Chat(t, w.component, "resume"), "allowed again")

	// Revoking the inviter cancels their pending invites at the server.
	second := inviteURI(t, carol.Chat(t, w.component, "invite"))
	third := inviteURI(t, carol.Chat(t, w.component, "invite"))
	expectContains(t, admin.Chat(t, w.component, "revoke carol@"+w.srv.OtherDomain),
		"Cancelled 2 pending invites; none of their links works any more.")
	expectNotice(t, carol, "was revoked; your 2 pending invites were cancelled with it")
	for i, tok := range []string{second.Token, third.Token} {
		if _, err := ibr.Register(ctx, w.srv.IBRConfig(), tok, fmt.Sprintf("spambot%d", i+2), "password123"); !errors.Is(err, ibr.ErrTokenRejected) {
			t.Errorf("registering with a revoked inviter's token: %v, want ErrTokenRejected", err)
		}
	}
	if strings.Contains(w.logs.String(), "throwaway account left behind") {
		t.Error("token consumption left an account behind")
	}

	audit := admin.Chat(t, w.component, "audit carol@"+w.srv.OtherDomain+" 50")
	for _, want := range []string{"grant", "invite.create", "invite.cancel", "revoke", "invite.refuse"} {
		expectContains(t, audit, want)
	}
	all := admin.Chat(t, w.component, "audit 100")
	for _, want := range []string{"pause", "resume", "invite.token-revoked"} {
		expectContains(t, all, want)
	}
}

// TestUsedInviteIsDetected: someone registers with a token outside the bot
// (an app reading the URI); usage tracking notices and tells the inviter.
func TestUsedInviteIsDetected(t *testing.T) {
	w := newWorldTracking(t, 300*time.Millisecond)
	admin := w.user(t, "admin", w.srv.Domain)
	expectContains(t, admin.Chat(t, w.component, "grant carol@"+w.srv.OtherDomain), "may now")
	carol := w.user(t, "carol", w.srv.OtherDomain)
	uri := inviteURI(t, carol.Chat(t, w.component, "invite"))
	id := inviteID(t, carol.Chat(t, w.component, "invites"))

	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), uri.Token, "appuser", "password123"); err != nil {
		t.Fatal(err)
	}
	testwait.ForNil(t, e2eTimeout, "a usage notice", func() error {
		m := carol.Next(t)
		if strings.Contains(m.Body, "Your invite "+id+" from ") && strings.Contains(m.Body, "was used.") {
			return nil
		}
		return fmt.Errorf("last message %q", m.Body)
	})
	expectContains(t, carol.Chat(t, w.component, "invites"), id+"  used")
	expectContains(t, admin.Chat(t, w.component, "audit "+id), "invite.use", "system")
}

// inviteID returns the newest invite id from an "invites" reply.
func inviteID(t *testing.T, list string) string {
	t.Helper()
	lines := strings.Split(list, "\n")
	if len(lines) < 2 {
		t.Fatalf("no invites listed:\n%s", list)
	}
	return strings.Fields(lines[1])[0]
}

// TestFloodDoesNotStarveOthers: an inviter over quota floods the bot; an
// admin can still revoke them at once, another inviter is still served,
// and the audit log holds a bounded number of the flood's refusals.
func TestFloodDoesNotStarveOthers(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	carol := w.user(t, "carol", w.srv.OtherDomain)
	dave := w.user(t, "dave", w.srv.OtherDomain)
	carolJID := "carol@" + w.srv.OtherDomain
	expectContains(t, admin.Chat(t, w.component, "grant "+carolJID+" per-day 1"), "may now create invites")
	expectContains(t, admin.Chat(t, w.component, "grant dave@"+w.srv.OtherDomain), "may now create invites")
	expectNotice(t, carol, "You may now create account invites")
	expectNotice(t, dave, "You may now create account invites")
	expectContains(t, carol.Chat(t, w.component, "invite"), "preauth=")

	const flood = 1500
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	for range flood {
		if err := carol.Send(ctx, w.component, stanza.ChatMessage, "invite"); err != nil {
			t.Fatal(err)
		}
	}
	expectContains(t, dave.Chat(t, w.component, "invites"), "You have no invites yet")
	expectContains(t, admin.Chat(t, w.component, "revoke "+carolJID), carolJID+" may no longer create invites")

	audit := admin.Chat(t, w.component, "audit "+carolJID+" 1000")
	if n := strings.Count(audit, "invite.refuse"); n == 0 || n > 6 {
		t.Errorf("the flood left %d refusal entries in the audit log, want a handful:\n%s", n, audit)
	}
}
