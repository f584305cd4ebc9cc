package bot

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// Tests of what the bot's words say: true for whoever reads them, in the
// words of the view they read them in (chat or a form).

// helpLine is the line of help that describes command name.
func helpLine(t *testing.T, help, name string) string {
	t.Helper()
	for _, line := range strings.Split(help, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), name+" ") || strings.HasPrefix(strings.TrimSpace(line), name+":") {
			return line
		}
	}
	t.Fatalf("help has no line for %s:\n%s", name, help)
	return ""
}

// TestHelpSaysWhatIsTrueForTheRole: admins may reset any account of the
// domain, cancel anyone's invites and close anyone's event links; their
// help says so, and inviters' help says what is theirs.
func TestHelpSaysWhatIsTrueForTheRole(t *testing.T) {
	f := newFixture(t, func(o *invites.Options) { o.Issuer = resettingIssuer{o.Issuer.(*fakeIssuer)} })
	f.bot.svc.DetectServerCommands(context.Background())
	withEventPages(f)
	grantInviter(t, f)
	f.mustSay(t, admin, "grant "+inviter+" events 5")
	adminHelp, inviterHelp := f.mustSay(t, admin, "help"), f.mustSay(t, inviter, "help")
	for _, c := range []struct{ who, help, name, want, notWant string }{
		{admin, adminHelp, "reset", "any account of the domain", "your invites created"},
		{inviter, inviterHelp, "reset", "your invites created", "any account"},
		{admin, adminHelp, "cancel", "anyone's", ""},
		{inviter, inviterHelp, "cancel", "of yours", "anyone's"},
		{admin, adminHelp, "close-event", "anyone's", ""},
		{inviter, inviterHelp, "close-event", "of yours", "anyone's"},
		{admin, adminHelp, "invites", "or someone else's", ""},
		{inviter, inviterHelp, "invites", "your invites", "someone else's"},
		{admin, adminHelp, "events", "or someone else's", ""},
		{inviter, inviterHelp, "events", "your event links", "someone else's"},
	} {
		line := helpLine(t, c.help, c.name)
		if !strings.Contains(line, c.want) || (c.notWant != "" && strings.Contains(line, c.notWant)) {
			t.Errorf("%s's help for %s: %q; want %q and not %q", c.who, c.name, line, c.want, c.notWant)
		}
	}
}

// TestMissingParameterIsASentence: a missing parameter is named in the
// words of chat usage (in chat) or of the form's label (in a form), never
// by its bare internal name ("Missing valid.").
func TestMissingParameterIsASentence(t *testing.T) {
	f := newFixture(t)
	withEventPages(f)
	for line, want := range map[string]string{
		"event 3": "Missing <valid>: how long it stays open (e.g. 3h or 90m; at most 24h).",
		"event":   "Missing <uses>: how many people at most.",
		"grant":   "Missing <jid>: JID to grant.",
		"cancel":  "Missing <id>: invite.",
	} {
		got := f.mustSay(t, admin, line)
		if !strings.HasPrefix(got, want+"\nUsage: ") {
			t.Errorf("%q: %q, want %q and the usage", line, got, want)
		}
	}
	out, cerr := f.adhoc(t, admin, commandIn{Node: "create-event", Action: actionExecute})
	if cerr != nil {
		t.Fatal(cerr)
	}
	again, cerr := f.adhoc(t, admin, commandIn{Node: "create-event", SessionID: out.SessionID,
		Forms: submit(field("uses", "3"))})
	want := "“How long it stays open” is missing (e.g. 3h or 90m; at most 24h)."
	if cerr != nil || formMistake(again) != want {
		t.Errorf("form without valid: %q, %v; want the error %q", formMistake(again), cerr, want)
	}
	grantInviter(t, f) // someone to revoke: else the command says there is no one
	out, _ = f.adhoc(t, admin, commandIn{Node: "revoke", Action: actionExecute})
	again, cerr = f.adhoc(t, admin, commandIn{Node: "revoke", SessionID: out.SessionID, Forms: submit()})
	want = "“Inviter” is missing: choose one or type it."
	if cerr != nil || formMistake(again) != want {
		t.Errorf("revoke form without a JID: %q, %v; want the error %q", formMistake(again), cerr, want)
	}
}

