package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// exampleArgs are valid arguments for each parameter kind, so that a refusal
// in the tests below can only come from the permission check.
func exampleArg(p param) string {
	switch p.kind {
	case kindJID:
		return "bob@x.org"
	case kindInviteID, kindRequestID:
		return "abcdefghijklmnop"
	case kindYesNo:
		return "yes"
	case kindNumber, kindAllowance, kindLimit, kindCap:
		return "3"
	case kindSubject:
		return "bob@x.org"
	case kindDuration:
		return "3h"
	case kindPage:
		return "1"
	case kindAccount:
		return "newbie"
	case kindEventID:
		return "abcdefghijklmnop"
	default:
		return "why not"
	}
}

// approver is an inviter whose grant lets them answer account requests.
const approver = "dora@elsewhere.test"

// roleJIDs are senders holding each role in newFixture (the inviter and
// the approver are granted by grantInviter).
var roleJIDs = map[policy.Role]string{policy.Stranger: stranger, policy.Admin: admin, policy.Inviter: inviter,
	policy.Approver: approver}

func grantInviter(t *testing.T, f *fixture) {
	t.Helper()
	if got := f.mustSay(t, admin, "grant "+inviter); !strings.Contains(got, "may now create invites") {
		t.Fatalf("grant: %q", got)
	}
	if got := f.mustSay(t, admin, "grant "+approver+" requests yes"); !strings.Contains(got, "may answer account requests too") {
		t.Fatalf("grant: %q", got)
	}
}

// TestOperationsRefuseRolesBelowTheirPermission walks the operation table:
// every role that lacks an operation's permission is refused over chat,
// over ad-hoc, and by the service itself, and nothing changes.
func TestOperationsRefuseRolesBelowTheirPermission(t *testing.T) {
	roles := []policy.Role{policy.Stranger, policy.Inviter, policy.Approver, policy.Admin}
	checked := 0
	for _, op := range operations() {
		for _, role := range roles {
			if policy.Allows(role, op.perm) {
				continue
			}
			checked++
			t.Run(fmt.Sprintf("%s/%s", op.name, role), func(t *testing.T) {
				f := newFixture(t)
				grantInviter(t, f)
				before := snapshot(t, f)
				who := roleJIDs[role]

				// Chat: the full command line, parameters and all.
				line := op.name
				for _, p := range op.params {
					if p.keyword != "" {
						line += " " + p.keyword
					}
					line += " " + exampleArg(p)
				}
				text, _ := f.say(t, who, line)
				if !strings.Contains(text, "may not use "+op.name) {
					t.Errorf("chat %q as %s: %q, want a refusal", line, role, text)
				}

				// Ad-hoc: executing the node is forbidden.
				if op.node != "" {
					req := iqRequest{iq: stanza.IQ{From: jid.MustParse(who + "/phone")},
						command: commandIn{Node: op.node, Action: actionExecute}}
					_, cerr := f.bot.runCommand(context.Background(), req, f.actor(t, who))
					if cerr == nil || cerr.Cond.XMLName.Local != string(stanza.Forbidden) {
						t.Errorf("ad-hoc %s as %s: %+v, want forbidden", op.node, role, cerr)
					}
				}

				// The service: even if a front end forgot the check.
				args := map[string]string{}
				for _, p := range op.params {
					args[p.name] = exampleArg(p)
				}
				_, err := op.run(context.Background(), f.bot, request{actor: f.actor(t, who), args: args})
				if !errors.Is(err, invites.ErrForbidden) {
					t.Errorf("service runs %s for %s: %v, want ErrForbidden", op.name, role, err)
				}
				if after := snapshot(t, f); after != before {
					t.Errorf("a refused %s changed data:\nbefore %s\nafter  %s", op.name, before, after)
				}
			})
		}
	}
	if checked == 0 {
		t.Fatal("no operation needs a permission above stranger: the table walk checked nothing")
	}
}

