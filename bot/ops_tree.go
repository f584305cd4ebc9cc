package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
)

// The tree and suspensions: who invited whom around one person, and
// suspending an abuser's branch after a preview, and undoing it.

// maxTreeIndent is the deepest level a chat line indents to: a bot wave's
// chain can be hundreds deep, and beyond this the level number says it.
const maxTreeIndent = 6

// maxListedAccounts bounds the accounts a suspend preview or result names
// one by one; the rest are counted (the tree lists them all, paged).
const maxListedAccounts = 15

// depthChoices are the form's choices for how much of a branch suspend
// takes.
func depthChoices(context.Context, *Bot, request) ([]dataform.Option, error) {
	return []dataform.Option{
		{Label: "accounts they invited", Value: depthDirect},
		{Label: "the whole branch", Value: depthDeep},
	}, nil
}

// account adds the home domain to a bare username, as whoinvited does.
func (b *Bot) account(arg string) string {
	if arg != "" && !strings.Contains(arg, "@") {
		return arg + "@" + b.svc.Domain()
	}
	return arg
}

func runTree(ctx context.Context, b *Bot, req request) (reply, error) {
	who := b.account(req.args["jid"])
	if who == "" {
		who = req.actor.JID()
	}
	br, err := b.svc.Branch(ctx, req.actor, who)
	if errors.Is(err, invites.ErrNotInBranch) {
		return refusal(stanza.Forbidden, fmt.Sprintf("%s is not in your branch: you may see only the accounts your invites created, and theirs.", who)), nil
	}
	if err != nil {
		return reply{}, err
	}
	// Only the server knows which accounts were deleted since: ask about
	// the rows this reply shows.
	if req.form {
		b.svc.CheckAccounts(ctx, &br, 0, pageNumber(req.args["page"])*formLines)
	} else {
		p := pageOf(req.args["page"], len(br.Accounts))
		b.svc.CheckAccounts(ctx, &br, p.from, p.to)
	}
	heading := treeHeading(br)
	tbl := newTable("Tree of "+who, heading,
		column{"account", "Account"}, column{"when", "Created"}, column{"invite", "Invite"},
		column{"state", "State"}, column{"inviter", "As inviter"}, column{"below", "Below"})
	for _, acc := range br.Accounts {
		tbl.row(treeLine(acc), indent(acc.Depth)+acc.Account, formatTime(acc.Invite.Created),
			inviteVia(acc.Invite), string(acc.State), string(acc.Inviter), belowText(acc))
	}
	more := "tree " + req.args["jid"]
	footer := ""
	if len(br.Accounts) == 0 {
		footer = "No account was created from their invites yet."
	}
	link := b.treeLink(ctx, req, who)
	if link != "" && !req.form {
		footer = strings.TrimSpace(footer + "\n  Picture of the branch (for you only, once, for 15 minutes): " + link)
	}
	rep := tbl.reply(req, strings.TrimSpace(more), footer)
	if link != "" && rep.form != nil {
		// A field of its own: form text is cut into short lines, and a
		// link cut in two can be neither opened nor copied.
		rep.form.Fields = append(rep.form.Fields, dataform.Field{Var: "picture", Type: dataform.TextSingle,
			Label: "Picture (once, 15 minutes)", Values: []string{link}})
	}
	return rep, nil
}

// treeLink is a one-time link to the branch's picture, or "" without the
// web page.
func (b *Bot) treeLink(ctx context.Context, req request, who string) string {
	if b.treePages == nil {
		return ""
	}
	link, err := b.treePages(ctx, req.actor, who)
	if err != nil {
		b.log.WarnContext(ctx, "no tree picture link", "err", err)
		return ""
	}
	return link
}

// treeHeading says whose branch it is, the chain above them and the
// branch's size.
func treeHeading(br invites.Branch) string {
	var t strings.Builder
	fmt.Fprintf(&t, "Tree of %s (inviter: %s", br.Root, br.RootInviter)
	if br.RootAccount != "" {
		fmt.Fprintf(&t, "; account: %s", br.RootAccount)
	}
	t.WriteString(").")
	for i := len(br.Up) - 1; i >= 0; i-- {
		l := br.Up[i]
		fmt.Fprintf(&t, "\n  %s invited %s (%s), %s.", l.Invite.Inviter, l.Account, inviteVia(l.Invite), formatTime(l.Invite.Created))
		if l.InviterState != invites.InviterGranted {
			fmt.Fprintf(&t, " [%s: %s]", l.Invite.Inviter, l.InviterState)
		}
	}
	depths := br.Depths()
	levels := make([]string, len(depths))
	for i, n := range depths {
		levels[i] = fmt.Sprint(n)
	}
	fmt.Fprintf(&t, "\n  Below: %s", count(len(br.Accounts), "account", "accounts"))
	if len(depths) > 1 {
		fmt.Fprintf(&t, " in %d levels (%s)", len(depths), strings.Join(levels, ", "))
	}
	if n := br.Suspended(); n > 0 {
		fmt.Fprintf(&t, ", %d suspended", n)
	}
	if br.Truncated {
		t.WriteString("; the branch is larger, only its first accounts were read")
	}
	t.WriteString(":")
	return t.String()
}

