package bot

import (
	"context"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// joined records that carol's invite created account.
func (f *fixture) joined(t *testing.T, account string) {
	t.Helper()
	ctx := context.Background()
	now := f.clock.now()
	inv, err := f.store.AddInvite(ctx, store.Invite{Token: "t-" + account, URI: "xmpp:durare.test?register;preauth=x",
		Domain: "durare.test", Inviter: inviter, Created: now, Expires: now.Add(time.Hour)},
		store.AuditEntry{Actor: inviter, Action: "invite.create"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.MarkUsedBy(ctx, inv.ID, account, store.AuditEntry{Actor: account, Action: "invite.use"}); err != nil {
		t.Fatal(err)
	}
}

// TestSuspendInChat: a preview, then yes; without a server module the
// reply lists the commands; unsuspend gives the grant back.
func TestSuspendInChat(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter)
	f.joined(t, "bot1@durare.test")

	tree := f.mustSay(t, admin, "tree "+inviter)
	for _, want := range []string{"Tree of " + inviter + " (inviter: granted)", "└ bot1@durare.test", "active"} {
		if !strings.Contains(tree, want) {
			t.Errorf("tree lacks %q:\n%s", want, tree)
		}
	}
	if got := f.mustSay(t, inviter, "tree bot1"); !strings.Contains(got, inviter+" invited bot1@durare.test") {
		t.Errorf("the inviter's view of bot1:\n%s", got)
	}
	if got := f.mustSay(t, "bot1@durare.test", "tree"); !strings.Contains(got, "may not use tree") {
		t.Errorf("a stranger asks for a tree: %s", got)
	}

	preview := f.mustSay(t, admin, "suspend "+inviter+" spam wave")
	if !strings.Contains(preview, "This suspends 1 account: bot1@durare.test") || !strings.Contains(preview, "Answer yes") {
		t.Errorf("preview:\n%s", preview)
	}
	if _, err := f.store.Grant(context.Background(), inviter); err != nil {
		t.Fatalf("the preview revoked already: %v", err)
	}
	if got := f.mustSay(t, inviter, "yes"); !strings.Contains(got, "may not use yes") {
		t.Errorf("an inviter's yes: %s", got)
	}
	done := f.mustSay(t, admin, "yes")
	for _, want := range []string{"Suspended the branch of " + inviter, "prosodyctl shell user disable bot1@durare.test",
		"ejabberdctl ban_account bot1 durare.test", "unsuspend " + inviter} {
		if !strings.Contains(done, want) {
			t.Errorf("result lacks %q:\n%s", want, done)
		}
	}
	if got := f.mustSay(t, admin, "yes"); !strings.Contains(got, "no suspension waiting") {
		t.Errorf("a second yes: %s", got)
	}
	if got := f.mustSay(t, admin, "audit "+inviter); !strings.Contains(got, "suspend  "+inviter) {
		t.Errorf("audit:\n%s", got)
	}
	undo := f.mustSay(t, admin, "unsuspend "+inviter)
	if !strings.Contains(undo, inviter+" may invite again") || !strings.Contains(undo, "prosodyctl shell user enable bot1@durare.test") {
		t.Errorf("unsuspend:\n%s", undo)
	}
	if got := f.mustSay(t, admin, "unsuspend "+inviter); !strings.Contains(got, "is not suspended") {
		t.Errorf("unsuspend again: %s", got)
	}

	// A preview made before an unsuspend is void after it: a late yes
	// must not suspend again (found with profanity).
	f.mustSay(t, admin, "suspend "+inviter)
	f.mustSay(t, admin, "unsuspend "+inviter)
	if got := f.mustSay(t, admin, "yes"); !strings.Contains(got, "no suspension waiting") {
		t.Errorf("a yes after unsuspend: %s", got)
	}
	if _, err := f.store.Grant(context.Background(), inviter); err != nil {
		t.Errorf("the late yes revoked %s: %v", inviter, err)
	}
}

// TestSuspendForm: the form previews in its confirmation stage; an admin
// as the target is refused there with a stanza error, not a question.
func TestSuspendForm(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter)
	f.joined(t, "bot1@durare.test")

	out, cerr := f.adhoc(t, admin, commandIn{Node: "suspend", Action: actionExecute})
	if cerr != nil {
		t.Fatal(cerr)
	}
	_, cerr = f.adhoc(t, admin, commandIn{Node: "suspend", SessionID: out.SessionID, Forms: submit(field("jid", admin))})
	if cerr == nil || cerr.Cond.XMLName.Local != string(stanza.NotAllowed) {
		t.Errorf("suspend an admin in a form: %+v, want not-allowed", cerr)
	}

	out, cerr = f.adhoc(t, admin, commandIn{Node: "suspend", Action: actionExecute})
	if cerr != nil {
		t.Fatal(cerr)
	}
	out, cerr = f.adhoc(t, admin, commandIn{Node: "suspend", SessionID: out.SessionID,
		Forms: submit(field("jid", inviter), field("depth", depthDeep))})
	if cerr != nil || out.Status != statusExecuting || out.Form == nil {
		t.Fatalf("after the form: %+v, %+v; want the confirmation stage", out, cerr)
	}
	var question strings.Builder
	for _, fl := range out.Form.Fields {
		question.WriteString(strings.Join(fl.Values, " ") + " ")
	}
	if !strings.Contains(question.String(), "bot1@durare.test") {
		t.Errorf("confirmation does not preview the accounts: %s", question.String())
	}
	out, cerr = f.adhoc(t, admin, commandIn{Node: "suspend", SessionID: out.SessionID, Action: actionComplete})
	if cerr != nil || out.Status != statusCompleted {
		t.Fatalf("confirmed: %+v, %+v", out, cerr)
	}
	if _, err := f.store.Grant(context.Background(), inviter); err == nil {
		t.Error("the grant survived the suspend")
	}
}

// TestAlarmText: every alarm names what was seen, the evidence and the
// commands to act.
func TestAlarmText(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ev := []invites.AlarmEvidence{{Invite: "abcdabcdabcdabcd", Made: at, At: at.Add(time.Minute), Account: "bot1@durare.test", By: "x@durare.test"}}
	for _, kind := range []invites.AlarmKind{invites.AlarmFastUses, invites.AlarmChain, invites.AlarmEventRush,
		invites.AlarmRequestRush, invites.AlarmRefusalBurst} {
		text := eventText(invites.Alarm{Kind: kind, Subject: inviter, Inviter: inviter, Count: 5, Window: time.Hour, Evidence: ev})
		for _, want := range []string{"Alarm:", "suspend " + inviter, "tree " + inviter} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: lacks %q:\n%s", kind, want, text)
			}
		}
		if kind != invites.AlarmRefusalBurst && !strings.Contains(text, "by bot1@durare.test") {
			t.Errorf("%s: no evidence:\n%s", kind, text)
		}
	}
}

