package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
)

// The invite operations: invites, password reset links, and cancelling them.

func runInvite(ctx context.Context, b *Bot, req request) (reply, error) {
	inv, err := b.svc.Create(ctx, req.actor)
	if err != nil {
		return reply{}, err
	}
	return b.inviteReply(inv, fmt.Sprintf("Invite %s for an account on %s", inv.ID, inv.Domain)), nil
}

func runReset(ctx context.Context, b *Bot, req request) (reply, error) {
	account := req.args["jid"]
	if !strings.Contains(account, "@") {
		account += "@" + b.svc.Domain()
	}
	inv, err := b.svc.Reset(ctx, req.actor, account)
	switch {
	case errors.Is(err, invites.ErrNotLocalAccount):
		return refusal(stanza.ItemNotFound, fmt.Sprintf("%s is not an account on %s.", account, b.svc.Domain())), nil
	case errors.Is(err, invites.ErrNotYourAccount):
		return refusal(stanza.NotAllowed, fmt.Sprintf("You may reset only accounts your own invites created, and %s is not one of them (as far as I know). Ask an admin.", account)), nil
	case errors.Is(err, invites.ErrResetUnsupported):
		return refusal(stanza.FeatureNotImplemented, "Password resets need Prosody 13 or newer on the server; this server does not offer them."), nil
	case errors.Is(err, invites.ErrNoSuchAccount):
		return refusal(stanza.ItemNotFound, fmt.Sprintf("The server says there is no account %s, so there is nothing to reset%s. No link was made; %s for a new account.",
			account, resetCreates(b.svc.ServerModule(), " (a reset link would create it)"), req.say("send invite", "run "+formCommand("invite")))), nil
	case errors.Is(err, invites.ErrAccountUnknown):
		if errors.Is(err, invites.ErrIssuerForbidden) {
			b.logIssuerRefused(ctx, err)
		}
		return refusal(stanza.RemoteServerTimeout, fmt.Sprintf("I could not find out from the server whether %s exists, so I made no reset link%s. Try again later; if this keeps happening, the bot's log says why.",
			account, resetCreates(b.svc.ServerModule(), " (it would create the account if it does not)"))), nil
	case err != nil:
		return reply{}, err
	}
	r := b.inviteReply(inv, fmt.Sprintf("Password reset link %s for %s", inv.ID, inv.ResetFor))
	if b.svc.ServerModule() == invites.ModulePresent {
		// mod_invitebot binds the token to its account (as Prosody
		// 13.0.8 does).
		r.text += "\nWhoever opens it sets a new password for " + inv.ResetFor + "; it works for " + inv.ResetFor + " only. Hand it only to its owner. The account was told."
	} else {
		r.text += "\nWhoever opens it sets a new password for " + inv.ResetFor + " (it could also create a new account, so hand it only to its owner). The account was told."
	}
	if b.svc.ResetsUncancellable() {
		r.text += "\n" + uncancellableResets(inv.Expires)
		r.warn = true
	}
	if text := replacedText(inv.Replaced); text != "" {
		r.text += "\n" + text
		r.warn = true
	}
	return r, nil
}

// uncancellableResets says that this server cannot cancel a reset link
// once made, and what would change that.
func uncancellableResets(expires time.Time) string {
	text := "This server cannot cancel reset links: cancelling it here would not stop it"
	if !expires.IsZero() {
		text += "; it works until " + formatTime(expires)
	}
	return text + ". (Loading mod_invitebot on the server makes cancelling work.)"
}

// replacedText tells the maker of a new reset link about the earlier links
// it cancelled that the server still honours.
func replacedText(replaced []invites.Invite) string {
	var lines []string
	for _, old := range replaced {
		switch {
		case old.Unrevocable:
			lines = append(lines, fmt.Sprintf("The earlier reset link %s is cancelled here, but the server cannot cancel it: it still works until %s.", old.ID, formatTime(old.Expires)))
		case !old.Revoked:
			lines = append(lines, fmt.Sprintf("The earlier reset link %s is cancelled here, but the server still accepts it for now (see the log); I will keep trying to revoke it.", old.ID))
		}
	}
	return strings.Join(lines, "\n")
}

