package bot

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// Tests of what real clients make of the bot's ad-hoc answers (issue 20,
// items 4-6). formCorpus drives every command of the operation table, and
// the lists, refusals and mistakes people meet, through runCommand, and
// keeps every answer; the tests below check the answers, and
// TestClientsShowEveryForm hands them to the client libraries.

// resettingIssuer is a fakeIssuer on a server that offers password resets
// and says that every account exists.
type resettingIssuer struct{ *fakeIssuer }

func (resettingIssuer) OffersResets(context.Context) (bool, error) { return true, nil }

// AccountExists says every account exists: the reset is the form under test.
func (resettingIssuer) AccountExists(context.Context, jid.JID) (bool, error) { return true, nil }

func (r resettingIssuer) MintReset(ctx context.Context, _ jid.JID) (invites.Minted, error) {
	return r.Mint(ctx)
}

// answer is one command answer of the corpus: out, or the stanza error
// err, to the request cmd.
type answer struct {
	name string
	who  string
	cmd  commandIn
	out  commandOut
	err  *commandError
}

// corpus collects answers.
type corpus struct {
	t       *testing.T
	f       *fixture
	answers []answer
}

// run executes node as who and takes it to its end: each form is submitted
// with its defaults and values, each confirmation completed. Every answer
// is kept, stanza errors too (one ends the run); the last is returned. A
// list's further pages are run too, as name+" page N".
func (c *corpus) run(name, who, node string, values map[string]string) (commandOut, *commandError) {
	c.t.Helper()
	cmd := commandIn{Node: node, Action: actionExecute}
	out, cerr := c.f.adhoc(c.t, who, cmd)
	for step := 0; ; step++ {
		c.answers = append(c.answers, answer{name: fmt.Sprintf("%s-%d", name, step), who: who, cmd: cmd, out: out, err: cerr})
		if cerr != nil {
			return commandOut{}, cerr
		}
		if out.Status != statusExecuting || step > 4 {
			if next := nextPage(out.Form); next != "" && values["page"] != next {
				more := map[string]string{"page": next}
				for k, v := range values {
					if k != "page" {
						more[k] = v
					}
				}
				c.run(strings.TrimSuffix(name, " page "+values["page"])+" page "+next, who, node, more)
			}
			return out, nil
		}
		sub := out.Form.Submission()
		if sub == nil {
			sub = &dataform.Form{Type: dataform.TypeSubmit}
		}
		if out.Form != nil && out.Form.Type == dataform.TypeForm && !isConfirmation(out.Form) {
			for k, v := range values {
				sub.Set(k, v)
			}
		}
		cmd = commandIn{Node: node, SessionID: out.SessionID, Forms: []dataform.Form{*sub}}
		out, cerr = c.f.adhoc(c.t, who, cmd)
	}
}

// nextPage is the page a list's form says to ask for next, or "".
func nextPage(f *dataform.Form) string {
	_, after, ok := strings.Cut(formText(f), "run it again with page ")
	if !ok {
		return ""
	}
	return strings.TrimRight(strings.Fields(after)[0], ".")
}

// isConfirmation tells a confirmation stage (one fixed question) from a
// parameters form.
func isConfirmation(f *dataform.Form) bool {
	for _, fl := range f.Fields {
		if fl.Type != dataform.Fixed {
			return false
		}
	}
	return true
}

// Free text typed by people in the corpus: notes with an emoji, a
// requester's name and message. None of it may become an option label.
// Some of it is markup, which Gajim must not take as such.
const (
	eventNote   = "🎉 climbing club party"
	grantNote   = "met at the 🧗 wall, vouched for by Anna and Bob"
	reqName     = "Zoë 🌻 Example"
	reqMessage  = "Hello, I am the new treasurer of the climbing club and would like an account to talk with the board about the budget."
	markupName  = "<i>Mal</i> & co"
	markupNote  = "<big><u>PAID</u></big>"
	markupReply = "approve <id> & deny <id>"
)

