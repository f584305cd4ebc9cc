package bot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
)

// Regression tests for what real clients and an adversarial run found
// (issue 9). Each failed before its fix.

// adhoc runs one command request as who from the resource "console".
func (f *fixture) adhoc(t *testing.T, who string, cmd commandIn) (commandOut, *commandError) {
	t.Helper()
	req := iqRequest{iq: stanza.IQ{From: jid.MustParse(who + "/console")}, command: cmd}
	return f.bot.runCommand(context.Background(), req, f.actor(t, who))
}

func submit(fields ...dataform.Field) []dataform.Form {
	return []dataform.Form{{Type: dataform.TypeSubmit, Fields: fields}}
}

func field(name, value string) dataform.Field {
	return dataform.Field{Var: name, Values: []string{value}}
}

// TestFreeTextIsOneLine: a grant note or a pause reason from a form keeps
// no newline or bidi override, so it cannot forge lines in audit, inviters
// or the refusals everyone reads.
func TestFreeTextIsOneLine(t *testing.T) {
	f := newFixture(t)
	out, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionExecute})
	if cerr != nil {
		t.Fatal(cerr)
	}
	note := "friend\n2026-11-26 10:00 UTC  admin@durare.test  grant  mallory@evil.test\u202e"
	_, cerr = f.adhoc(t, admin, commandIn{Node: "grant", SessionID: out.SessionID,
		Forms: submit(field("jid", inviter), field("note", note))})
	if cerr != nil {
		t.Fatal(cerr)
	}
	g, err := f.store.Grant(context.Background(), inviter)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(g.Note, "\n\r\u202e") || g.Note != "friend 2026-11-26 10:00 UTC admin@durare.test grant mallory@evil.test" {
		t.Errorf("stored note %q keeps control characters", g.Note)
	}
	for _, cmd := range []string{"inviters", "audit"} {
		for _, line := range strings.Split(f.mustSay(t, admin, cmd), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "2026-11-26 10:00 UTC  admin@durare.test  grant  mallory") {
				t.Errorf("%s shows a forged line: %q", cmd, line)
			}
		}
	}

	out, _ = f.adhoc(t, admin, commandIn{Node: "pause", Action: actionExecute})
	f.adhoc(t, admin, commandIn{Node: "pause", SessionID: out.SessionID,
		Forms: submit(field("reason", "spam wave\nInvites are allowed again."))})
	got := f.mustSay(t, inviter, "invite")
	if strings.Contains(got, "\nInvites are allowed again.") {
		t.Errorf("a pause reason forged a line in the refusal: %q", got)
	}
}

// TestSessionCapCountsLiveSessionsPerBareJID: expired sessions never block
// anyone, and a client inventing resources is capped as one account.
func TestSessionCapCountsLiveSessionsPerBareJID(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	tbl := newSessionTable(clock.now)
	// Fill the table with sessions of many accounts, then let them expire.
	for i := range maxSessions {
		s, err := tbl.open(fmt.Sprintf("user%d@x.org/r", i), "grant")
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		tbl.put(s)
	}
	clock.advance(sessionTTL + time.Second)
	if _, err := tbl.open("admin@durare.test/laptop", "grant"); err != nil {
		t.Fatalf("expired sessions block a new one: %v", err)
	}
	for i := range maxSessionsPerJID {
		s, err := tbl.open(fmt.Sprintf("mallory@evil.test/res%d", i), "grant")
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		tbl.put(s)
	}
	if _, err := tbl.open("mallory@evil.test/res-new", "grant"); err == nil {
		t.Error("a new resource escapes the per-account cap")
	}
}

// TestNextOnFinalStageCompletes is how poezio submits: action next on every
// stage, on single-stage forms and confirmations alike.
func TestNextOnFinalStageCompletes(t *testing.T) {
	f := newFixture(t)
	out, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionExecute})
	if cerr != nil {
		t.Fatal(cerr)
	}
	done, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionNext, SessionID: out.SessionID,
		Forms: submit(field("jid", inviter))})
	if cerr != nil || done.Status != statusCompleted {
		t.Fatalf("grant submitted with next: %+v, %+v", done, cerr)
	}
	f.mustSay(t, inviter, "invite")
	invs, _ := f.store.InvitesByInviter(context.Background(), inviter)
	out, _ = f.adhoc(t, inviter, commandIn{Node: "cancel-invite", Action: actionExecute})
	confirm, cerr := f.adhoc(t, inviter, commandIn{Node: "cancel-invite", Action: actionNext, SessionID: out.SessionID,
		Forms: submit(field("id", invs[0].ID))})
	if cerr != nil || confirm.Status != statusExecuting {
		t.Fatalf("cancel form with next: %+v, %+v", confirm, cerr)
	}
	done, cerr = f.adhoc(t, inviter, commandIn{Node: "cancel-invite", Action: actionNext, SessionID: confirm.SessionID})
	if cerr != nil || done.Status != statusCompleted {
		t.Fatalf("confirmation with next: %+v, %+v", done, cerr)
	}
	if inv, _ := f.store.Invite(context.Background(), invs[0].ID); inv.State != "cancelled" {
		t.Errorf("invite is %s after a confirmed cancel", inv.State)
	}
}