// TestEventFormErrorsUseTheFormsWordsAndYourLimit: an inviter allowed 10
// is told about "How many people at most" and 10, not about "Uses" and the
// bound of every number (1000).
func TestEventFormErrorsUseTheFormsWordsAndYourLimit(t *testing.T) {
	f := newFixture(t)
	withEventPages(f)
	grantInviter(t, f)
	f.mustSay(t, admin, "grant "+inviter+" events 10")
	for _, c := range []struct{ uses, want string }{
		{"three", "“How many people at most” must be a whole number, such as 20, not \"three\"."},
		{"0", "“How many people at most” must be a whole number, such as 20, not \"0\"."},
		{"50", "Your grant lets an event link of yours admit at most 10 people; ask for 10 or fewer."},
		{"2000", "Your grant lets an event link of yours admit at most 10 people; ask for 10 or fewer."},
	} {
		// A mistake shows the form again; the service's refusal ends the
		// command with an error.
		out, cerr := f.adhoc(t, inviter, commandIn{Node: "create-event", Action: actionExecute})
		if cerr != nil {
			t.Fatal(cerr)
		}
		res, cerr := f.adhoc(t, inviter, commandIn{Node: "create-event", SessionID: out.SessionID,
			Forms: submit(field("uses", c.uses), field("valid", "3h"))})
		got := formMistake(res)
		if cerr != nil && cerr.Text != nil {
			got = cerr.Text.Text
		}
		if got != c.want {
			t.Errorf("uses %q: %q; want %q", c.uses, got, c.want)
		}
	}
	// Chat keeps the chat words.
	if got := f.mustSay(t, inviter, "event three 3h"); !strings.HasPrefix(got, `Uses must be a whole number, such as 20, not "three".`) {
		t.Errorf("chat: %q", got)
	}
	if got := f.mustSay(t, inviter, "event 2000 3h"); got != "Your grant lets an event link of yours admit at most 10 people; ask for 10 or fewer." {
		t.Errorf("chat: %q", got)
	}
	// An admin's bound is the configured one.
	if got := f.mustSay(t, admin, "event 2000 3h"); got != "An event link admits at most 50 people here (policy.event_max_uses); ask for 50 or fewer." {
		t.Errorf("admin: %q", got)
	}
}

// TestDenyAsksForConfirmation: declining a request in a form asks first,
// as approving does.
func TestDenyAsksForConfirmation(t *testing.T) {
	f := requestsFixture(t)
	ben := f.submit(t, invites.NewRequest{Name: "Ben", Message: "Alice told me"})
	out, cerr := f.adhoc(t, approver, commandIn{Node: "deny-request", Action: actionExecute})
	if cerr != nil || out.Actions == nil || out.Actions.Next == nil {
		t.Fatalf("deny form: %+v, %v; want a next step", out, cerr)
	}
	confirm, cerr := f.adhoc(t, approver, commandIn{Node: "deny-request", Action: actionNext, SessionID: out.SessionID,
		Forms: submit(field("id", ben), field("reason", "no one knows you"))})
	if cerr != nil || confirm.Status != statusExecuting || !isConfirmation(confirm.Form) ||
		!strings.Contains(formText(confirm.Form), "Decline request "+ben+" by “Ben”?") {
		t.Fatalf("confirmation: %+v, %v", confirm, cerr)
	}
	if r := mustRequest(t, f, ben); r.State != invites.RequestOpen {
		t.Fatalf("declined before the confirmation: %s", r.State)
	}
	done, cerr := f.adhoc(t, approver, commandIn{Node: "deny-request", Action: actionComplete, SessionID: confirm.SessionID})
	if cerr != nil || len(done.Notes) != 1 || !strings.Contains(done.Notes[0].Text, "Declined request "+ben) {
		t.Fatalf("denial: %+v, %v", done, cerr)
	}
	if r, err := f.store.Request(context.Background(), ben); err != nil || string(r.State) != string(invites.RequestDenied) || r.Reason != "no one knows you" {
		t.Errorf("request after the confirmation: %+v, %v", r, err)
	}
}

// visibleText is everything a client shows of a form answer: its notes,
// the values of its fields that are not hidden, or its error's text;
// wrapped lines joined.
func visibleText(a answer) string {
	var parts []string
	if a.err != nil && a.err.Text != nil {
		parts = append(parts, a.err.Text.Text)
	}
	for _, n := range a.out.Notes {
		parts = append(parts, n.Text)
	}
	if a.out.Form != nil {
		for _, fl := range a.out.Form.Fields {
			if fl.Type != dataform.Hidden {
				parts = append(parts, fl.Values...)
			}
		}
	}
	return strings.Join(strings.Fields(strings.Join(parts, "\n")), " ")
}

// chatSyntax matches what tells a form user to type a chat command: send,
// a usage placeholder, or a command word followed by its argument.
var chatSyntax = regexp.MustCompile(`(?i:\bsend\b)|<(id|jid|uses|valid|reason)>|\b(cancel|approve|deny|close-event|events|invites|grant|revoke|resume) ([a-z0-9]{16}|[^ ]+@)|\bpage \d+ \(`)