// formCorpus returns every answer of the table's commands for admins,
// inviters and approvers, with data in every list.
func formCorpus(t *testing.T) []answer {
	t.Helper()
	f := newFixture(t, func(o *invites.Options) {
		o.Requests = invites.RequestOptions{Enabled: true}
		o.Issuer = resettingIssuer{o.Issuer.(*fakeIssuer)}
	})
	f.bot.svc.DetectServerCommands(context.Background())
	withEventPages(f)
	grantInviter(t, f)
	c := &corpus{t: t, f: f}

	// Data for every list.
	f.mustSay(t, admin, "grant "+inviter+" events 5 "+grantNote)
	f.mustSay(t, admin, "invite")
	f.mustSay(t, admin, "invite")
	f.mustSay(t, inviter, "invite")
	f.mustSay(t, inviter, "event 3 3h "+eventNote)
	f.mustSay(t, admin, "event 20 2h "+strings.Repeat("long note ", 15))
	f.mustSay(t, inviter, "event 2 1h "+markupNote)
	reqID := f.submit(t, invites.NewRequest{Name: reqName, Contact: "zoe@example.org", Message: reqMessage})
	f.submit(t, hostile)
	f.submit(t, invites.NewRequest{Name: markupName, Contact: "mal@example.org", Message: markupReply})
	adminInvites, _ := f.store.InvitesByInviter(context.Background(), admin)
	inviterInvites, _ := f.store.InvitesByInviter(context.Background(), inviter)
	evs, _ := f.bot.svc.Events(context.Background(), f.actor(t, inviter), "")

	// The lists, with rows.
	c.run("list-invites", admin, "list-invites", nil)
	c.run("list-invites-of", admin, "list-invites", map[string]string{"jid": inviter})
	c.run("list-inviters", admin, "list-inviters", nil)
	c.run("audit", admin, "audit", nil)
	c.run("audit-about", admin, "audit", map[string]string{"about": adminInvites[0].ID, "n": "5"})
	c.run("list-events", inviter, "list-events", nil)
	c.run("list-events-admin", admin, "list-events", map[string]string{"jid": inviter})
	c.run("list-requests", approver, "list-requests", nil)
	// Empty lists and a page past the end.
	c.run("list-invites-empty", approver, "list-invites", nil)
	c.run("list-events-empty", approver, "list-events", nil)
	c.run("list-inviters-beyond", admin, "list-inviters", map[string]string{"page": "9"})
	// Nothing to choose from.
	c.run("cancel-invite-none", approver, "cancel-invite", nil)
	c.run("close-event-none", approver, "close-event", nil)
	// Refusals.
	c.run("reset-not-yours", inviter, "reset-password", map[string]string{"jid": "someone"})
	c.run("reset-elsewhere", admin, "reset-password", map[string]string{"jid": "someone@elsewhere.test"})
	c.run("event-no-allowance", approver, "create-event", map[string]string{"uses": "3", "valid": "3h"})
	c.run("event-too-many", inviter, "create-event", map[string]string{"uses": "50", "valid": "3h"})
	c.run("grant-admin", admin, "grant", map[string]string{"jid": admin})
	c.run("revoke-nobody", admin, "revoke", map[string]string{"jid": "nobody@elsewhere.test"})
	c.run("close-event-unknown", inviter, "close-event", map[string]string{"id": "abcdefghijklmnop"})
	c.run("approve-unknown", approver, "approve-request", map[string]string{"id": "abcdefghijklmnop"})
	c.run("backup-off", admin, "backup", nil)
	// Mistakes in a form: the form comes back.
	c.run("grant-mistake", admin, "grant", map[string]string{"jid": inviter, "per-day": "abc"})
	c.run("event-mistake", inviter, "create-event", map[string]string{"uses": "lots", "valid": "2h"})
	c.run("grant-huge-value", admin, "grant", map[string]string{"jid": inviter, "per-day": strings.Repeat("9", 100<<10)})
	// The commands that change things, with real ids.
	c.run("cancel-invite", admin, "cancel-invite", map[string]string{"id": adminInvites[0].ID})
	c.run("cancel-invite-again", admin, "cancel-invite", map[string]string{"id": adminInvites[0].ID})
	c.run("cancel-invite-inviter", inviter, "cancel-invite", map[string]string{"id": inviterInvites[0].ID})
	c.run("close-event", inviter, "close-event", map[string]string{"id": evs[0].ID})
	c.run("approve", approver, "approve-request", map[string]string{"id": reqID})
	c.run("approve-again", approver, "approve-request", map[string]string{"id": reqID})
	c.run("reset", admin, "reset-password", map[string]string{"jid": "newbie"})
	c.run("whoinvited", admin, "whoinvited", map[string]string{"jid": "newbie"})

	// Then every command of the table, for every role that may run it,
	// with example arguments.
	for _, op := range operations() {
		if op.node == "" || !op.available(f.bot) {
			continue
		}
		for _, role := range []policy.Role{policy.Inviter, policy.Approver, policy.Admin} {
			if !policy.Allows(role, op.perm) {
				continue
			}
			values := map[string]string{}
			for _, p := range visibleParams(op, role) {
				values[p.name] = exampleArg(p)
			}
			c.run(fmt.Sprintf("table-%s-%s", op.node, role), roleJIDs[role], op.node, values)
		}
	}
	// Last, pause (the table walk resumed invites already).
	c.run("pause", admin, "pause", map[string]string{"reason": "spam wave"})
	c.run("resume", admin, "resume", nil)
	c.run("resume-again", admin, "resume", nil)
	return c.answers
}