// TestParametersRefuseRolesBelowTheirPermission: a parameter reserved to a
// permission cannot be set, over chat or ad-hoc, by a role without it.
func TestParametersRefuseRolesBelowTheirPermission(t *testing.T) {
	checked := 0
	for _, op := range operations() {
		for _, p := range op.params {
			for _, role := range []policy.Role{policy.Inviter, policy.Approver, policy.Admin} {
				if !policy.Allows(role, op.perm) || policy.Allows(role, p.perm) {
					continue
				}
				checked++
				t.Run(op.name+"/"+p.name+"/"+role.String(), func(t *testing.T) {
					if _, err := bindArgs(op, role, exampleArg(p)); err == nil && p.keyword == "" {
						t.Errorf("chat: %s %s bound for %s", op.name, exampleArg(p), role)
					}
					for _, vp := range visibleParams(op, role) {
						if vp.name == p.name {
							t.Errorf("ad-hoc: the %s form shows %s to %s", op.name, p.name, role)
						}
					}
					form := &dataform.Form{Type: dataform.TypeSubmit, Fields: []dataform.Field{{Var: p.name, Values: []string{exampleArg(p)}}}}
					if args, err := paramsFromForm(op, role, form); err == nil && args[p.name] != "" {
						t.Errorf("ad-hoc: a submitted %s was taken from %s", p.name, role)
					}
				})
			}
		}
	}
	if checked == 0 {
		t.Fatal("no parameter is reserved: the walk checked nothing")
	}
}

// TestAdminCancelFormOffersTyping: admins may cancel anyone's invite, so
// their form takes a typed id next to the list of their own; inviters get
// the list only.
func TestAdminCancelFormOffersTyping(t *testing.T) {
	f := newFixture(t)
	grantInviter(t, f)
	f.mustSay(t, inviter, "invite")
	invs, _ := f.store.InvitesByInviter(context.Background(), inviter)
	if len(invs) != 1 {
		t.Fatalf("inviter has %d invites", len(invs))
	}
	fieldsFor := func(who string) (commandOut, []string) {
		req := iqRequest{iq: stanza.IQ{From: jid.MustParse(who + "/laptop")}, command: commandIn{Node: "cancel-invite", Action: actionExecute}}
		out, cerr := f.bot.runCommand(context.Background(), req, f.actor(t, who))
		if cerr != nil {
			t.Fatalf("cancel-invite as %s: %+v", who, cerr)
		}
		var vars []string
		for _, fl := range out.Form.Fields {
			vars = append(vars, fl.Var)
		}
		return out, vars
	}
	if _, vars := fieldsFor(inviter); strings.Join(vars, ",") != "id" {
		t.Errorf("inviter's cancel form fields %v, want only the list", vars)
	}
	out, vars := fieldsFor(admin)
	if strings.Join(vars, ",") != "id,id-other" {
		t.Fatalf("admin's cancel form fields %v, want the list and a typed field", vars)
	}
	req := iqRequest{iq: stanza.IQ{From: jid.MustParse(admin + "/laptop")}, command: commandIn{Node: "cancel-invite", SessionID: out.SessionID,
		Forms: []dataform.Form{{Type: dataform.TypeSubmit, Fields: []dataform.Field{{Var: "id-other", Values: []string{invs[0].ID}}}}}}}
	confirm, cerr := f.bot.runCommand(context.Background(), req, f.actor(t, admin))
	if cerr != nil || confirm.Status != statusExecuting {
		t.Fatalf("typed id: %+v, %v", confirm, cerr)
	}
	req.command = commandIn{Node: "cancel-invite", Action: actionComplete, SessionID: confirm.SessionID}
	done, cerr := f.bot.runCommand(context.Background(), req, f.actor(t, admin))
	if cerr != nil || len(done.Notes) != 1 || !strings.Contains(done.Notes[0].Text, "is cancelled") {
		t.Fatalf("admin cancelling the inviter's invite: %+v, %v", done, cerr)
	}
}

// snapshot summarises what a refused command must not change.
func snapshot(t *testing.T, f *fixture) string {
	t.Helper()
	ctx := context.Background()
	grants, err := f.store.Grants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pause, err := f.store.Pause(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open, err := f.store.OpenRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "grants=%d paused=%v open-requests=%d", len(grants), pause.Paused, len(open))
	for _, who := range []string{admin, inviter, approver, stranger} {
		invs, err := f.store.InvitesByInviter(ctx, who)
		if err != nil {
			t.Fatal(err)
		}
		for _, inv := range invs {
			fmt.Fprintf(&s, " %s:%s", inv.ID, inv.State)
		}
	}
	return s.String()
}
