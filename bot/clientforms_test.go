package bot

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

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

// answer is one command answer of the corpus.
type answer struct {
	name string
	who  string
	out  commandOut
}

// corpus collects answers.
type corpus struct {
	t       *testing.T
	f       *fixture
	answers []answer
}

// run executes node as who and takes it to its end: each form is submitted
// with its defaults and values, each confirmation completed. Every answer
// is kept; the last is returned (a stanza error ends the run).
func (c *corpus) run(name, who, node string, values map[string]string) commandOut {
	c.t.Helper()
	out, cerr := c.f.adhoc(c.t, who, commandIn{Node: node, Action: actionExecute})
	for step := 0; ; step++ {
		if cerr != nil {
			return commandOut{}
		}
		c.answers = append(c.answers, answer{name: fmt.Sprintf("%s-%d", name, step), who: who, out: out})
		if out.Status != statusExecuting || step > 4 {
			return out
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
		out, cerr = c.f.adhoc(c.t, who, commandIn{Node: node, SessionID: out.SessionID, Forms: []dataform.Form{*sub}})
	}
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
const (
	eventNote  = "🎉 climbing club party"
	grantNote  = "met at the 🧗 wall, vouched for by Anna and Bob"
	reqName    = "Zoë 🌻 Example"
	reqMessage = "Hello, I am the new treasurer of the climbing club and would like an account to talk with the board about the budget."
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
	reqID := f.submit(t, invites.NewRequest{Name: reqName, Contact: "zoe@example.org", Message: reqMessage})
	f.submit(t, hostile)
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

// find returns the last answer of the corpus run called name.
func find(t *testing.T, answers []answer, name string) commandOut {
	t.Helper()
	var found *commandOut
	for i := range answers {
		if strings.HasPrefix(answers[i].name, name+"-") && !strings.Contains(strings.TrimPrefix(answers[i].name, name+"-"), "-") {
			found = &answers[i].out
		}
	}
	if found == nil {
		t.Fatalf("no answer %q in the corpus", name)
	}
	return *found
}

// iqXML is an answer as the client receives it.
func iqXML(t *testing.T, a answer) []byte {
	t.Helper()
	cmd, err := xml.Marshal(a.out)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<iq xmlns="jabber:client" type="result" id="x" from="invites.durare.test" to="%s/console">`, a.who)
	b.Write(cmd)
	b.WriteString(`</iq>`)
	return b.Bytes()
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
// half of the window and draws option labels that hold an emoji as
// nothing. Each line of a form is one short fact, no option label holds
// text people typed, and a list's form still says everything its chat
// text says.
func TestFormLinesAreShortAndLabelsFixed(t *testing.T) {
	answers := formCorpus(t)
	for _, a := range answers {
		if a.out.Form == nil {
			continue
		}
		for _, fl := range a.out.Form.Fields {
			if fl.Type == dataform.Fixed && strings.HasPrefix(fl.Var, fixedVarText) {
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
				if w := columns(o.Label); w > maxLineColumns || strings.IndexFunc(o.Label, func(r rune) bool { return r > 0x7e || r < 0x20 }) >= 0 {
					t.Errorf("%s: option label %q is not short plain text", a.name, o.Label)
				}
			}
		}
	}
	// Nothing of a row is lost in the form: the facts of the chat line
	// are all in its lines.
	for name, want := range map[string][]string{
		"list-requests": {reqMessage, "Contact (not verified): zoe[@]example[.]org", "Name: Zoë 🌻 Example", "Open until: 2026-12-01 12:00 UTC"},
		"list-inviters": {grantNote, "Per day: 5 (default)", "Pending: 10 (default)", "Event links up to: 5", "Answers requests: yes"},
		"list-events":   {eventNote, "Handed out: 0 of 3", "State: open"},
		"audit":         {"Action: grant", "Subject: " + inviter, "3 uses until 2026-11-24T15:00:00Z; " + eventNote},
	} {
		text := formText(find(t, answers, name).Form)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: the form lost %q; its lines:\n%s", name, w, text)
			}
		}
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

// TestRefusalsAreErrors: a command that was refused ends with an error
// note (XEP-0050 §4.6), not an info note that reads as success, and says
// the same words as chat.
func TestRefusalsAreErrors(t *testing.T) {
	answers := formCorpus(t)
	for _, name := range []string{"reset-not-yours", "reset-elsewhere", "event-no-allowance", "event-too-many",
		"grant-admin", "revoke-nobody", "close-event-unknown", "approve-unknown", "approve-again",
		"cancel-invite-again", "backup-off", "list-inviters-beyond"} {
		out := find(t, answers, name)
		if out.Status != statusCompleted || len(out.Notes) != 1 || out.Notes[0].Type != "error" || out.Form != nil {
			t.Errorf("%s: status %q, notes %+v, form %v; want completed with one error note", name, out.Status, out.Notes, out.Form != nil)
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
	out := find(t, answers, "grant-admin")
	if len(out.Notes) == 0 || out.Notes[0].Text != chat {
		t.Errorf("grant to an admin: note %+v, chat %q; want the same words", out.Notes, chat)
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
	if len(out.Notes) != 1 || out.Notes[0].Type != "error" || !strings.Contains(out.Notes[0].Text, "999…") {
		t.Errorf("notes %+v: want the error with the value cut short", out.Notes)
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
		seen[a.out.Node] = true
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