// findAnswer returns the last answer of the corpus run called name.
func findAnswer(t *testing.T, answers []answer, name string) answer {
	t.Helper()
	var found *answer
	for i := range answers {
		if strings.HasPrefix(answers[i].name, name+"-") && !strings.Contains(strings.TrimPrefix(answers[i].name, name+"-"), "-") {
			found = &answers[i]
		}
	}
	if found == nil {
		t.Fatalf("no answer %q in the corpus", name)
	}
	return *found
}

// find returns the last command answer of the corpus run called name.
func find(t *testing.T, answers []answer, name string) commandOut {
	t.Helper()
	a := findAnswer(t, answers, name)
	if a.err != nil {
		t.Fatalf("%s: a stanza error, %+v", name, a.err.stanzaError)
	}
	return a.out
}

// allPages is what the pages of the list run called name say, joined.
func allPages(t *testing.T, answers []answer, name string) string {
	t.Helper()
	text := formText(find(t, answers, name).Form)
	for n := 2; ; n++ {
		page := fmt.Sprintf("%s page %d", name, n)
		if !slices.ContainsFunc(answers, func(a answer) bool { return strings.HasPrefix(a.name, page+"-") }) {
			return text
		}
		text += " " + formText(find(t, answers, page).Form)
	}
}

// iqXML is an answer as the client receives it.
func iqXML(t *testing.T, a answer) []byte {
	t.Helper()
	reply := iqReply{ID: "x", From: "invites.durare.test", To: a.who + "/console", Type: stanza.ResultIQ}
	answerCommand(&reply, a.cmd, a.out, a.err)
	raw, err := xml.Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	// The stream's namespace, which the bot's stream writer gives it.
	return bytes.Replace(raw, []byte("<iq "), []byte(`<iq xmlns="jabber:client" `), 1)
}

// python is the interpreter with Debian's python3-nbxmpp and
// python3-slixmpp: the system one, ahead of one a version manager puts
// first on PATH.
func python(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is missing: install python3 python3-nbxmpp python3-slixmpp (Debian) to check the forms with Gajim's and poezio's libraries")
	}
	return p
}