// treeLine is one account as a chat line, indented by its depth.
func treeLine(acc invites.BranchAccount) string {
	line := fmt.Sprintf("%s%s  %s  %s  %s", indent(acc.Depth), acc.Account, formatTime(acc.Invite.Created),
		inviteVia(acc.Invite), acc.State)
	if acc.Inviter != invites.InviterNone {
		line += "  inviter " + string(acc.Inviter)
	}
	if acc.Children > 0 {
		line += "  " + belowText(acc)
	}
	return line
}

// indent shows depth: two spaces a level up to maxTreeIndent, then the
// level's number.
func indent(depth int) string {
	if depth > maxTreeIndent {
		return strings.Repeat("  ", maxTreeIndent-1) + fmt.Sprintf("[%d] ", depth)
	}
	return strings.Repeat("  ", depth-1) + "└ "
}

// inviteVia names the invite and how it was handed out.
func inviteVia(inv invites.Invite) string {
	switch {
	case inv.Event != "":
		return "invite " + inv.ID + " from event link " + inv.Event
	case inv.Request != "":
		return "invite " + inv.ID + " for request " + inv.Request
	}
	return "invite " + inv.ID
}

func belowText(acc invites.BranchAccount) string {
	if acc.Children == 0 {
		return ""
	}
	return fmt.Sprintf("invited %d (%d below)", acc.Children, acc.Below)
}

// Suspending.

// depthDeep and depthDirect are the values of suspend's depth parameter.
const (
	depthDeep   = "deep"
	depthDirect = "direct"
)

func confirmSuspend(ctx context.Context, b *Bot, req request) (string, error) {
	p, err := b.svc.PlanSuspend(ctx, req.actor, req.args["jid"], req.args["depth"] == depthDeep, req.args["reason"])
	if r, ok := suspendRefusal(req, err); ok {
		return "", refusedConfirm{r}
	}
	if err != nil {
		return "", err
	}
	return previewText(p, "Suspend?"), nil
}

// refusedConfirm is a confirmation stage's "no": what it would confirm
// cannot be done, and the reply says why (a stanza error, as any refusal).
type refusedConfirm struct{ reply }

func (r refusedConfirm) Error() string { return r.text }

func runSuspend(ctx context.Context, b *Bot, req request) (reply, error) {
	if req.form {
		// The confirmation stage made the plan and showed it.
		return confirmed(ctx, b, req)
	}
	p, err := b.svc.PlanSuspend(ctx, req.actor, req.args["jid"], req.args["depth"] == depthDeep, req.args["reason"])
	if r, ok := suspendRefusal(req, err); ok {
		return r, nil
	}
	if err != nil {
		return reply{}, err
	}
	return reply{text: previewText(p, "Answer yes within 10 minutes to go ahead.")}, nil
}

// runYes carries out the suspension previewed last.
func runYes(ctx context.Context, b *Bot, req request) (reply, error) { return confirmed(ctx, b, req) }

func confirmed(ctx context.Context, b *Bot, req request) (reply, error) {
	res, err := b.svc.ConfirmSuspend(ctx, req.actor)
	if errors.Is(err, invites.ErrPlanChanged) {
		return refusal(stanza.Conflict, "Nothing was done: the branch changed since you saw it. "+
			previewText(res.Plan, req.say("Answer yes to go ahead.", "Run it again to go ahead."))), nil
	}
	if r, ok := suspendRefusal(req, err); ok {
		return r, nil
	}
	if err != nil {
		return reply{}, err
	}
	return suspendResultText(req, res), nil
}

// suspendRefusal is the answer to the errors a suspend can meet that are
// not failures.
func suspendRefusal(req request, err error) (reply, bool) {
	switch {
	case err == nil:
		return reply{}, false
	case errors.Is(err, invites.ErrNoPlan):
		return refusal(stanza.NotAllowed, req.say("There is no suspension waiting for your yes (a preview counts for 10 minutes). Send suspend <jid> first.",
			"There is no suspension waiting: run "+formCommand("suspend")+" again.")), true
	case errors.Is(err, invites.ErrTargetIsAdmin):
		return refusal(stanza.NotAllowed, "That JID is an admin of this service; admins cannot be suspended."), true
	case errors.Is(err, invites.ErrNothingToSuspend):
		return refusal(stanza.ItemNotFound, "Nothing to suspend: they hold no grant, have nothing pending and none of the bot's invites created an account for them."), true
	}
	return reply{}, false
}

// previewText says what a suspend will do, then ask.
func previewText(p invites.SuspendPlan, ask string) string {
	var t strings.Builder
	fmt.Fprintf(&t, "This suspends %s", count(len(p.Accounts), "account", "accounts"))
	if len(p.Accounts) > 0 {
		t.WriteString(": " + someOf(p.Accounts))
	}
	fmt.Fprintf(&t, ". It revokes %s", strings.Join(p.Revoke, ", "))
	fmt.Fprintf(&t, " (cancels %s, closes their event links, and declines the approved requests not used yet)", count(p.Pending, "pending invite", "pending invites"))
	if !p.Deep {
		t.WriteString("; the accounts further down the branch stay as they are (suspend <jid> deep takes the whole branch)")
	}
	t.WriteString(".")
	if len(p.Skipped) > 0 {
		t.WriteString(" Left alone (admins, other domains): " + someOf(p.Skipped) + ".")
	}
	t.WriteString(" " + ask)
	return t.String()
}