// TestTablesCarryText: console clients show a reported table as an empty
// form, and Gajim 1.7 none at all, so the rows come as text lines of the
// form, which is no table (issue 20).
func TestTablesCarryText(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter+" a friend")
	for _, node := range []string{"list-inviters", "audit"} {
		out, cerr := f.adhoc(t, admin, commandIn{Node: node, Action: actionExecute})
		if cerr == nil && out.Status == statusExecuting {
			out, cerr = f.adhoc(t, admin, commandIn{Node: node, SessionID: out.SessionID, Forms: submit()})
		}
		if cerr != nil {
			t.Fatalf("%s: %+v", node, cerr)
		}
		if out.Form == nil || out.Form.Reported != nil {
			t.Fatalf("%s: want a form without a table: %+v", node, out)
		}
		if !strings.Contains(formText(out.Form), inviter) {
			t.Errorf("%s: form %+v, want the rows as text", node, out.Form.Fields)
		}
	}
}

// TestGrantsDoNotApplyToAdmins: granting an admin and revoking them would
// cancel the admin's own invites; both are refused with a clear answer.
func TestGrantsDoNotApplyToAdmins(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "invite")
	if got := f.mustSay(t, admin, "grant "+admin); !strings.Contains(got, "is an admin") {
		t.Errorf("grant to an admin: %q", got)
	}
	if got := f.mustSay(t, admin, "revoke "+admin); !strings.Contains(got, "is an admin") {
		t.Errorf("revoke of an admin: %q", got)
	}
	invs, _ := f.store.InvitesByInviter(context.Background(), admin)
	if len(invs) != 1 || invs[0].State != "pending" {
		t.Errorf("admin's invites after grant and revoke: %+v", invs)
	}
	if _, err := f.store.Grant(context.Background(), admin); err == nil {
		t.Error("a grant was stored for an admin")
	}
	if strings.Contains(f.notes.all(), admin) {
		t.Errorf("the admin was told about a grant: %s", f.notes.all())
	}
}

// TestListsArePaged: every list reply is bounded, in chat and ad-hoc, and
// says how to see the rest.
func TestListsArePaged(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("n", maxTextParam)
	for i := range 70 {
		f.mustSay(t, admin, fmt.Sprintf("grant user%03d@elsewhere.test %s", i, long))
	}
	first := f.mustSay(t, admin, "inviters")
	if strings.Count(first, "\n  user") != pageSize || !strings.Contains(first, "Showing 1–25 of 70") ||
		!strings.Contains(first, "inviters page 2") {
		t.Errorf("first page:\n%s", first)
	}
	last := f.mustSay(t, admin, "inviters page 3")
	if strings.Count(last, "\n  user") != 20 || !strings.Contains(last, "user069@") || strings.Contains(last, "page 4") {
		t.Errorf("last page:\n%s", last)
	}
	if got := f.mustSay(t, admin, "inviters page 9"); !strings.Contains(got, "no page 9") {
		t.Errorf("past the end: %q", got)
	}
	audit := f.mustSay(t, admin, "audit 300")
	if strings.Count(audit, "\n  ") > pageSize+1 || !strings.Contains(audit, "audit 300 page 2") {
		t.Errorf("audit 300:\n%s", audit)
	}
	// A form's page holds what poezio shows of a 24-line terminal, and
	// the pages together hold every row.
	seen, pages := map[string]bool{}, 0
	for n := 1; n < 100; n++ {
		out, cerr := f.adhoc(t, admin, commandIn{Node: "list-inviters", Action: actionExecute})
		if cerr == nil && out.Status == statusExecuting {
			out, cerr = f.adhoc(t, admin, commandIn{Node: "list-inviters", SessionID: out.SessionID, Forms: submit(field("page", strconv.Itoa(n)))})
		}
		if cerr != nil || out.Form == nil {
			t.Fatalf("ad-hoc page %d: %+v, %+v", n, out, cerr)
		}
		if len(out.Form.Fields) > formLines {
			t.Errorf("ad-hoc page %d has %d lines", n, len(out.Form.Fields))
		}
		for _, fl := range out.Form.Fields {
			if len(fl.Values) == 1 && strings.HasPrefix(fl.Values[0], "user") {
				seen[fl.Values[0]] = true
			}
		}
		pages++
		next := nextPage(out.Form)
		if next == "" {
			if !strings.Contains(out.Form.Title, fmt.Sprintf("page %d of %d", n, n)) {
				t.Errorf("last page's title %q", out.Form.Title)
			}
			break
		}
		if next != strconv.Itoa(n+1) || !strings.Contains(out.Form.Title, fmt.Sprintf("page %d of ", n)) {
			t.Fatalf("page %d says next %q, title %q", n, next, out.Form.Title)
		}
	}
	if len(seen) != 70 || pages < 4 {
		t.Errorf("the form pages show %d of 70 inviters on %d pages", len(seen), pages)
	}
}

