package bot

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"durare.org/invitebot/internal/dataform"
)

// grantUsage is the grant line of help, as an admin sees it.
const grantUsage = "Usage: grant <jid> [per-day N|default] [pending N|default] [requests yes|no] [events N|none] [note]"

// TestGrantLimitsByChat: "per-day N" and "pending N" set a grant's own
// limits, "default" puts one back on the configured default, leaving one
// out keeps it, and 0 or a bad value gets a short answer and changes
// nothing. The reply names the limits now in force.
func TestGrantLimitsByChat(t *testing.T) {
	f := newFixture(t)
	def := f.bot.svc.DefaultLimits()
	if def.PerDay == 3 || def.MaxPending == 7 {
		t.Fatalf("the defaults %+v collide with the values the test sets", def)
	}
	upd := func(perDay, pending string) string {
		return fmt.Sprintf("Updated the grant of %s: per-day %s, pending %s.", inviter, perDay, pending)
	}
	dPerDay := fmt.Sprintf("%d (default)", def.PerDay)
	dPending := fmt.Sprintf("%d (default)", def.MaxPending)
	tests := []struct {
		line                 string
		want                 string // the whole reply
		wantPerDay, wantPend int    // the inviter's own limits afterwards (0: default)
	}{
		{line: "grant " + inviter + " per-day 3 pending 7 trial",
			want: inviter + " may now create invites (per-day 3, pending 7).", wantPerDay: 3, wantPend: 7},
		{line: "grant " + inviter, want: upd("3", "7"), wantPerDay: 3, wantPend: 7},
		{line: "grant " + inviter + " per-day 0",
			want: "Per-day must be at least 1; for the configured default, write default.\n" + grantUsage, wantPerDay: 3, wantPend: 7},
		{line: "grant " + inviter + " pending 0 per-day default",
			want: "Pending must be at least 1; for the configured default, write default.\n" + grantUsage, wantPerDay: 3, wantPend: 7},
		{line: "grant " + inviter + " per-day -2",
			want: `Per-day must be a number from 1 to 1000, or default, not "-2".` + "\n" + grantUsage, wantPerDay: 3, wantPend: 7},
		{line: "grant " + inviter + " pending none",
			want: `Pending must be a number from 1 to 1000, or default, not "none".` + "\n" + grantUsage, wantPerDay: 3, wantPend: 7},
		{line: "grant " + inviter + " per-day default", want: upd(dPerDay, "7"), wantPend: 7},
		{line: "grant " + inviter, want: upd(dPerDay, "7"), wantPend: 7},
		{line: "grant " + inviter + " PENDING Default", want: upd(dPerDay, dPending)},
		{line: "grant " + inviter + " per-day default pending default", want: upd(dPerDay, dPending)},
		{line: "grant " + inviter + " pending 7", want: upd(dPerDay, "7"), wantPend: 7},
		{line: "grant " + inviter + " per-day 3 pending default", want: upd("3", dPending), wantPerDay: 3},
		{line: "grant dave@elsewhere.test per-day default", wantPerDay: 3,
			want: fmt.Sprintf("dave@elsewhere.test may now create invites (per-day %s, pending %s).", dPerDay, dPending)},
	}
	for _, tc := range tests {
		if got := f.mustSay(t, admin, tc.line); got != tc.want {
			t.Errorf("%q\ngot  %q\nwant %q", tc.line, got, tc.want)
		}
		g, err := f.store.Grant(context.Background(), inviter)
		if err != nil || g.PerDay != tc.wantPerDay || g.MaxPending != tc.wantPend || g.Note != "trial" {
			t.Errorf("after %q the grant is %+v, %v; want per-day %d, pending %d", tc.line, g, err, tc.wantPerDay, tc.wantPend)
		}
	}
	if got := f.mustSay(t, admin, "inviters"); !strings.Contains(got, fmt.Sprintf("per-day 3, pending %s (trial)", dPending)) {
		t.Errorf("inviters does not show the limits:\n%s", got)
	}
	got := f.mustSay(t, admin, "audit "+inviter)
	for _, want := range []string{"(updated; per-day default, pending 7; trial)", "(updated; per-day default, pending default; trial)",
		"(updated; per-day 3, pending default; trial)"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit lacks %q:\n%s", want, got)
		}
	}
	if got := f.mustSay(t, admin, "help"); !strings.Contains(got, strings.TrimPrefix(grantUsage, "Usage: ")) {
		t.Errorf("help lacks the grant grammar:\n%s", got)
	}
}

