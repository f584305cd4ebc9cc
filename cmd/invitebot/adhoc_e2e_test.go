package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/commands"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
)

// commandResult is the payload of a command response, decoded.
type commandResult struct {
	commands.Response
	Form    *dataform.Form
	Notes   []string
	Actions string // the <actions/> element re-encoded, "" if none
}

// execute runs one step of an ad-hoc command with mellium's client.
func execute(t *testing.T, c *prosodytest.Client, cmd commands.Command, form *dataform.Form) commandResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var payload xml.TokenReader
	if form != nil {
		payload = tokens(t, form)
	}
	resp, r, err := cmd.ExecuteIQ(ctx, stanza.IQ{To: cmd.JID}, payload, c.Session())
	if err != nil {
		t.Fatalf("execute %s (action %q): %v", cmd.Node, cmd.Action, err)
	}
	defer r.Close()
	res := commandResult{Response: resp}
	d := xml.NewTokenDecoder(r)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read command payload: %v", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch start.Name.Local {
		case "x":
			res.Form = &dataform.Form{}
			if err := d.DecodeElement(res.Form, &start); err != nil {
				t.Fatal(err)
			}
		case "note":
			var n struct {
				Type string `xml:"type,attr"`
				Text string `xml:",chardata"`
			}
			if err := d.DecodeElement(&n, &start); err != nil {
				t.Fatal(err)
			}
			res.Notes = append(res.Notes, n.Type+": "+n.Text)
		case "actions":
			var a struct {
				Execute  string    `xml:"execute,attr"`
				Prev     *struct{} `xml:"prev"`
				Next     *struct{} `xml:"next"`
				Complete *struct{} `xml:"complete"`
			}
			if err := d.DecodeElement(&a, &start); err != nil {
				t.Fatal(err)
			}
			res.Actions = a.Execute + ":"
			for name, present := range map[string]bool{"prev": a.Prev != nil, "next": a.Next != nil, "complete": a.Complete != nil} {
				if present {
					res.Actions += " <" + name + "/>"
				}
			}
		}
	}
	return res
}

// tokens encodes v for mellium's send functions.
func tokens(t *testing.T, v any) xml.TokenReader {
	t.Helper()
	raw, err := xml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return xmlstream.ReaderFunc(stripNS(xml.NewDecoder(bytes.NewReader(raw))))
}

// stripNS drops decoded xmlns attributes, which the encoder would
// otherwise write a second time.
func stripNS(d *xml.Decoder) func() (xml.Token, error) {
	return func() (xml.Token, error) {
		tok, err := d.Token()
		if start, ok := tok.(xml.StartElement); ok {
			var attrs []xml.Attr
			for _, a := range start.Attr {
				if a.Name.Local != "xmlns" && a.Name.Space != "xmlns" {
					attrs = append(attrs, a)
				}
			}
			start.Attr = attrs
			return start, err
		}
		return tok, err
	}
}

// rawCommand sends a <command/> given as XML and returns the whole answer
// re-encoded, so tests can look for XEP-0050's application conditions,
// which mellium's stanza.Error does not keep.
func rawCommand(t *testing.T, c *prosodytest.Client, to jid.JID, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	r, err := c.Session().SendIQElement(ctx, stripNSReader(command), stanza.IQ{Type: stanza.SetIQ, To: to})
	if err != nil {
		t.Fatalf("send command: %v", err)
	}
	defer r.Close()
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(enc, r); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	enc.Flush()
	return buf.String()
}

func stripNSReader(s string) xml.TokenReader {
	return xmlstream.ReaderFunc(stripNS(xml.NewDecoder(strings.NewReader(s))))
}

func commandNodes(t *testing.T, c *prosodytest.Client, to jid.JID) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	iter := commands.Fetch(ctx, to, c.Session())
	var nodes []string
	for iter.Next() {
		nodes = append(nodes, iter.Command().Node)
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("fetch commands: %v", err)
	}
	iter.Close()
	sort.Strings(nodes)
	return nodes
}