// TestTreeLinkStaysWhole: the one-time picture link is never cut: in chat
// it stands on a line of its own, in a form it is a field of its own,
// while the form's text lines stay short (wrapped at maxLineColumns).
func TestTreeLinkStaysWhole(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter)
	f.joined(t, "bot1@durare.test")
	link := "https://invites.durare.test/t/" + strings.Repeat("A7", 16)
	f.bot.treePages = func(context.Context, invites.Actor, string) (string, error) { return link, nil }

	if chat := f.mustSay(t, admin, "tree "+inviter); !strings.Contains(chat, "\n  Picture of the branch (for you only, once, for 15 minutes): "+link) {
		t.Errorf("chat reply does not carry the whole link on a line of its own:\n%s", chat)
	}
	out, cerr := f.adhoc(t, admin, commandIn{Node: "tree", Action: actionExecute})
	if cerr != nil {
		t.Fatal(cerr)
	}
	out, cerr = f.adhoc(t, admin, commandIn{Node: "tree", SessionID: out.SessionID, Forms: submit(field("jid", inviter))})
	if cerr != nil || out.Form == nil {
		t.Fatalf("tree form: %+v, %+v", out, cerr)
	}
	var picture []string
	for _, fl := range out.Form.Fields {
		if fl.Var == "picture" {
			picture = fl.Values
		}
		for _, v := range fl.Values {
			if v != link && strings.Contains(v, "/t/") {
				t.Errorf("a piece of the link in a text line: %q", v)
			}
		}
	}
	if len(picture) != 1 || picture[0] != link {
		t.Errorf("picture field %q, want the whole link %q", picture, link)
	}
}