// TestClientsShowEveryForm loads every answer of the corpus with the
// libraries of Gajim (nbxmpp, and Gajim's own form code when installed)
// and poezio (slixmpp), the way those clients do; see
// testdata/clientforms.py. It fails, never skips, without them.
func TestClientsShowEveryForm(t *testing.T) {
	answers := formCorpus(t)
	dir := t.TempDir()
	if keep := os.Getenv("INVITEBOT_KEEP_FORMS"); keep != "" {
		dir = keep // to look at the answers by hand
	}
	for i, a := range answers {
		name := fmt.Sprintf("%03d-%s.xml", i, a.name)
		if err := os.WriteFile(filepath.Join(dir, name), iqXML(t, a), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(python(t), filepath.Join("testdata", "clientforms.py"), dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the client libraries fail on the bot's answers (%v):\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestResultsCarryNoTable: Gajim 1.7.3 cannot show a form with a
// <reported/> table at all (nbxmpp's extend_form makes it a
// MultipleDataForm, which has no iter_fields, and Gajim's FormGrid calls
// it): the command hangs at "Executing…".
func TestResultsCarryNoTable(t *testing.T) {
	for _, a := range formCorpus(t) {
		if a.out.Form != nil && (a.out.Form.Reported != nil || len(a.out.Form.Items) > 0) {
			t.Errorf("%s: a <reported/> table, which Gajim 1.7.3 cannot show", a.name)
		}
	}
}

// TestFormLinesAreShortAndLabelsFixed: poezio shows every field's text in
// half of its window less its tab list, and draws option labels that hold
// an emoji, or are wider than that, as nothing. Each line of a form is one
// short fact, no option label holds text people typed, and a list's form
// pages still say everything its chat text says.
func TestFormLinesAreShortAndLabelsFixed(t *testing.T) {
	answers := formCorpus(t)
	for _, a := range answers {
		if a.out.Form == nil {
			continue
		}
		for _, fl := range a.out.Form.Fields {
			if fl.Type == dataform.Fixed {
				for _, v := range fl.Values {
					if w := columns(v); w > maxLineColumns {
						t.Errorf("%s: line %q is %d columns, more than %d", a.name, v, w, maxLineColumns)
					}
				}
			}
			for _, o := range fl.Options {
				for _, typed := range []string{"🎉", "climbing", "Zoë", "🌻", "Bob", "vouched"} {
					if strings.Contains(o.Label, typed) {
						t.Errorf("%s: option label %q holds text someone typed", a.name, o.Label)
					}
				}
				if w := columns(o.Label); w > maxOptionColumns || strings.IndexFunc(o.Label, func(r rune) bool { return r > 0x7e || r < 0x20 }) >= 0 {
					t.Errorf("%s: option label %q is not short plain text", a.name, o.Label)
				}
			}
		}
	}
	// Nothing of a row is lost in the form: the facts of the chat line
	// are all in its lines, on one page or another.
	for name, want := range map[string][]string{
		"list-requests": {reqMessage, "Contact (not verified): zoe[@]example[.]org", "Name: Zoë 🌻 Example", "Open until: 2026-12-01 12:00 UTC"},
		"list-inviters": {grantNote, "Per day: 5 (default)", "Pending: 10 (default)", "Event links up to: 5", "Answers requests: yes"},
		"list-events":   {eventNote, "Handed out: 0 of 3", "State: open"},
		"audit":         {"Action: grant", "Subject: " + inviter, "3 uses until 2026-11-24T15:00:00Z; " + eventNote},
	} {
		text := allPages(t, answers, name)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: the form lost %q; its lines:\n%s", name, w, text)
			}
		}
	}
}

// TestFormPagesFitATerminal: poezio shows formLines fields of a 24-line
// terminal and scrolls only between input fields, so a list's page of
// text lines holds no more, and says how to see the next.
func TestFormPagesFitATerminal(t *testing.T) {
	answers := formCorpus(t)
	for _, a := range answers {
		if a.out.Form != nil && len(a.out.Form.Fields) > formLines {
			t.Errorf("%s: %d fields, more than the %d poezio shows", a.name, len(a.out.Form.Fields), formLines)
		}
	}
	for _, name := range []string{"list-requests", "audit", "list-inviters", "list-events"} {
		out := find(t, answers, name)
		if next := nextPage(out.Form); next != "2" || !strings.Contains(out.Form.Title, "(page 1 of ") {
			t.Errorf("%s: title %q, next page %q; want page 1 saying how to see page 2", name, out.Form.Title, next)
		}
	}
}

// TestTextLinesAreNotMarkup: Gajim shows a fixed field's value as Pango
// markup, unescaped: the bot's own "<id>" made a line show as its field's
// name, and a note typed as "<big>" was shown big. No text line holds a
// character that markup reads, and what people typed still reads as
// typed, with look-alikes.
func TestTextLinesAreNotMarkup(t *testing.T) {
	answers := formCorpus(t)
	for _, a := range answers {
		if a.out.Form == nil {
			continue
		}
		if strings.ContainsAny(a.out.Form.Instructions, "<>&") {
			t.Errorf("%s: instructions %q", a.name, a.out.Form.Instructions)
		}
		for _, fl := range a.out.Form.Fields {
			for _, v := range fl.Values {
				if fl.Type == dataform.Fixed && strings.ContainsAny(v, "<>&") {
					t.Errorf("%s: text line %q reads as markup in Gajim", a.name, v)
				}
			}
		}
	}
	for name, want := range map[string]string{
		"list-requests": "Name: ‹i›Mal‹/i› ＆ co",
		"list-events":   "Note: ‹big›‹u›PAID‹/u›‹/big›",
	} {
		if text := allPages(t, answers, name); !strings.Contains(text, want) {
			t.Errorf("%s: no %q in its lines:\n%s", name, want, text)
		}
	}
	// Chat says it as it was typed.
	f := newFixture(t, func(o *invites.Options) { o.Requests = invites.RequestOptions{Enabled: true} })
	grantInviter(t, f)
	f.submit(t, invites.NewRequest{Name: markupName, Contact: "mal@example.org", Message: markupReply})
	if got := f.mustSay(t, approver, "requests"); !strings.Contains(got, markupName) || !strings.Contains(got, "approve <id>") {
		t.Errorf("chat lost what was typed:\n%s", got)
	}
}

// TestRefusalsAreErrors: a command that was refused or failed ends with a
// stanza error of a fitting condition, with the words chat says as its
// text (XEP-0050 §4.6). A completed command with an error note reads as
// success in Gajim ("✓ Completed"), poezio and profanity alike. The error
// names the command and the session it ends, which poezio needs.
func TestRefusalsAreErrors(t *testing.T) {
	answers := formCorpus(t)
	for name, cond := range map[string]stanza.Condition{
		"reset-not-yours":      stanza.NotAllowed,
		"reset-elsewhere":      stanza.ItemNotFound,
		"event-no-allowance":   stanza.NotAllowed,
		"event-too-many":       stanza.NotAcceptable,
		"grant-admin":          stanza.NotAllowed,
		"revoke-nobody":        stanza.ItemNotFound,
		"close-event-unknown":  stanza.ItemNotFound,
		"approve-unknown":      stanza.ItemNotFound,
		"approve-again":        stanza.Conflict,
		"cancel-invite-again":  stanza.Conflict,
		"backup-off":           stanza.FeatureNotImplemented,
		"list-inviters-beyond": stanza.ItemNotFound,
	} {
		a := findAnswer(t, answers, name)
		if a.err == nil {
			t.Errorf("%s: status %q, notes %+v; want a stanza error", name, a.out.Status, a.out.Notes)
			continue
		}
		e := a.err.stanzaError
		if e.Cond.XMLName.Local != string(cond) || e.Type != errorType(cond) || e.Text == nil || e.Text.Lang != "en" || e.Text.Text == "" {
			t.Errorf("%s: error %s (%s), text %+v; want %s with a text in English", name, e.Cond.XMLName.Local, e.Type, e.Text, cond)
		}
		reply := iqReply{}
		answerCommand(&reply, a.cmd, a.out, a.err)
		if echo, ok := reply.Payload.(commandOut); !ok || echo.Node != a.cmd.Node || echo.SessionID != a.cmd.SessionID || echo.Status != "" {
			t.Errorf("%s: the error carries %+v; want the command and the session asked about", name, reply.Payload)
		}
	}
	for _, name := range []string{"resume", "list-invites-empty", "cancel-invite", "approve", "reset"} {
		out := find(t, answers, name)
		for _, n := range out.Notes {
			if n.Type == "error" {
				t.Errorf("%s: a success with an error note: %+v", name, out.Notes)
			}
		}
	}
	f := newFixture(t)
	chat := f.mustSay(t, admin, "grant "+admin)
	if e := findAnswer(t, answers, "grant-admin").err; e == nil || e.Text == nil || e.Text.Text != chat {
		t.Errorf("grant to an admin: error %+v, chat %q; want the same words", e, chat)
	}
	// The refusal ends the session.
	out, _ := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionExecute})
	submitted := commandIn{Node: "grant", SessionID: out.SessionID, Forms: submit(field("jid", admin))}
	if _, cerr := f.adhoc(t, admin, submitted); cerr == nil {
		t.Fatal("a grant to an admin was not refused")
	}
	if _, cerr := f.adhoc(t, admin, submitted); cerr == nil || cerr.App == nil || cerr.App.XMLName.Local != "bad-sessionid" {
		t.Errorf("the session after a refusal: %+v; want it gone", cerr)
	}
	// A failure of the service is an error too, with chat's sentence.
	f.issuer.err = errors.New("server on fire")
	_, cerr := f.adhoc(t, admin, commandIn{Node: invites.NodeCreateAccount, Action: actionExecute})
	if cerr == nil || cerr.Cond.XMLName.Local != string(stanza.InternalServerError) || cerr.Text == nil || cerr.Text.Text != msgInternal {
		t.Errorf("a failed mint: %+v; want internal-server-error saying %q", cerr, msgInternal)
	}
}