func TestAdhocDiscoveryByRole(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	carol := w.user(t, "carol", w.srv.OtherDomain)
	mallory := w.user(t, "mallory", w.srv.OtherDomain)
	expectContains(t, admin.Chat(t, w.component, "grant carol@"+w.srv.OtherDomain), "may now")

	// Password resets are offered where the server has them (13, not
	// 0.12), once the bot has seen the server's command list.
	reset := ""
	if !strings.HasPrefix(w.srv.Version, "0.12") {
		reset = " reset-password"
		testwait.For(t, e2eTimeout, "reset to be offered on Prosody 13", func() bool {
			return strings.Contains(admin.Chat(t, w.component, "help"), "reset <jid>")
		})
	}
	tests := []struct {
		who  *prosodytest.Client
		want string
	}{
		{mallory, ""},
		// Without a web server there are no event links to make
		// (create-event), but listing and closing old ones still works.
		{carol, "cancel-invite close-event list-events list-invites" + reset + " tree " + invites.NodeCreateAccount},
		{admin, "audit backup cancel-invite close-event grant list-events list-inviters list-invites pause" + reset + " resume revoke suspend tree unsuspend " + invites.NodeCreateAccount + " whoinvited"},
	}
	for _, tc := range tests {
		if got := strings.Join(commandNodes(t, tc.who, w.component), " "); got != tc.want {
			t.Errorf("%s sees commands %q, want %q", tc.who.JID().Bare(), got, tc.want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	info := discoNodeInfo(ctx, t, carol, w.component, invites.NodeCreateAccount)
	expectContains(t, info, `category="automation"`, `type="command-node"`)
	expectContains(t, discoNodeInfo(ctx, t, carol, w.component, "grant"), "<forbidden")
	expectContains(t, discoNodeInfo(ctx, t, carol, w.component, "no-such-command"), "<item-not-found")
}

func discoNodeInfo(ctx context.Context, t *testing.T, c *prosodytest.Client, to jid.JID, node string) string {
	t.Helper()
	r, err := c.Session().SendIQElement(ctx, stripNSReader(`<query xmlns="http://jabber.org/protocol/disco#info" node="`+node+`"/>`),
		stanza.IQ{Type: stanza.GetIQ, To: to})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(enc, r); err != nil {
		t.Fatal(err)
	}
	enc.Flush()
	return buf.String()
}

func TestAdhocCreateAccountRegisters(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	expectContains(t, admin.Chat(t, w.component, "grant carol@"+w.srv.OtherDomain), "may now")
	carol := w.user(t, "carol", w.srv.OtherDomain)

	res := execute(t, carol, commands.Command{JID: w.component, Node: invites.NodeCreateAccount}, nil)
	if res.Status != "completed" || res.Form == nil {
		t.Fatalf("create-account: status %q, form %v, notes %v", res.Status, res.Form, res.Notes)
	}
	if got := res.Form.Value("FORM_TYPE"); got != invites.FormTypeInvite {
		t.Errorf("FORM_TYPE %q", got)
	}
	if res.Form.Value("expire") == "" {
		t.Error("no expire field")
	}
	uri, err := invites.ParseURI(res.Form.Value("uri"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	newJID, err := ibr.Register(ctx, w.srv.IBRConfig(), uri.Token, "formuser", "a fine password")
	if err != nil {
		t.Fatalf("register with the ad-hoc token: %v", err)
	}
	prosodytest.Login(t, w.srv, newJID, "a fine password")
	// The same invite shows up in the chat view: one table, two views.
	expectContains(t, carol.Chat(t, w.component, "invites"), res.Form.Value("id"), "pending")
}

func TestAdhocGrantCancelAndErrors(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	mallory := w.user(t, "mallory", w.srv.OtherDomain)
	grant := commands.Command{JID: w.component, Node: "grant"}

	// Two-stage grant: a form, then the submission.
	first := execute(t, admin, grant, nil)
	if first.Status != "executing" || first.Form == nil || !first.Form.Has("jid") || !first.Form.Has("note") {
		t.Fatalf("grant stage 1: %+v", first)
	}
	expectContains(t, first.Actions, "complete:", "<complete")
	sub := &dataform.Form{Type: dataform.TypeSubmit, Fields: []dataform.Field{
		{Var: "jid", Values: []string{"Carol@" + w.srv.OtherDomain}},
		{Var: "note", Values: []string{"from the form"}},
	}}
	done := execute(t, admin, first.Complete(), sub)
	if done.Status != "completed" {
		t.Fatalf("grant completion: %+v", done)
	}
	expectContains(t, strings.Join(done.Notes, "\n"), "carol@"+w.srv.OtherDomain+" may now create invites")
	expectContains(t, admin.Chat(t, w.component, "inviters"), "carol@"+w.srv.OtherDomain, "from the form")

	// Cancel in the middle; the session is gone afterwards.
	open := execute(t, admin, grant, nil)
	cancelled := execute(t, admin, open.Cancel(), nil)
	if cancelled.Status != "canceled" {
		t.Errorf("cancel: status %q", cancelled.Status)
	}
	sid := open.SID
	expectContains(t, rawCommand(t, admin, w.component,
		`<command xmlns="http://jabber.org/protocol/commands" node="grant" action="complete" sessionid="`+sid+`"/>`),
		`type="error"`, "bad-sessionid")

	// A session belongs to the full JID that opened it.
	open = execute(t, admin, grant, nil)
	admin2 := prosodytest.Login(t, w.srv, jid.MustParse("admin@"+w.srv.Domain), password)
	expectContains(t, rawCommand(t, admin2, w.component,
		`<command xmlns="http://jabber.org/protocol/commands" node="grant" action="complete" sessionid="`+open.SID+`">`+
			`<x xmlns="jabber:x:data" type="submit"><field var="jid"><value>eve@x.org</value></field></x></command>`),
		"bad-sessionid")

	// Forms with a wrong value come back, filled in, with what is wrong
	// in their first lines; no form at all is a bad request.
	for _, body := range []string{
		`<x xmlns="jabber:x:data" type="submit"><field var="jid"><value>not a jid@@</value></field></x>`,
		`<x xmlns="jabber:x:data" type="submit"><field var="note"><value>x</value></field></x>`,
	} {
		answer := rawCommand(t, admin, w.component,
			`<command xmlns="http://jabber.org/protocol/commands" node="grant" action="complete" sessionid="`+open.SID+`">`+body+`</command>`)
		expectContains(t, answer, `status="executing"`, `var="error-1"`, `type="form"`)
		if strings.Contains(answer, "<note") {
			t.Errorf("the mistake is said in a note too, which Gajim shows twice: %s", answer)
		}
	}
	// A refusal is a stanza error with chat's words, naming the command
	// and its session, which ends.
	refused := execute(t, admin, grant, nil)
	answer := rawCommand(t, admin, w.component,
		`<command xmlns="http://jabber.org/protocol/commands" node="grant" action="complete" sessionid="`+refused.SID+`">`+
			`<x xmlns="jabber:x:data" type="submit"><field var="jid"><value>admin@`+w.srv.Domain+`</value></field></x></command>`)
	expectContains(t, answer, `type="error"`, `node="grant"`, `sessionid="`+refused.SID+`"`, "<not-allowed", `lang="en"`,
		"admin@"+w.srv.Domain+" is an admin of this service: admins may always invite and need no grant.")
	expectContains(t, rawCommand(t, admin, w.component,
		`<command xmlns="http://jabber.org/protocol/commands" node="grant" action="complete" sessionid="`+refused.SID+`"/>`),
		"bad-sessionid")
	expectContains(t, rawCommand(t, admin, w.component,
		`<command xmlns="http://jabber.org/protocol/commands" node="grant" action="complete" sessionid="`+open.SID+`"></command>`),
		"<bad-request", "bad-payload")
	expectContains(t, rawCommand(t, admin, w.component,
		`<command xmlns="http://jabber.org/protocol/commands" node="grant" action="frobnicate"/>`), "malformed-action")
	expectContains(t, rawCommand(t, admin, w.component,
		`<command xmlns="http://jabber.org/protocol/commands" node="grant" action="prev" sessionid="`+open.SID+`"/>`), "bad-action")
	expectContains(t, rawCommand(t, admin, w.component,
		`<command xmlns="http://jabber.org/protocol/commands" node="no-such-node" action="execute"/>`), "<item-not-found")
	expectContains(t, rawCommand(t, mallory, w.component,
		`<command xmlns="http://jabber.org/protocol/commands" node="grant" action="execute"/>`), "<forbidden")
	expectContains(t, rawCommand(t, mallory, w.component,
		`<command xmlns="http://jabber.org/protocol/commands" node="`+invites.NodeCreateAccount+`" action="execute"/>`), "<forbidden")

	// None of the bad requests closed the link: chat still works.
	expectContains(t, admin.Chat(t, w.component, "inviters"), "carol@"+w.srv.OtherDomain)
	if strings.Contains(admin.Chat(t, w.component, "inviters"), "eve@x.org") {
		t.Error("a foreign session's submission granted eve")
	}
}

func TestAdhocCancelInviteWithConfirmation(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	id := execute(t, admin, commands.Command{JID: w.component, Node: invites.NodeCreateAccount}, nil).Form.Value("id")
	if id == "" {
		t.Fatal("no invite id in the create-account result")
	}

	first := execute(t, admin, commands.Command{JID: w.component, Node: "cancel-invite"}, nil)
	if first.Form == nil || len(first.Form.Fields) == 0 || first.Form.Fields[0].Type != dataform.ListSingle {
		t.Fatalf("cancel-invite stage 1: %+v", first.Form)
	}
	if opts := first.Form.Fields[0].Options; len(opts) != 1 || opts[0].Value != id {
		t.Errorf("options %+v, want the one pending invite %s", opts, id)
	}
	expectContains(t, first.Actions, "next:", "<next")
	pick := &dataform.Form{Type: dataform.TypeSubmit, Fields: []dataform.Field{{Var: "id", Values: []string{id}}}}
	confirm := execute(t, admin, first.Next(), pick)
	if confirm.Status != "executing" || confirm.Form == nil {
		t.Fatalf("confirmation stage: %+v", confirm)
	}
	expectContains(t, confirm.Actions, "complete:", "<prev", "<complete")
	back := execute(t, admin, confirm.Prev(), nil)
	if got := back.Form.Value("id"); got != id {
		t.Errorf("prev lost the choice: %q", got)
	}
	again := execute(t, admin, back.Next(), pick)
	done := execute(t, admin, again.Complete(), nil)
	if done.Status != "completed" {
		t.Fatalf("completion: %+v", done)
	}
	expectContains(t, strings.Join(done.Notes, "\n"), "Invite "+id+" is cancelled; its link no longer works.")

	list := execute(t, admin, commands.Command{JID: w.component, Node: "list-invites"}, nil)
	if list.Form == nil {
		t.Fatalf("list-invites: %+v", list)
	}
	// Admins get a form first (whose invites); submit it empty.
	if list.Status == "executing" {
		list = execute(t, admin, list.Complete(), &dataform.Form{Type: dataform.TypeSubmit})
	}
	// A list is text lines (issue 20: Gajim 1.7 shows no <reported/>).
	if list.Form == nil || list.Form.Reported != nil {
		t.Fatalf("list-invites result: %+v", list.Form)
	}
	var state string
	for _, f := range list.Form.Fields {
		if len(f.Values) == 1 && strings.HasPrefix(f.Values[0], "  State: ") {
			state = strings.TrimPrefix(f.Values[0], "  State: ")
		}
	}
	if state != "cancelled" {
		t.Errorf("listed state %q, want cancelled", state)
	}
}

// TestLongListsStayWithinServerLimits: hundreds of grants with long notes,
// and an audit log as long, once built replies over Prosody's 512 KiB
// stanza limit and the server closed the link. Every list is paged now, in
// chat and in forms (submitted the way poezio does, with next), and the
// link stays up.
func TestLongListsStayWithinServerLimits(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	note := strings.Repeat("a long note about why ", 9) // about 200 bytes
	const grants = 300
	for i := range grants {
		expectContains(t, admin.Chat(t, w.component, fmt.Sprintf("grant volunteer%03d@%s %s", i, w.srv.OtherDomain, note[:190])),
			"may now create invites")
	}
	expectContains(t, admin.Chat(t, w.component, "inviters"), "Showing 1–25 of 300.", "inviters page 2")
	expectContains(t, admin.Chat(t, w.component, "audit 300 page 12"), "Showing 276–300 of 300.")

	list := execute(t, admin, commands.Command{JID: w.component, Node: "list-inviters"}, nil)
	if list.Status != "executing" {
		t.Fatalf("list-inviters: %+v", list)
	}
	page := &dataform.Form{Type: dataform.TypeSubmit, Fields: []dataform.Field{{Var: "page", Values: []string{"12"}}}}
	done := execute(t, admin, list.Next(), page)
	rows := 0
	var lines []string
	if done.Form != nil {
		for _, f := range done.Form.Fields {
			lines = append(lines, f.Values...)
			if len(f.Values) == 1 && strings.HasPrefix(f.Values[0], "volunteer") {
				rows++
			}
		}
	}
	// A form's page holds what poezio shows of a 24-line terminal: here,
	// with notes this long, one inviter.
	if done.Status != "completed" || done.Form == nil || rows < 1 || len(done.Form.Fields) > 20 ||
		!strings.Contains(done.Form.Title, "(page 12 of ") {
		t.Fatalf("page 12 submitted with next: status %q, %d rows, form %+v", done.Status, rows, done.Form)
	}
	expectContains(t, strings.Join(lines, "\n"), "Showing 12–", "run it again with")
	expectContains(t, admin.Chat(t, w.component, "help"), "Commands:")
	if strings.Contains(w.logs.String(), "component link down") {
		t.Error("the link went down while serving long lists")
	}
}
