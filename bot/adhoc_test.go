package bot

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
)

func TestSessionTable(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	tbl := newSessionTable(clock.now)
	const owner = "admin@durare.test/laptop"

	s, err := tbl.open(owner, "grant")
	if err != nil {
		t.Fatal(err)
	}
	tbl.put(s)
	if _, err := tbl.take(s.id, "admin@durare.test/phone", "grant"); !errors.Is(err, errBadSession) {
		t.Errorf("other resource: %v, want errBadSession", err)
	}
	if _, err := tbl.take(s.id, owner, "revoke"); !errors.Is(err, errBadSession) {
		t.Errorf("other node: %v, want errBadSession", err)
	}
	clock.advance(sessionTTL - time.Second)
	got, err := tbl.take(s.id, owner, "grant")
	if err != nil {
		t.Fatalf("within TTL: %v", err)
	}
	if _, err := tbl.take(s.id, owner, "grant"); !errors.Is(err, errBadSession) {
		t.Errorf("a taken session was handed out twice: %v", err)
	}
	tbl.put(got) // put renews the life; let it lapse now.
	clock.advance(sessionTTL)
	if _, err := tbl.take(s.id, owner, "grant"); !errors.Is(err, errSessionExpired) {
		t.Errorf("after TTL: %v, want errSessionExpired", err)
	}
	if _, err := tbl.take(s.id, owner, "grant"); !errors.Is(err, errBadSession) {
		t.Errorf("expired session asked twice: %v, want errBadSession", err)
	}

	for i := range maxSessionsPerJID {
		s, err := tbl.open(owner, "grant")
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		tbl.put(s)
	}
	if _, err := tbl.open(owner, "grant"); !errors.Is(err, errTooManySessions) {
		t.Errorf("over the per-JID cap: %v", err)
	}
	if _, err := tbl.open("other@x.org/r", "grant"); err != nil {
		t.Errorf("another JID is not limited by this one's sessions: %v", err)
	}
	clock.advance(sessionTTL)
	if _, err := tbl.open(owner, "grant"); err != nil {
		t.Errorf("expired sessions still count against the cap: %v", err)
	}
}

// TestRunCommandExpiredSession drives the command state machine without a
// server to reach the one error a real-time test cannot wait for.
func TestRunCommandExpiredSession(t *testing.T) {
	f := newFixture(t)
	from := jid.MustParse(admin + "/laptop")
	req := iqRequest{iq: stanza.IQ{From: from, To: jid.MustParse("invites.durare.test")},
		command: commandIn{Node: "grant", Action: actionExecute}}
	out, cerr := f.bot.runCommand(context.Background(), req, f.actor(t, admin))
	if cerr != nil || out.Status != statusExecuting {
		t.Fatalf("execute: %+v, %v", out, cerr)
	}
	f.clock.advance(sessionTTL + time.Second)
	req.command = commandIn{Node: "grant", Action: actionComplete, SessionID: out.SessionID,
		Forms: []dataform.Form{{Type: dataform.TypeSubmit, Fields: []dataform.Field{{Var: "jid", Values: []string{"bob@x.org"}}}}}}
	_, cerr = f.bot.runCommand(context.Background(), req, f.actor(t, admin))
	if cerr == nil || cerr.App == nil || cerr.App.XMLName.Local != "session-expired" {
		t.Fatalf("late completion: %+v, want session-expired", cerr)
	}
	if got := f.mustSay(t, admin, "inviters"); strings.Contains(got, "bob@x.org") {
		t.Error("expired session still granted")
	}
}

// TestRunCommandNotes checks the note types: info for plain results, warn
// for results with a caveat, error for failures.
func TestRunCommandNotes(t *testing.T) {
	f := newFixture(t)
	from := jid.MustParse(admin + "/laptop")
	run := func(node string, forms ...dataform.Form) commandOut {
		t.Helper()
		req := iqRequest{iq: stanza.IQ{From: from}, command: commandIn{Node: node, Action: actionExecute}}
		out, cerr := f.bot.runCommand(context.Background(), req, f.actor(t, admin))
		if cerr != nil {
			t.Fatalf("%s: %+v", node, cerr)
		}
		if len(forms) == 0 {
			return out
		}
		req.command = commandIn{Node: node, SessionID: out.SessionID, Forms: forms} // the default action
		out, cerr = f.bot.runCommand(context.Background(), req, f.actor(t, admin))
		if cerr != nil {
			t.Fatalf("%s completion: %+v", node, cerr)
		}
		return out
	}
	out := run("resume")
	if len(out.Notes) != 1 || out.Notes[0].Type != "info" {
		t.Errorf("resume notes %+v, want one info note", out.Notes)
	}
	f.mustSay(t, admin, "invite")
	invs, _ := f.store.InvitesByInviter(context.Background(), admin)
	f.issuer.deleteErr = errors.New("deletion refused")
	cancelled := run("cancel-invite", dataform.Form{Type: dataform.TypeSubmit, Fields: []dataform.Field{{Var: "id", Values: []string{invs[0].ID}}}})
	if cancelled.Status != statusExecuting {
		t.Fatalf("cancel-invite after the form: %+v, want the confirmation stage", cancelled)
	}
	req := iqRequest{iq: stanza.IQ{From: from}, command: commandIn{Node: "cancel-invite", Action: actionComplete, SessionID: cancelled.SessionID}}
	out, cerr := f.bot.runCommand(context.Background(), req, f.actor(t, admin))
	if cerr != nil || len(out.Notes) != 1 || out.Notes[0].Type != "warn" {
		t.Errorf("cancel with the token still valid: %+v, %v; want a warn note", out, cerr)
	}
	f.issuer.err = errors.New("server on fire")
	req = iqRequest{iq: stanza.IQ{From: from}, command: commandIn{Node: invites.NodeCreateAccount, Action: actionExecute}}
	if _, cerr := f.bot.runCommand(context.Background(), req, f.actor(t, admin)); cerr == nil || cerr.Text == nil || cerr.Text.Text != msgInternal {
		t.Errorf("failed mint: %+v, want a stanza error saying %q", cerr, msgInternal)
	}
}