// formText is what a form's text lines say, with wrapped lines joined.
func formText(f *dataform.Form) string {
	if f == nil {
		return ""
	}
	var words []string
	for _, fl := range f.Fields {
		if fl.Type == dataform.Fixed {
			for _, v := range fl.Values {
				words = append(words, strings.Fields(v)...)
			}
		}
	}
	return strings.Join(words, " ")
}

// TestEmptyChoicesAnswerAtOnce: a form whose required list offers nothing
// and lets nothing be typed was a dead end ("Invite is required." on every
// submission): the command answers at once, completed, with what there is
// not. An admin, who may type anyone's invite, still gets the form.
func TestEmptyChoicesAnswerAtOnce(t *testing.T) {
	f := newFixture(t, func(o *invites.Options) { o.Requests = invites.RequestOptions{Enabled: true} })
	withEventPages(f)
	for _, tc := range []struct{ who, node, want string }{
		{admin, "revoke", "Nobody holds a grant: there is no one to revoke."},
	} {
		out, cerr := f.adhoc(t, tc.who, commandIn{Node: tc.node, Action: actionExecute})
		if cerr != nil || out.Status != statusCompleted || out.Form != nil || len(out.Notes) != 1 || out.Notes[0].Text != tc.want {
			t.Errorf("%s by %s: %+v, %+v; want completed saying %q", tc.node, tc.who, out, cerr, tc.want)
		}
	}
	grantInviter(t, f)
	for _, tc := range []struct{ who, node, want string }{
		{inviter, "cancel-invite", "You have no pending invites to cancel."},
		{inviter, "close-event", "You have no open event links to close."},
		{approver, "approve-request", "There are no open account requests to approve."},
		{approver, "deny-request", "There are no open account requests to decline."},
	} {
		out, cerr := f.adhoc(t, tc.who, commandIn{Node: tc.node, Action: actionExecute})
		if cerr != nil || out.Status != statusCompleted || out.Form != nil || len(out.Notes) != 1 ||
			out.Notes[0].Type != "info" || out.Notes[0].Text != tc.want {
			t.Errorf("%s by %s: %+v, %+v; want completed saying %q", tc.node, tc.who, out, cerr, tc.want)
		}
	}
	for _, node := range []string{"cancel-invite", "close-event"} {
		out, cerr := f.adhoc(t, admin, commandIn{Node: node, Action: actionExecute})
		if cerr != nil || out.Status != statusExecuting || !out.Form.Has("id-other") {
			t.Errorf("%s by an admin with none of their own: %+v, %+v; want the form with a field to type an id", node, out, cerr)
		}
	}
	// With something to choose, the form.
	f.mustSay(t, inviter, "invite")
	if out, cerr := f.adhoc(t, inviter, commandIn{Node: "cancel-invite", Action: actionExecute}); cerr != nil || out.Status != statusExecuting {
		t.Errorf("cancel-invite with a pending invite: %+v, %+v; want the form", out, cerr)
	}
}