// resetCreates is why, said in a refusal, a reset link for a missing
// account is not made: without mod_invitebot the server's reset token
// could create the account. With the module it cannot, and the refusal
// says nothing of it.
func resetCreates(module invites.ModuleState, why string) string {
	if module == invites.ModulePresent {
		return ""
	}
	return why
}

// inviteReply renders a new invite or reset link: the URI on a line of its
// own, the landing page, how to cancel it, the XEP-0401 result form and
// the QR image.
func (b *Bot) inviteReply(inv invites.Invite, title string) reply {
	var t strings.Builder
	t.WriteString(title + " (single use")
	if !inv.Expires.IsZero() {
		fmt.Fprintf(&t, ", expires %s", formatTime(inv.Expires))
	}
	t.WriteString("):\n")
	// The URI stands on a line of its own, exactly as the server returned
	// it, so clients linkify it and people can copy it whole.
	t.WriteString(inv.URI)
	// The bot's own page, when it has one, works with any client and in a
	// browser; the server's page (if any) is the fallback.
	landing, qr := inv.LandingURL, ""
	if b.links != nil {
		landing, qr = b.links(inv.ID)
	}
	if landing != "" {
		fmt.Fprintf(&t, "\nLanding page (works in any browser, with a QR code): %s", landing)
	}
	fmt.Fprintf(&t, "\nTo cancel it: cancel %s", inv.ID)

	// The XEP-0401 result form, so command UIs that know invites can show
	// a QR code or share button.
	form := &dataform.Form{Type: dataform.TypeResult, Title: "Account invite", Fields: []dataform.Field{
		{Var: "FORM_TYPE", Type: dataform.Hidden, Values: []string{invites.FormTypeInvite}},
		{Var: "uri", Type: dataform.TextSingle, Label: "Invite URI", Values: []string{inv.URI}},
	}}
	if inv.ResetFor != "" {
		form.Title = "Password reset link for " + inv.ResetFor
	}
	if landing != "" {
		form.Fields = append(form.Fields, dataform.Field{Var: "landing-url", Type: dataform.TextSingle, Label: "Landing page", Values: []string{landing}})
	}
	if !inv.Expires.IsZero() {
		// XEP-0401's expire is for clients to read (an XEP-0082 date and
		// time, as Prosody's own command gives it), so it stays hidden;
		// people read expires, in the bot's one time format.
		form.Fields = append(form.Fields,
			dataform.Field{Var: "expire", Type: dataform.Hidden, Values: []string{inv.Expires.UTC().Format(time.RFC3339)}},
			dataform.Field{Var: "expires", Type: dataform.TextSingle, Label: "Expires", Values: []string{formatTime(inv.Expires)}})
	}
	form.Fields = append(form.Fields, dataform.Field{Var: "id", Type: dataform.TextSingle, Label: "Invite id", Values: []string{inv.ID}})
	return reply{text: t.String(), form: form, image: qr}
}

