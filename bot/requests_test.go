package bot

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// requestsFixture is a bot taking account requests, with an inviter and an
// approver granted.
func requestsFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, func(o *invites.Options) { o.Requests = invites.RequestOptions{Enabled: true} })
	grantInviter(t, f)
	return f
}

// submit files a request as the web page would and returns its id.
func (f *fixture) submit(t *testing.T, nr invites.NewRequest) string {
	t.Helper()
	key, err := f.bot.svc.SubmitRequest(context.Background(), nr)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	r, err := f.bot.svc.RequestStatus(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// hostile is a request whose every field tries to become a link or markup
// in an approver's client.
var hostile = invites.NewRequest{
	Name:    "*Bob* https://evil.example/login",
	Contact: "xmpp:victim@evil.example",
	Message: "> quoted _see_ www.evil.example or xmpp:room@conference.evil.example?join, mail me@evil.example `code`\n> second line\u202e",
}

func TestInert(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Anna from the climbing club. We met in May.", "Anna from the climbing club. We met in May."},
		{"https://evil.example/x", "https[:]//evil[.]example/x"},
		{"www.evil.com", "www[.]evil[.]com"},
		{"xmpp:room@conference.evil.example?join", "xmpp[:]room[@]conference[.]evil[.]example?join"},
		{"mail me@evil.example", "mail me[@]evil[.]example"},
		{"evil。com and evil．com", "evil[。]com and evil[．]com"},
		{"victim＠evil．example", "victim[＠]evil[．]example"},
		{"javascript:alert(1)", "javascript[:]alert(1)"},
		{"tel:+4912345", "tel[:]+4912345"},
		{"at 10:30, 1.5 hours", "at 10[:]30, 1[.]5 hours"},
		{"Note: see me @ noon", "Note: see me @ noon"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := inert(tt.in); got != tt.want {
			t.Errorf("inert(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRequestNoticeIsInert: the approvers' notice of a hostile request
// carries no link, no line a stranger starts, and is marked unstyled.
func TestRequestNoticeIsInert(t *testing.T) {
	f := requestsFixture(t)
	id := f.submit(t, hostile)
	sent := f.notes.all()
	for _, who := range []string{admin, approver} {
		if !strings.Contains(sent, who+": New account request "+id) {
			t.Errorf("%s was not told:\n%s", who, sent)
		}
	}
	if strings.Contains(sent, inviter+": New account request") {
		t.Errorf("an inviter without the requests flag was told:\n%s", sent)
	}
	notice := eventText(invites.RequestReceived{Request: mustRequest(t, f, id), Domain: "durare.test"})
	checkInert(t, notice)
	for _, want := range []string{"approve " + id, "deny " + id, "(not verified)", "“*Bob* https[:]//evil[.]example/login”"} {
		if !strings.Contains(notice, want) {
			t.Errorf("notice lacks %q:\n%s", want, notice)
		}
	}

	// The stanza itself: plain body, the unstyled hint, no XHTML.
	var out recordingEncoder
	n := NewNotifier(&out, jid.MustParse("invites.durare.test"))
	if err := n.Notify(context.Background(), admin, invites.RequestReceived{Request: mustRequest(t, f, id), Domain: "durare.test"}); err != nil {
		t.Fatal(err)
	}
	raw := out.xml(t)
	if !strings.Contains(raw, `<unstyled xmlns="urn:xmpp:styling:0">`) || strings.Contains(raw, "xhtml") {
		t.Errorf("notice stanza: %s", raw)
	}
}

// checkNoLinks fails if text offers a link from the hostile request.
func checkNoLinks(t *testing.T, text string) {
	t.Helper()
	for _, bad := range []string{"https://", "www.evil", "xmpp:room", "xmpp:victim", "@evil", "evil.example", "\u202e"} {
		if strings.Contains(text, bad) {
			t.Errorf("text carries %q:\n%s", bad, text)
		}
	}
}

// checkInert fails if chat text offers a stranger's link or starts a line
// with their words.
func checkInert(t *testing.T, text string) {
	t.Helper()
	checkNoLinks(t, text)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, ">") || strings.HasPrefix(line, "*") || strings.HasPrefix(line, "`") {
			t.Errorf("a line starts with the requester's words: %q", line)
		}
	}
}

func mustRequest(t *testing.T, f *fixture, id string) invites.Request {
	t.Helper()
	reqs, err := f.bot.svc.Requests(context.Background(), f.actor(t, admin))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("request %s not open", id)
	return invites.Request{}
}

// recordingEncoder keeps what the bot sends.
type recordingEncoder struct {
	mu  sync.Mutex
	out []any
}

func (r *recordingEncoder) Encode(_ context.Context, v any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out = append(r.out, v)
	return nil
}

func (r *recordingEncoder) xml(t *testing.T) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	for _, v := range r.out {
		if err := xml.NewEncoder(&b).Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestRequestCommandsInChat: approvers list, approve and decline; the
// first answer wins and later ones learn who answered; the approval is an
// invite of the approver's; inviters without the flag may not answer.
func TestRequestCommandsInChat(t *testing.T) {
	f := requestsFixture(t)
	anna := f.submit(t, hostile)
	ben := f.submit(t, invites.NewRequest{Name: "Ben", Message: "Alice told me to ask"})

	for who, want := range map[string]bool{admin: true, approver: true, inviter: false} {
		help := f.mustSay(t, who, "help")
		for _, cmd := range []string{"requests [page N]:", "approve <id>:", "deny <id> [reason]:"} {
			if strings.Contains(help, cmd) != want {
				t.Errorf("%s's help lists %q: %v, want %v\n%s", who, cmd, !want, want, help)
			}
		}
	}
	if got := f.mustSay(t, inviter, "approve "+anna); !strings.Contains(got, "may not use approve") {
		t.Errorf("inviter approving: %q", got)
	}

	list := f.mustSay(t, approver, "requests")
	checkInert(t, list)
	for _, want := range []string{"Open account requests (2, oldest first):", anna, ben, "“Ben”", "Alice told me to ask", "approve <id>"} {
		if !strings.Contains(list, want) {
			t.Errorf("requests lacks %q:\n%s", want, list)
		}
	}
	if res, _ := f.bot.serveChat(context.Background(), approver, "requests"); !res.plain {
		t.Error("the list of requests is not marked unstyled")
	}

	got := f.mustSay(t, approver, "APPROVE "+strings.ToUpper(anna))
	checkInert(t, got)
	if !strings.Contains(got, "Approved request "+anna) || !strings.Contains(got, "told at victim[@]evil[.]example") {
		t.Errorf("approve: %q", got)
	}
	invs, _ := f.store.InvitesByInviter(context.Background(), approver)
	if len(invs) != 1 || invs[0].Request != anna {
		t.Fatalf("approver's invites %+v", invs)
	}
	if mine := f.mustSay(t, approver, "invites"); !strings.Contains(mine, "answers request "+anna) {
		t.Errorf("invites does not name the request:\n%s", mine)
	}
	sent := f.notes.all()
	for _, want := range []string{
		"victim@evil.example: Your request for an account on durare.test was approved.",
		admin + ": Account request " + anna + " by “*Bob* https[:]//evil[.]example/login” was approved by " + approver,
	} {
		if !strings.Contains(sent, want) {
			t.Errorf("notifications lack %q:\n%s", want, sent)
		}
	}
	if strings.Contains(sent, approver+": Account request "+anna) {
		t.Errorf("the approver was told of their own answer:\n%s", sent)
	}

	if got := f.mustSay(t, admin, "deny "+anna+" too late"); !strings.Contains(got, "already approved by "+approver) {
		t.Errorf("late denial: %q", got)
	}
	if got := f.mustSay(t, admin, "deny "+ben+" we   do not\tknow you"); !strings.Contains(got, "Declined request "+ben) ||
		!strings.Contains(got, "with your reason") {
		t.Errorf("deny: %q", got)
	}
	if got := f.mustSay(t, approver, "approve "+ben); !strings.Contains(got, "already declined by "+admin) {
		t.Errorf("late approval: %q", got)
	}
	if got := f.mustSay(t, admin, "approve abcdefghijklmnop"); !strings.Contains(got, "No account request abcdefghijklmnop") {
		t.Errorf("unknown request: %q", got)
	}
	if got := f.mustSay(t, admin, "approve nonsense"); !strings.Contains(got, "not a request id") {
		t.Errorf("malformed id: %q", got)
	}
	if got := f.mustSay(t, admin, "requests"); got != "No open account requests." {
		t.Errorf("requests after answering both: %q", got)
	}
	entries, _ := f.store.Audit(context.Background(), ben, 5)
	if len(entries) != 2 || entries[0].Action != invites.ActionRequestDeny || entries[0].Detail != "we do not know you" {
		t.Errorf("audit of the denial: %+v", entries)
	}
}

// TestRequestGrantFlag: grant ... requests yes|no, in the list of inviters.
func TestRequestGrantFlag(t *testing.T) {
	f := requestsFixture(t)
	if got := f.mustSay(t, admin, "grant "+inviter+" requests maybe"); !strings.Contains(got, "Requests must be yes or no") {
		t.Errorf("bad flag: %q", got)
	}
	if got := f.mustSay(t, admin, "grant "+approver+" requests no"); !strings.Contains(got, "They may not answer account requests.") {
		t.Errorf("flag off: %q", got)
	}
	if role := f.actor(t, approver).Role(); role != policy.Inviter {
		t.Errorf("after requests no: %s", role)
	}
	f.mustSay(t, admin, "grant "+inviter+" requests yes helps with requests")
	list := f.mustSay(t, admin, "inviters")
	if !strings.Contains(list, inviter+"  granted by") || !strings.Contains(list, "answers account requests (helps with requests)") {
		t.Errorf("inviters:\n%s", list)
	}
	if !strings.Contains(f.notes.all(), inviter+": You may now answer account requests for durare.test") {
		t.Errorf("not told:\n%s", f.notes.all())
	}
}

// TestRequestCommandsAdhoc: the same operations as forms: the list of open
// requests, approval with a confirmation, denial with a reason.
func TestRequestCommandsAdhoc(t *testing.T) {
	f := requestsFixture(t)
	anna := f.submit(t, hostile)
	ben := f.submit(t, invites.NewRequest{Name: "Ben", Message: "Alice told me"})
	from := jid.MustParse(approver + "/laptop")
	run := func(node, action, sid string, fields ...dataform.Field) commandOut {
		t.Helper()
		cmd := commandIn{Node: node, Action: action, SessionID: sid}
		if len(fields) > 0 {
			cmd.Forms = []dataform.Form{{Type: dataform.TypeSubmit, Fields: fields}}
		}
		out, cerr := f.bot.runCommand(context.Background(), iqRequest{iq: stanza.IQ{From: from}, command: cmd}, f.actor(t, approver))
		if cerr != nil {
			t.Fatalf("%s %s: %+v", node, action, cerr)
		}
		return out
	}

	list := run("list-requests", actionExecute, "")
	if list.Status != statusExecuting { // the page field
		t.Fatalf("list-requests: %+v", list)
	}
	list = run("list-requests", actionComplete, list.SessionID, dataform.Field{Var: "page", Values: []string{""}})
	if list.Form == nil || list.Form.Reported != nil || len(list.Notes) != 0 {
		t.Fatalf("list-requests result %+v", list)
	}
	for _, fl := range list.Form.Fields {
		checkNoLinks(t, strings.Join(fl.Values, " "))
	}

	form := run("approve-request", actionExecute, "")
	if form.Form == nil || len(form.Form.Fields) != 2 || len(form.Form.Fields[0].Options) != 2 {
		t.Fatalf("approve form %+v", form.Form)
	}
	checkNoLinks(t, form.Form.Fields[0].Options[0].Label)
	confirm := run("approve-request", actionNext, form.SessionID, dataform.Field{Var: "id", Values: []string{anna}})
	if confirm.Status != statusExecuting || !strings.Contains(formText(confirm.Form), "Approve request "+anna) {
		t.Fatalf("confirmation %+v", confirm)
	}
	checkNoLinks(t, formText(confirm.Form))
	done := run("approve-request", actionComplete, confirm.SessionID)
	if done.Status != statusCompleted || len(done.Notes) != 1 || !strings.Contains(done.Notes[0].Text, "Approved request "+anna) {
		t.Fatalf("approval %+v", done)
	}

	deny := run("deny-request", actionExecute, "")
	confirm = run("deny-request", actionNext, deny.SessionID,
		dataform.Field{Var: "id", Values: []string{ben}}, dataform.Field{Var: "reason", Values: []string{"no one knows you"}})
	checkNoLinks(t, confirm.Form.Fields[0].Values[0])
	done = run("deny-request", actionComplete, confirm.SessionID)
	if len(done.Notes) != 1 || !strings.Contains(done.Notes[0].Text, "Declined request "+ben) {
		t.Fatalf("denial %+v", done)
	}
	// With no open request left, approving has nothing to choose.
	if none := run("approve-request", actionExecute, ""); none.Status != statusCompleted || len(none.Notes) != 1 ||
		none.Notes[0].Text != "There are no open account requests to approve." {
		t.Fatalf("approve with no open requests: %+v", none)
	}
	// A second approval through the form learns who answered first, as
	// the command's error.
	f.submit(t, invites.NewRequest{Name: "Cleo", Message: "hello"})
	form = run("approve-request", actionExecute, "")
	confirm = run("approve-request", actionNext, form.SessionID, dataform.Field{Var: "id-other", Values: []string{ben}})
	_, cerr := f.bot.runCommand(context.Background(), iqRequest{iq: stanza.IQ{From: from},
		command: commandIn{Node: "approve-request", Action: actionComplete, SessionID: confirm.SessionID}}, f.actor(t, approver))
	if cerr == nil || cerr.Cond.XMLName.Local != string(stanza.Conflict) || cerr.Text == nil ||
		!strings.Contains(cerr.Text.Text, "already declined by "+approver) {
		t.Fatalf("late approval %+v", cerr)
	}
}

// TestRequestCommandsOff: without http.requests the commands are neither
// listed nor run.
func TestRequestCommandsOff(t *testing.T) {
	f := newFixture(t)
	if help := f.mustSay(t, admin, "help"); strings.Contains(help, "approve") {
		t.Errorf("help lists approve with requests off:\n%s", help)
	}
	if got := f.mustSay(t, admin, "requests"); got != msgRequestsOff {
		t.Errorf("requests with requests off: %q", got)
	}
}