// someOf names up to maxListedAccounts of xs and counts the rest.
func someOf(xs []string) string {
	if len(xs) <= maxListedAccounts {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:maxListedAccounts], ", ") + fmt.Sprintf(" and %d more", len(xs)-maxListedAccounts)
}

func suspendResultText(req request, res invites.SuspendResult) reply {
	p := res.Plan
	var t strings.Builder
	fmt.Fprintf(&t, "Suspended the branch of %s: %s may no longer invite; %s cancelled.",
		p.Target, strings.Join(p.Revoke, ", "), count(res.Cancelled, "pending invite", "pending invites"))
	if n := len(res.Suspended); n > 0 {
		done := make([]string, 0, n)
		for acct := range res.Suspended {
			done = append(done, acct)
		}
		slices.Sort(done)
		fmt.Fprintf(&t, " %s suspended at the server (they cannot log in, their sessions ended): %s.",
			count(n, "account", "accounts"), someOf(done))
	}
	if len(res.Failed) > 0 {
		fmt.Fprintf(&t, " The server did not suspend %s; see the log, and suspend again to retry.", someOf(res.Failed))
	}
	if len(res.Manual) > 0 {
		t.WriteString(" The server cannot be asked to suspend accounts (no mod_invitebot), so run these on it: " +
			manualCommands(res.Manual, true))
	}
	fmt.Fprintf(&t, " Undo with: %s", req.say("unsuspend "+p.Target, formCommand("unsuspend")+" for "+p.Target))
	r := reply{text: t.String()}
	r.warn = len(res.Failed)+len(res.Manual) > 0 || res.StillValid > 0
	return r
}

// manualCommands are the exact server commands that suspend (or lift the
// suspension of) accounts, for each server the bot works with, for an
// admin to run where the bot cannot.
func manualCommands(accounts []string, suspend bool) string {
	shown := accounts[:min(len(accounts), maxListedAccounts)]
	var p13, p12, ejd []string
	for _, a := range shown {
		j, err := jid.Parse(a)
		if err != nil {
			continue
		}
		if suspend {
			p13 = append(p13, "prosodyctl shell user disable "+a)
			p12 = append(p12, "prosodyctl shell user password "+a+" \"$(openssl rand -hex 16)\" && prosodyctl shell c2s close "+a)
			ejd = append(ejd, "ejabberdctl ban_account "+j.Localpart()+" "+j.Domainpart()+" suspended")
		} else {
			p13 = append(p13, "prosodyctl shell user enable "+a)
			p12 = append(p12, "prosodyctl shell user password "+a+" NEW-PASSWORD (then tell them; 0.12 cannot give the old one back)")
			ejd = append(ejd, "ejabberdctl unban_account "+j.Localpart()+" "+j.Domainpart())
		}
	}
	text := "Prosody 13: " + strings.Join(p13, "; ") +
		". Prosody 0.12 (no account disabling: a new password locks them out): " + strings.Join(p12, "; ") +
		". ejabberd: " + strings.Join(ejd, "; ") + "."
	if len(accounts) > len(shown) {
		text += fmt.Sprintf(" And the same for %d more accounts (tree lists them).", len(accounts)-len(shown))
	}
	return text
}

func runUnsuspend(ctx context.Context, b *Bot, req request) (reply, error) {
	target := b.account(req.args["jid"])
	res, err := b.svc.Unsuspend(ctx, req.actor, target)
	if errors.Is(err, invites.ErrNotSuspended) {
		return refusal(stanza.ItemNotFound, fmt.Sprintf("%s is not suspended by the bot.", target)), nil
	}
	if err != nil {
		return reply{}, err
	}
	var t strings.Builder
	fmt.Fprintf(&t, "Lifted the suspension of %s.", target)
	if len(res.Regranted) > 0 {
		fmt.Fprintf(&t, " %s may invite again, with their old limits.", strings.Join(res.Regranted, ", "))
	}
	if len(res.Restored) > 0 {
		fmt.Fprintf(&t, " %s can log in again: %s.", count(len(res.Restored), "account", "accounts"), someOf(res.Restored))
	}
	if res.Cancelled > 0 {
		fmt.Fprintf(&t, " The %s cancelled stay cancelled.", count(res.Cancelled, "invite", "invites"))
	}
	if len(res.Failed) > 0 {
		fmt.Fprintf(&t, " The server did not lift it for %s; send unsuspend %s again to retry.", someOf(res.Failed), target)
	}
	if len(res.Manual) > 0 {
		t.WriteString(" Lift it by hand on the server: " + manualCommands(res.Manual, false))
	}
	return reply{text: t.String(), warn: len(res.Failed)+len(res.Manual) > 0}, nil
}