// TestFormResultsNameFormCommands: no form answer tells people to send a
// chat command; it names the form command instead. Chat keeps its words.
func TestFormResultsNameFormCommands(t *testing.T) {
	answers := formCorpus(t)
	for _, a := range answers {
		if m := chatSyntax.FindString(visibleText(a)); m != "" {
			t.Errorf("%s (%s) speaks chat (%q):\n%s", a.name, a.who, m, visibleText(a))
		}
	}
	for name, want := range map[string]string{
		"pause":               "Run “Resume invites” to allow invites again.",
		"list-invites-empty":  "Run “Create account invite” to make one.",
		"list-events-empty":   "Run “Create event link” to make one.",
		"close-event-unknown": "Run “List event links” to see them.",
		"approve-unknown":     "Run “List account requests” to see the open ones.",
	} {
		if got := visibleText(findAnswer(t, answers, name)); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	// Chat says what to send, as before.
	f := newFixture(t)
	if got := f.mustSay(t, admin, "pause"); !strings.Contains(got, "Send resume to allow invites again.") {
		t.Errorf("chat pause: %q", got)
	}
}

// isoTime matches an XEP-0082 date and time.
var isoTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d`)

// TestFormTimesAreHuman: a form shows times the way chat does, to the
// minute in UTC; only the XEP-0401 form keeps its machine-readable expire
// field, hidden, for clients that read it.
func TestFormTimesAreHuman(t *testing.T) {
	answers := formCorpus(t)
	for _, a := range answers {
		if strings.HasPrefix(a.name, "audit") || strings.HasPrefix(a.name, "table-audit") {
			continue // entries' details are stored as the service wrote them
		}
		if m := isoTime.FindString(visibleText(a)); m != "" {
			t.Errorf("%s shows %q:\n%s", a.name, m, visibleText(a))
		}
	}
	f := newFixture(t)
	withEventPages(f)
	out, _ := f.adhoc(t, admin, commandIn{Node: invites.NodeCreateAccount, Action: actionExecute})
	if out.Form == nil || out.Form.Value("expires") != "2026-12-01 10:00 UTC" || out.Form.Value("expire") != "2026-12-01T10:00:00Z" {
		t.Errorf("invite form: %+v", out.Form)
	}
	out, _ = f.adhoc(t, admin, commandIn{Node: "create-event", Action: actionExecute})
	out, _ = f.adhoc(t, admin, commandIn{Node: "create-event", SessionID: out.SessionID, Forms: submit(field("uses", "3"), field("valid", "2h"))})
	if out.Form == nil || out.Form.Value("expire") != "2026-11-24 14:00 UTC" {
		t.Errorf("event form: %+v", out.Form)
	}
}

// TestGrantNoteDropsItsLabel: "grant bob note: met at FOSDEM" keeps "met
// at FOSDEM"; the word note and its colon are how people write a note,
// not part of it.
func TestGrantNoteDropsItsLabel(t *testing.T) {
	f := newFixture(t)
	for line, want := range map[string]string{
		"grant " + inviter + " note: met at FOSDEM":               "met at FOSDEM",
		"grant " + inviter + " per-day 3 NOTE :  the treasurer":   "the treasurer",
		"grant " + inviter + " Note:climbing club":                "climbing club",
		"grant " + inviter + " notes: on the wall":                "notes: on the wall",
		"grant " + inviter + " a note: she asked for three pages": "a note: she asked for three pages",
	} {
		f.mustSay(t, admin, line)
		g, err := f.store.Grant(context.Background(), inviter)
		if err != nil || g.Note != want {
			t.Errorf("%q: note %q, %v; want %q", line, g.Note, err, want)
		}
	}
	f.mustSay(t, admin, "pause reason: spam wave")
	if got := f.mustSay(t, inviter, "invite"); !strings.Contains(got, "paused: spam wave") {
		t.Errorf("pause reason: %q", got)
	}
}

// resetFixture is a bot on a server that offers resets, with or without
// mod_invitebot.
func resetFixture(t *testing.T, module bool) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	mod := prosody.NewModule(jid.MustParse("durare.test"), jid.MustParse("invites.durare.test"), &fakeModuleLink{loaded: module}, log)
	if _, err := mod.Detect(context.Background()); err != nil {
		t.Fatal(err)
	}
	iss := &fakeIssuer{}
	svc := invites.NewService(invites.Options{Store: st, Issuer: resettingIssuer{iss}, Domain: "durare.test",
		Admins: map[string]bool{admin: true}, Now: clock.now, Log: log, Notifier: &recordingNotifier{}, Module: mod})
	svc.DetectServerCommands(context.Background())
	b := New(Config{Service: svc, Component: jid.MustParse("invites.durare.test"), Log: log, Now: clock.now, Reports: mod})
	return &fixture{bot: b, store: st, issuer: iss, clock: clock}
}

// TestResetReplyWithTheModule: with mod_invitebot a reset link works for
// its account only, and the reply does not warn that it could create one;
// without the module it does.
func TestResetReplyWithTheModule(t *testing.T) {
	with := resetFixture(t, true).mustSay(t, admin, "reset newbie")
	if strings.Contains(with, "create") || !strings.Contains(with, "it works for newbie@durare.test only") {
		t.Errorf("with the module: %q", with)
	}
	without := resetFixture(t, false).mustSay(t, admin, "reset newbie")
	if !strings.Contains(without, "it could also create a new account") {
		t.Errorf("without the module: %q", without)
	}
}

// TestFormCommandsExist: every chat command the bot's code names by its
// form's title (formCommand) is in the table with a node.
func TestFormCommandsExist(t *testing.T) {
	src, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`formCommand\("([^"]+)"\)`)
	for _, file := range src {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(data), -1) {
			if got := formCommand(m[1]); !strings.HasPrefix(got, "“") {
				t.Errorf("%s: formCommand(%q) names no form command", file, m[1])
			}
		}
	}
}