// TestGrantLimitsByForm: the grant form's per-day and pending fields take
// a number or default; left empty they keep the grant's limit; 0 or a bad
// value brings the form back and changes nothing. The labels say so.
func TestGrantLimitsByForm(t *testing.T) {
	f := newFixture(t)
	def := f.bot.svc.DefaultLimits()
	f.mustSay(t, admin, "grant "+inviter+" per-day 3 pending 7")
	tests := []struct {
		perDay, pending      string // what the form submits
		wantNote             string // in the completed command's note, or the error note
		wantErr              bool
		wantPerDay, wantPend int
	}{
		{wantNote: "per-day 3, pending 7.", wantPerDay: 3, wantPend: 7},
		{perDay: "default", wantNote: fmt.Sprintf("per-day %d (default), pending 7.", def.PerDay), wantPend: 7},
		{perDay: "4", pending: "Default", wantNote: fmt.Sprintf("per-day 4, pending %d (default).", def.MaxPending), wantPerDay: 4},
		{perDay: "0", wantNote: "“Invites per day” must be at least 1; for the configured default, write default.", wantErr: true, wantPerDay: 4},
		{pending: "0", wantNote: "“Pending invites at most” must be at least 1; for the configured default, write default.", wantErr: true, wantPerDay: 4},
		{perDay: "lots", wantNote: `“Invites per day” must be a number from 1 to 1000, or default, not "lots"`, wantErr: true, wantPerDay: 4},
		{pending: "3", wantNote: "per-day 4, pending 3.", wantPerDay: 4, wantPend: 3},
		{perDay: "default", pending: "default", wantNote: fmt.Sprintf("per-day %d (default), pending %d (default).", def.PerDay, def.MaxPending)},
	}
	labels := map[string]string{
		"per-day": "Invites per day (a number, or default; empty: unchanged; new grants: default)",
		"pending": "Pending invites at most (a number, or default; empty: unchanged; new grants: default)",
	}
	for _, tc := range tests {
		out, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionExecute})
		if cerr != nil {
			t.Fatal(cerr)
		}
		for _, fl := range out.Form.Fields {
			if want, ok := labels[fl.Var]; ok && fl.Label != want {
				t.Errorf("%s field label %q, want %q", fl.Var, fl.Label, want)
			}
		}
		name := fmt.Sprintf("per-day %q, pending %q", tc.perDay, tc.pending)
		done, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionComplete, SessionID: out.SessionID,
			Forms: submit(field("jid", inviter), field("per-day", tc.perDay), field("pending", tc.pending))})
		switch {
		case cerr != nil:
			t.Errorf("%s: %v", name, cerr)
		case tc.wantErr && (done.Status != statusExecuting || !strings.Contains(formMistake(done), tc.wantNote)):
			t.Errorf("%s: %s, error lines %q, want the form again saying %q", name, done.Status, formMistake(done), tc.wantNote)
		case !tc.wantErr && (done.Status != statusCompleted || len(done.Notes) != 1 || !strings.Contains(done.Notes[0].Text, tc.wantNote)):
			t.Errorf("%s: %s, notes %+v, want %q", name, done.Status, done.Notes, tc.wantNote)
		}
		g, err := f.store.Grant(context.Background(), inviter)
		if err != nil || g.PerDay != tc.wantPerDay || g.MaxPending != tc.wantPend {
			t.Errorf("after %s the grant is %+v, %v; want per-day %d, pending %d", name, g, err, tc.wantPerDay, tc.wantPend)
		}
	}
}