// TestRepliesStayBounded: however long the stored strings, one page of any
// list stays far below what servers accept.
func TestRepliesStayBounded(t *testing.T) {
	f := newFixture(t)
	for i := range 30 {
		f.bot.svc.RecordRefusal(context.Background(), fmt.Sprintf("%s%d@%s.test", strings.Repeat("m", 1000), i, strings.Repeat("d", 1000)), "unknown command")
	}
	res, ok := f.bot.serveChat(context.Background(), admin, "audit 100")
	if !ok {
		t.Fatal("no reply")
	}
	if size := len(res.text); size > 128<<10 {
		t.Errorf("one page of audit is %d bytes", size)
	}
	form, err := runAudit(context.Background(), f.bot, request{actor: f.actor(t, admin), args: map[string]string{"n": "100"}, form: true})
	if err != nil || form.form == nil {
		t.Fatalf("audit form: %+v, %v", form, err)
	}
	size := 0
	for _, fl := range form.form.Fields {
		for _, v := range fl.Values {
			size += len(v)
		}
	}
	if size > 16<<10 {
		t.Errorf("one page of the audit form is %d bytes", size)
	}
}

// TestRoughEdges covers the small things new users tripped over.
func TestRoughEdges(t *testing.T) {
	f := newFixture(t)
	if got := f.mustSay(t, admin, "invtie"); !strings.Contains(got, "Did you mean invite?") {
		t.Errorf("typo: %q", got)
	}
	if got := f.mustSay(t, admin, "grant xmpp:"+inviter); !strings.Contains(got, inviter+" may now create invites (per-day 5 (default), pending 10 (default))") {
		t.Errorf("grant with a URI: %q", got)
	}
	if got := f.mustSay(t, admin, "cancel abcdefghijklmnop"); got != "No such invite. Check the id in audit or invites <jid>." {
		t.Errorf("admin cancelling an unknown id: %q", got)
	}
	if got := f.mustSay(t, admin, "revoke "+inviter); !strings.Contains(got, "None of their invites was still pending") {
		t.Errorf("revoke without invites: %q", got)
	}
	if got := f.mustSay(t, admin, "whoinvited newbie"); !strings.Contains(got, "newbie@durare.test") {
		t.Errorf("whoinvited with a username: %q", got)
	}
	if got, _ := f.say(t, stranger, "invite"); !strings.Contains(got, "at most once an hour") {
		t.Errorf("stranger's one answer: %q", got)
	}
}

// TestFormMistakeShowsTheFormAgain: a wrong value in a form brings the form
// back, filled in, with what is wrong, instead of ending the command.
func TestFormMistakeShowsTheFormAgain(t *testing.T) {
	f := newFixture(t)
	out, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionExecute})
	if cerr != nil {
		t.Fatal(cerr)
	}
	again, cerr := f.adhoc(t, admin, commandIn{Node: "grant", SessionID: out.SessionID,
		Forms: submit(field("jid", inviter), field("per-day", "abc"))})
	if cerr != nil || again.Status != statusExecuting || !strings.Contains(formMistake(again), "“Invites per day” must be a number") {
		t.Fatalf("after a mistake: %+v, %+v", again, cerr)
	}
	if again.Form.Value("jid") != inviter {
		t.Errorf("the form came back without what was typed: %+v", again.Form)
	}
	done, cerr := f.adhoc(t, admin, commandIn{Node: "grant", SessionID: again.SessionID,
		Forms: submit(field("jid", inviter), field("per-day", "3"))})
	if cerr != nil || done.Status != statusCompleted {
		t.Fatalf("after fixing it: %+v, %+v", done, cerr)
	}
}