// formMistake is what a form shown again says is wrong: its error lines,
// joined.
func formMistake(out commandOut) string {
	if out.Form == nil {
		return ""
	}
	var words []string
	for _, fl := range out.Form.Fields {
		if fl.Type == dataform.Fixed && strings.HasPrefix(fl.Var, fixedVarError+"-") {
			for _, v := range fl.Values {
				words = append(words, strings.Fields(v)...)
			}
		}
	}
	return strings.Join(words, " ")
}

// TestMistakeShownOnce: a form shown again for a bad value says what is
// wrong once, in its first lines; Gajim showed a note with the same words
// above them.
func TestMistakeShownOnce(t *testing.T) {
	answers := formCorpus(t)
	for name, want := range map[string]string{
		"grant-mistake": `“Invites per day” must be a number from 1 to 1000, or default, not "abc".`,
		"event-mistake": `“How many people at most” must be a whole number, such as 20, not "lots".`,
	} {
		out := find(t, answers, name)
		if len(out.Notes) != 0 || out.Status != statusExecuting || formMistake(out) != want ||
			!strings.HasPrefix(out.Form.Fields[0].Var, fixedVarError+"-") {
			t.Errorf("%s: notes %+v, error lines %q; want no note and the lines %q first", name, out.Notes, formMistake(out), want)
		}
	}
}