// TestGrantFormRequestsUnchanged: the grant form preselects "unchanged" for
// the yes/no setting, and a form that comes back with it (poezio submits
// the first option of a list nobody touched) changes only what was filled
// in: an approver stays one, and a new grant is not made an approver.
func TestGrantFormRequestsUnchanged(t *testing.T) {
	f := newFixture(t)
	f.mustSay(t, admin, "grant "+inviter+" requests yes")
	const newcomer = "dave@elsewhere.test"
	for _, tc := range []struct {
		jid          string
		wantRequests bool
	}{{inviter, true}, {newcomer, false}} {
		out, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionExecute})
		if cerr != nil {
			t.Fatal(cerr)
		}
		var requests *dataform.Field
		for i := range out.Form.Fields {
			if out.Form.Fields[i].Var == "requests" {
				requests = &out.Form.Fields[i]
			}
		}
		if requests == nil || len(requests.Options) != 3 || requests.Options[0].Value != valueUnchanged ||
			len(requests.Values) != 1 || requests.Values[0] != valueUnchanged {
			t.Fatalf("requests field %+v: want %q offered first and preselected", requests, valueUnchanged)
		}
		done, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionComplete, SessionID: out.SessionID,
			Forms: submit(field("jid", tc.jid), field("per-day", "2"), field("requests", valueUnchanged))})
		if cerr != nil || done.Status != statusCompleted {
			t.Fatalf("%s: %+v, %v", tc.jid, done, cerr)
		}
		g, err := f.store.Grant(context.Background(), tc.jid)
		if err != nil || g.Requests != tc.wantRequests || g.PerDay != 2 {
			t.Errorf("%s: grant %+v, %v; want requests %v, per-day 2", tc.jid, g, err, tc.wantRequests)
		}
	}
}

// TestFormErrorInField: a form sent back because of a mistake says what is
// wrong in its first fields, because profanity and poezio show no notes on
// a form still being filled in; and not in a note as well, which Gajim
// showed above them.
func TestFormErrorInField(t *testing.T) {
	f := newFixture(t)
	out, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionExecute})
	if cerr != nil {
		t.Fatal(cerr)
	}
	again, cerr := f.adhoc(t, admin, commandIn{Node: "grant", Action: actionComplete, SessionID: out.SessionID,
		Forms: submit(field("jid", inviter), field("per-day", "0"))})
	if cerr != nil || again.Status != statusExecuting || again.Form == nil || len(again.Notes) != 0 {
		t.Fatalf("got %+v, %v; want the form again without a note", again, cerr)
	}
	first := again.Form.Fields[0]
	if first.Type != "fixed" || first.Var != fixedVarError+"-1" || len(first.Values) != 1 ||
		formMistake(again) != "“Invites per day” must be at least 1; for the configured default, write default." {
		t.Errorf("first field %+v, error lines %q: want the error as fixed fields", first, formMistake(again))
	}
	if _, err := f.store.Grant(context.Background(), inviter); err == nil {
		t.Error("a form with a mistake made a grant")
	}
}

// TestTableTextField: a table result carries its rows as text in named
// fixed fields too, one line each (poezio shows neither the table nor the
// note, and no fixed field with several values; a nameless field would be
// replaced by poezio's own, empty, field for the note).
func TestTableTextField(t *testing.T) {
	f := newFixture(t)
	grantInviter(t, f)
	out, cerr := f.adhoc(t, admin, commandIn{Node: "list-inviters", Action: actionExecute})
	for cerr == nil && out.Status == statusExecuting {
		out, cerr = f.adhoc(t, admin, commandIn{Node: "list-inviters", Action: actionComplete, SessionID: out.SessionID, Forms: submit()})
	}
	if cerr != nil || out.Form == nil {
		t.Fatalf("list-inviters: %+v, %v", out, cerr)
	}
	var lines []string
	for i, fl := range out.Form.Fields {
		if fl.Type != dataform.Fixed {
			continue
		}
		if want := fmt.Sprintf("%s-%d", fixedVarText, len(lines)+1); fl.Var != want || len(fl.Values) != 1 {
			t.Errorf("fixed field %d: %+v, want one value named %q", i, fl, want)
		}
		lines = append(lines, fl.Values...)
	}
	if len(lines) < 2 || !strings.Contains(strings.Join(lines, "\n"), inviter) {
		t.Errorf("table form's fixed fields %q: want a heading and a line naming %s", lines, inviter)
	}
}
