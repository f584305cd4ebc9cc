package bot

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
)

// withEventPages gives the fixture's bot a web server's event pages.
func withEventPages(f *fixture) {
	f.bot.eventLinks = func(id string) (string, string) {
		return "https://invites.durare.test/e/" + id, "https://invites.durare.test/e/" + id + "/qr.png"
	}
}

func TestEventCommands(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if got := f.mustSay(t, admin, "event 3 3h"); !strings.Contains(got, "need the bot's web page") {
		t.Errorf("event without a web server: %q", got)
	}
	withEventPages(f)
	grantInviter(t, f)
	if got := f.mustSay(t, inviter, "event 3 3h"); !strings.Contains(got, "does not include event links") {
		t.Errorf("event without an allowance: %q", got)
	}
	if got := f.mustSay(t, admin, "grant "+inviter+" events 5"); !strings.Contains(got, "Event links of up to 5 people") {
		t.Errorf("grant with events: %q", got)
	}
	if got := f.mustSay(t, admin, "inviters"); !strings.Contains(got, "event links up to 5") {
		t.Errorf("inviters:\n%s", got)
	}
	for line, want := range map[string]string{
		"event 6 3h":     "at most 5 people",
		"event 3 25h":    "must be from 1s to 24h",
		"event 3 soon":   "must be a duration like 3h",
		"event 3":        "Missing <valid>: how long it stays open",
		"event three 3h": "Uses must be a whole number",
	} {
		if got := f.mustSay(t, inviter, line); !strings.Contains(got, want) {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}

	res, ok := f.bot.serveChat(ctx, inviter, "event 3 1h30m Linux user group")
	if !ok {
		t.Fatal("no reply")
	}
	evs, err := f.store.Events(ctx, inviter)
	if err != nil || len(evs) != 1 {
		t.Fatalf("stored links: %+v, %v", evs, err)
	}
	id := evs[0].ID
	for _, want := range []string{"Event link " + id + " for up to 3 people", "(1h30m)", "\nhttps://invites.durare.test/e/" + id + "\n", "close-event " + id} {
		if !strings.Contains(res.text, want) {
			t.Errorf("event reply lacks %q:\n%s", want, res.text)
		}
	}
	if res.image != "https://invites.durare.test/e/"+id+"/qr.png" || res.form.Value("url") != "https://invites.durare.test/e/"+id {
		t.Errorf("image %q, form url %q", res.image, res.form.Value("url"))
	}
	if evs[0].MaxUses != 3 || evs[0].Note != "Linux user group" {
		t.Errorf("stored link: %+v", evs[0])
	}

	if _, err := f.bot.svc.ClaimEventInvite(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := f.mustSay(t, inviter, "events"); !strings.Contains(got, id+"  open until") || !strings.Contains(got, "1 of 3 handed out (Linux user group)") {
		t.Errorf("events:\n%s", got)
	}
	if got := f.mustSay(t, admin, "events "+inviter); !strings.Contains(got, "Event links of "+inviter) || !strings.Contains(got, id) {
		t.Errorf("admin's events of the inviter:\n%s", got)
	}
	if got := f.mustSay(t, admin, "events"); !strings.Contains(got, "You have no event links") {
		t.Errorf("admin's own events: %q", got)
	}
	// The invite it handed out is the inviter's, and does not count
	// toward the inviter's own invites (per-day 5 by default).
	if got := f.mustSay(t, inviter, "invites"); !strings.Contains(got, "pending") || !strings.Contains(got, "from event link "+id) {
		t.Errorf("invites:\n%s", got)
	}

	if got := f.mustSay(t, stranger, "close-event "+id); !strings.Contains(got, "may not use close-event") {
		t.Errorf("stranger closing: %q", got)
	}
	got := f.mustSay(t, inviter, "close-event "+id)
	if !strings.Contains(got, "Event link "+id+" is closed") || !strings.Contains(got, "handed out 1 of 3; cancelled 1 unused invite(s): their links no longer work.") {
		t.Errorf("close-event: %q", got)
	}
	if got := f.mustSay(t, inviter, "close-event "+id); !strings.Contains(got, "was already closed; none of its invites was still unused") {
		t.Errorf("closing again: %q", got)
	}
	if got := f.mustSay(t, inviter, "events"); !strings.Contains(got, "closed ") || !strings.Contains(got, "by "+inviter) {
		t.Errorf("events after closing:\n%s", got)
	}
	if got := f.mustSay(t, inviter, "close-event abcdefghijklmnop"); !strings.Contains(got, "No such event link among yours") {
		t.Errorf("closing an unknown link: %q", got)
	}
}

// TestCloseEventFormOffersOpenLinks: the ad-hoc form lists the actor's
// links that are not closed; admins may type any link's id.
func TestCloseEventFormOffersOpenLinks(t *testing.T) {
	f := newFixture(t)
	withEventPages(f)
	f.mustSay(t, admin, "event 3 3h party")
	f.clock.advance(time.Minute)
	closed := f.mustSay(t, admin, "event 2 1h")
	evs, _ := f.store.Events(context.Background(), admin)
	if len(evs) != 2 || !strings.Contains(closed, evs[0].ID) {
		t.Fatalf("links %+v", evs)
	}
	f.mustSay(t, admin, "close-event "+evs[0].ID)
	req := iqRequest{iq: stanza.IQ{From: jid.MustParse(admin + "/laptop")}, command: commandIn{Node: "close-event", Action: actionExecute}}
	out, cerr := f.bot.runCommand(context.Background(), req, f.actor(t, admin))
	if cerr != nil {
		t.Fatal(cerr)
	}
	if len(out.Form.Fields) != 2 || out.Form.Fields[1].Var != "id-other" {
		t.Fatalf("admin's form: %+v", out.Form.Fields)
	}
	opts := out.Form.Fields[0].Options
	// The label holds the id and our words, never the note (issue 20).
	if len(opts) != 1 || opts[0].Value != evs[1].ID || !strings.HasPrefix(opts[0].Label, evs[1].ID) || strings.Contains(opts[0].Label, "party") {
		t.Errorf("options %+v, want only the open link", opts)
	}
}

func TestEventInviteUsedNotice(t *testing.T) {
	got := eventText(invites.InviteUsed{Invite: invites.Invite{ID: "abcdefghijklmnop", Event: "qrstuvwxyzabcdef"}, Account: "newbie@durare.test"})
	if want := "Invite abcdefghijklmnop from your event link qrstuvwxyzabcdef was used: newbie@durare.test joined."; got != want {
		t.Errorf("notice %q, want %q", got, want)
	}
}

// TestCreateEventForm: the ad-hoc command takes the same parameters as
// chat and answers with the link in a result form.
func TestCreateEventForm(t *testing.T) {
	f := newFixture(t)
	withEventPages(f)
	from := jid.MustParse(admin + "/laptop")
	out, cerr := f.bot.runCommand(context.Background(), iqRequest{iq: stanza.IQ{From: from},
		command: commandIn{Node: "create-event", Action: actionExecute}}, f.actor(t, admin))
	if cerr != nil {
		t.Fatal(cerr)
	}
	var vars []string
	for _, fl := range out.Form.Fields {
		vars = append(vars, fl.Var)
	}
	if strings.Join(vars, ",") != "uses,valid,note" {
		t.Fatalf("form fields %v", vars)
	}
	submit := func(valid string) (commandOut, *commandError) {
		form := dataform.Form{Type: dataform.TypeSubmit, Fields: []dataform.Field{
			{Var: "uses", Values: []string{"12"}}, {Var: "valid", Values: []string{valid}}}}
		s, _ := f.bot.sessions.open(from.String(), "create-event")
		f.bot.sessions.put(s)
		return f.bot.runCommand(context.Background(), iqRequest{iq: stanza.IQ{From: from},
			command: commandIn{Node: "create-event", Action: actionComplete, SessionID: s.id, Forms: []dataform.Form{form}}}, f.actor(t, admin))
	}
	// A bad value shows the form again with what is wrong.
	again, cerr := submit("2 days")
	if cerr != nil || again.Status != statusExecuting || !strings.Contains(formMistake(again), "must be a duration") {
		t.Errorf("a bad duration: %+v, %+v", again, cerr)
	}
	done, cerr := submit("2h")
	if cerr != nil || done.Status != statusCompleted || done.Form == nil {
		t.Fatalf("create-event: %+v, %+v", done, cerr)
	}
	evs, _ := f.store.Events(context.Background(), admin)
	if len(evs) != 1 || evs[0].MaxUses != 12 || !evs[0].Expires.Equal(evs[0].Created.Add(2*time.Hour)) {
		t.Fatalf("stored links %+v", evs)
	}
	if got := done.Form.Value("url"); got != "https://invites.durare.test/e/"+evs[0].ID {
		t.Errorf("url field %q", got)
	}
}

// TestGrantEventsByChat: "events N" sets the allowance, "events none" (or
// 0) takes it away, leaving it out keeps it, bad values change nothing,
// and the reply names the open links the change leaves as they were.
func TestGrantEventsByChat(t *testing.T) {
	f := newFixture(t)
	withEventPages(f)
	grantInviter(t, f)
	// Her links share the allowance: 3 and 5 of 8, and no third.
	f.mustSay(t, admin, "grant "+inviter+" events 8")
	f.mustSay(t, inviter, "event 3 3h")
	f.clock.advance(time.Minute)
	if got := f.mustSay(t, inviter, "event 6 1h"); !strings.Contains(got, "may hand out 8 invites per 24 hours, all of them together; 0 handed out in the last 24 hours and 3 held by open links leave 5. Ask for 5 or fewer.") {
		t.Errorf("a link beyond the allowance left: %q", got)
	}
	f.mustSay(t, inviter, "event 5 1h")
	if got := f.mustSay(t, inviter, "event 1 1h"); !strings.Contains(got, "leave 0. An invite frees up 24 hours after it was handed out") {
		t.Errorf("a link with nothing left: %q", got)
	}
	evs, err := f.store.Events(context.Background(), inviter)
	if err != nil || len(evs) != 2 {
		t.Fatalf("links %+v, %v", evs, err)
	}
	newer, older := evs[0].ID, evs[1].ID

	def := f.bot.svc.DefaultLimits()
	upd := fmt.Sprintf("Updated the grant of %s: per-day %d (default), pending %d (default).", inviter, def.PerDay, def.MaxPending)
	bad := func(v string) string {
		return fmt.Sprintf("Events must be a number from 1 to 1000, or none, not %q.\nUsage: grant <jid> [per-day N|default] [pending N|default] [requests yes|no] [events N|none] [note]", v)
	}
	tests := []struct {
		who, line  string
		want       string // the whole reply
		contains   string // or a part of it
		wantEvents int    // the inviter's allowance afterwards
	}{
		{who: admin, line: "grant " + inviter, want: upd + " Event links of up to 8 people.", wantEvents: 8},
		{who: admin, line: "grant " + inviter + " events -1", want: bad("-1"), wantEvents: 8},
		{who: admin, line: "grant " + inviter + " events lots", want: bad("lots"), wantEvents: 8},
		{who: admin, line: "grant " + inviter + " events 4", wantEvents: 4, want: upd + " Event links of up to 4 people." +
			" Their open event link " + newer + " stays open until it expires or fills up; close-event " + newer + " closes it and cancels its unused invites."},
		{who: admin, line: "grant " + inviter + " events none", wantEvents: 0, want: upd + " No event links." +
			" Their 2 open event links (" + newer + ", " + older + ") stay open until they expire or fill up; close-event <id> closes one and cancels its unused invites."},
		{who: inviter, line: "event 3 3h", contains: "Your grant does not include event links"},
		{who: admin, line: "close-event " + newer, contains: "is closed"},
		{who: admin, line: "close-event " + older, contains: "is closed"},
		{who: admin, line: "grant " + inviter + " events 0", want: upd + " No event links."},
		{who: admin, line: "grant " + inviter, want: upd},
		{who: admin, line: fmt.Sprintf("grant %s events %d", inviter, def.EventMaxUses+1), wantEvents: def.EventMaxUses + 1,
			want: upd + fmt.Sprintf(" Event links of up to %d people (the configured most, policy.event_max_uses; the grant says %d).", def.EventMaxUses, def.EventMaxUses+1)},
		{who: admin, line: "grant " + inviter + " events 2", want: upd + " Event links of up to 2 people.", wantEvents: 2},
		{who: admin, line: "grant dave@elsewhere.test events none", wantEvents: 2,
			want: fmt.Sprintf("dave@elsewhere.test may now create invites (per-day %d (default), pending %d (default)). No event links.", def.PerDay, def.MaxPending)},
	}
	for _, tc := range tests {
		got := f.mustSay(t, tc.who, tc.line)
		if tc.want != "" && got != tc.want || !strings.Contains(got, tc.contains) {
			t.Errorf("%s: %q\ngot  %q\nwant %q", tc.who, tc.line, got, tc.want+tc.contains)
		}
		if g, err := f.store.Grant(context.Background(), inviter); err != nil || g.Events != tc.wantEvents {
			t.Errorf("after %q the grant is %+v, %v; want events %d", tc.line, g, err, tc.wantEvents)
		}
	}
	got := f.mustSay(t, admin, "audit "+inviter)
	for _, want := range []string{"(updated; per-day default, pending default, events none)", "(updated; per-day default, pending default, events 4)"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit lacks %q:\n%s", want, got)
		}
	}
}

// TestGrantEventsByForm: the grant form's events field takes a number,
// none or 0; left empty it keeps the allowance; a bad value brings the
// form back and changes nothing.
func TestGrantEventsByForm(t *testing.T) {
	f := newFixture(t)
	grantInviter(t, f)
	f.mustSay(t, admin, "grant "+inviter+" events 5")
	tests := []struct {
		value      string
		wantNote   string // in the completed command's note, or the error note
		wantErr    bool
		wantEvents int
	}{
		{value: "", wantNote: "Event links of up to 5 people.", wantEvents: 5},
		{value: "none", wantNote: "No event links.", wantEvents: 0},
		{value: "7", wantNote: "Event links of up to 7 people.", wantEvents: 7},
		{value: "0", wantNote: "No event links.", wantEvents: 0},
		{value: "3", wantNote: "Event links of up to 3 people.", wantEvents: 3},
		{value: "lots", wantNote: `“People their event links may admit per 24 hours” must be a number from 1 to 1000, or none, not "lots"`, wantErr: true, wantEvents: 3},
		{value: "-1", wantNote: `“People their event links may admit per 24 hours” must be a number from 1 to 1000, or none, not "-1"`, wantErr: true, wantEvents: 3},
	}
	for _, tc := range tests {
		out, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionExecute})
		if cerr != nil {
			t.Fatal(cerr)
		}
		var label string
		for _, fl := range out.Form.Fields {
			if fl.Var == "events" {
				label = fl.Label
			}
		}
		if !strings.Contains(label, "or none; empty: unchanged; new grants: none)") {
			t.Errorf("events field label %q", label)
		}
		done, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionComplete, SessionID: out.SessionID,
			Forms: submit(field("jid", inviter), field("events", tc.value))})
		switch {
		case cerr != nil:
			t.Errorf("events %q: %v", tc.value, cerr)
		case tc.wantErr && (done.Status != statusExecuting || !strings.Contains(formMistake(done), tc.wantNote)):
			t.Errorf("events %q: %s, error lines %q, want the form again saying %q", tc.value, done.Status, formMistake(done), tc.wantNote)
		case !tc.wantErr && (done.Status != statusCompleted || len(done.Notes) != 1 || !strings.Contains(done.Notes[0].Text, tc.wantNote)):
			t.Errorf("events %q: %s, notes %+v, want %q", tc.value, done.Status, done.Notes, tc.wantNote)
		}
		if g, err := f.store.Grant(context.Background(), inviter); err != nil || g.Events != tc.wantEvents {
			t.Errorf("after events %q the grant is %+v, %v; want events %d", tc.value, g, err, tc.wantEvents)
		}
	}
}

// TestEventFormRefusedBeforeItIsFilled: someone whose grant has no event
// links is told at once, not after filling the form in (a real-client
// pass: the form came, then a number complaint, and only then the refusal).
func TestEventFormRefusedBeforeItIsFilled(t *testing.T) {
	f := newFixture(t)
	withEventPages(f)
	f.mustSay(t, admin, "grant "+inviter)
	out, cerr := f.adhoc(t, inviter, commandIn{Node: "create-event", Action: actionExecute})
	if cerr == nil {
		t.Fatalf("create-event without an allowance showed %+v, want a refusal at once", out)
	}
	if cerr.Cond.XMLName.Local != "not-allowed" || cerr.Text == nil || !strings.Contains(cerr.Text.Text, "does not include event links") {
		t.Errorf("refusal %+v, want not-allowed saying the grant has no event links", cerr.stanzaError)
	}
	f.mustSay(t, admin, "grant "+inviter+" events 5")
	if out, cerr := f.adhoc(t, inviter, commandIn{Node: "create-event", Action: actionExecute}); cerr != nil || out.Form == nil {
		t.Errorf("create-event with an allowance: %+v, %v; want its form", out, cerr)
	}
}