// TestRefusedValuesAreNotEchoedWhole: a form value that is refused comes
// back in the answer cut short, however long it was.
func TestRefusedValuesAreNotEchoedWhole(t *testing.T) {
	answers := formCorpus(t)
	out := find(t, answers, "grant-huge-value")
	size := len(iqXML(t, answer{who: admin, out: out}))
	if size > 4<<10 {
		t.Errorf("the answer to a 100 KB value is %d bytes", size)
	}
	if !strings.Contains(formMistake(out), "999…") {
		t.Errorf("error lines %q: want the value cut short", formMistake(out))
	}
	// Short values are quoted whole, as before.
	if got := f0(t).mustSay(t, admin, "grant "+inviter+" per-day abc"); !strings.Contains(got, `not "abc"`) {
		t.Errorf("chat refusal of a short value: %q", got)
	}
}

func f0(t *testing.T) *fixture { return newFixture(t) }

// TestCorpusCoversTheTable: every command of the table is in the corpus,
// so a new operation is checked with the clients without a new test.
func TestCorpusCoversTheTable(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range formCorpus(t) {
		seen[a.cmd.Node] = true
	}
	var missing []string
	for _, op := range operations() {
		if op.node != "" && !seen[op.node] {
			missing = append(missing, op.node)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("commands never answered in the corpus: %v", missing)
	}
}