func runListInvites(ctx context.Context, b *Bot, req request) (reply, error) {
	whose := req.args["jid"]
	invs, err := b.svc.List(ctx, req.actor, whose)
	if err != nil {
		return reply{}, err
	}
	mine := whose == "" || whose == req.actor.JID()
	if len(invs) == 0 {
		if mine {
			return reply{text: req.say("You have no invites yet. Send invite to create one.",
				"You have no invites yet. Run "+formCommand("invite")+" to make one.")}, nil
		}
		return reply{text: whose + " has no invites."}, nil
	}
	owner, more := "Your invites", "invites"
	if !mine {
		owner, more = "Invites of "+whose, "invites "+whose
	}
	tbl := newTable(owner, fmt.Sprintf("%s (%d, newest first):", owner, len(invs)),
		column{"id", "Id"}, column{"state", "State"}, column{"created", "Created"}, column{"expires", "Expires"},
		column{"account", "Account created"})
	for _, inv := range invs {
		expires := ""
		if inv.State == invites.StatePending && !inv.Expires.IsZero() {
			expires = formatTime(inv.Expires)
		}
		line := fmt.Sprintf("%s  %s  created %s", inv.ID, inv.State, formatTime(inv.Created))
		if expires != "" {
			line += ", expires " + expires
		}
		switch {
		case inv.ResetFor != "":
			line += ", password reset for " + inv.ResetFor
		case inv.UsedBy != "":
			line += ", created account " + inv.UsedBy
		}
		if inv.Request != "" {
			line += ", answers request " + inv.Request
		}
		if inv.Event != "" {
			line += ", from event link " + inv.Event
		}
		switch {
		case inv.State == invites.StateCancelled && inv.Unrevocable:
			line += " (the server cannot revoke its token: it works until " + formatTime(inv.Expires) + ")"
		case inv.State == invites.StateCancelled && !inv.Revoked:
			line += " (token not yet revoked at the server)"
		}
		tbl.row(line, inv.ID, string(inv.State), formatTime(inv.Created), expires, inv.UsedBy)
	}
	return tbl.reply(req, more, ""), nil
}

// pendingInvites offers the actor's pending invites to choose from.
func pendingInvites(ctx context.Context, b *Bot, req request) ([]dataform.Option, error) {
	invs, err := b.svc.List(ctx, req.actor, "")
	if err != nil {
		return nil, err
	}
	var opts []dataform.Option
	for _, inv := range invs {
		if inv.State != invites.StatePending {
			continue
		}
		// Ids and our own words only, short: see optionLabel.
		opts = append(opts, dataform.Option{Label: optionLabel(inv.ID, formatDay(inv.Created)), Value: inv.ID})
	}
	return opts, nil
}

func confirmCancel(ctx context.Context, b *Bot, req request) (string, error) {
	id := req.args["id"]
	// Short: some clients (poezio) cut the question at one line.
	inv, err := b.svc.Lookup(ctx, id)
	switch {
	case err == nil && inv.ResetFor != "" && b.svc.ResetsUncancellable():
		return fmt.Sprintf("Cancel reset link %s? The server cannot stop it: it works until %s.", id, formatTime(inv.Expires)), nil
	case err == nil && inv.Inviter != req.actor.JID():
		return fmt.Sprintf("Cancel %s's invite %s? Its link stops working.", inv.Inviter, id), nil
	}
	return fmt.Sprintf("Cancel invite %s? Its link stops working.", id), nil
}

// linkName names an invite as its maker knows it: "Invite ID", or
// "Password reset link ID for ACCOUNT".
func linkName(inv invites.Invite) string {
	if inv.ResetFor != "" {
		return fmt.Sprintf("Password reset link %s for %s", inv.ID, inv.ResetFor)
	}
	return "Invite " + inv.ID
}

func runCancel(ctx context.Context, b *Bot, req request) (reply, error) {
	inv, err := b.svc.Cancel(ctx, req.actor, req.args["id"])
	if errors.Is(err, invites.ErrNotPending) {
		if inv.State == invites.StateUsed && inv.UsedBy != "" {
			return refusal(stanza.Conflict, fmt.Sprintf("Invite %s is already used by %s.", inv.ID, inv.UsedBy)), nil
		}
		return refusal(stanza.Conflict, fmt.Sprintf("Invite %s is already %s.", inv.ID, inv.State)), nil
	}
	if err != nil {
		return reply{}, err
	}
	if inv.Unrevocable {
		return reply{text: fmt.Sprintf("%s is cancelled here, but the server cannot cancel it: it accepts this link for its own account only and cannot delete it, so the link works until it expires at %s. (Loading mod_invitebot on the server makes cancelling work.)",
			linkName(inv), formatTime(inv.Expires)), warn: true}, nil
	}
	if !inv.Revoked {
		return reply{text: fmt.Sprintf("Invite %s is cancelled here, but the server still accepts its token for now (see the log); it stops working when it expires.", inv.ID), warn: true}, nil
	}
	return reply{text: fmt.Sprintf("Invite %s is cancelled; its link no longer works.", inv.ID)}, nil
}
