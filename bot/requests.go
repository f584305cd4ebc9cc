package bot

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
)

// The operations that answer account requests from the web page. Every
// reply that repeats what a requester wrote is plain (no styling) and
// passes that text through inert, so it can never become a link or markup
// in an approver's client.

// msgRequestsOff answers the request commands when requests are off.
const msgRequestsOff = "Account requests are switched off here (http.requests in the configuration)."

// requestsOn says whether the request commands are offered.
func requestsOn(b *Bot) bool { return b.svc.RequestsEnabled() }

// valueUnchanged is the form choice that leaves a yes/no setting as it is.
const valueUnchanged = "unchanged"

// yesNo offers yes and no in forms, after an explicit "unchanged" that the
// form also preselects (see formFields): poezio submits the first option of
// a list it was not asked to change, and a grant form that only meant to
// change a limit must not make anyone an approver.
func yesNo(context.Context, *Bot, request) ([]dataform.Option, error) {
	return []dataform.Option{{Label: valueUnchanged, Value: valueUnchanged}, {Label: "yes", Value: "yes"}, {Label: "no", Value: "no"}}, nil
}

// openRequests offers the open requests to choose from.
func openRequests(ctx context.Context, b *Bot, req request) ([]dataform.Option, error) {
	reqs, err := b.svc.Requests(ctx, req.actor)
	if err != nil {
		return nil, err
	}
	opts := make([]dataform.Option, 0, len(reqs))
	for _, r := range reqs[:min(len(reqs), pageSize)] {
		// Not the requester's name: see optionLabel.
		opts = append(opts, dataform.Option{Label: optionLabel(r.ID, formatDay(r.Created)), Value: r.ID})
	}
	return opts, nil
}

func runRequests(ctx context.Context, b *Bot, req request) (reply, error) {
	reqs, err := b.svc.Requests(ctx, req.actor)
	if err != nil {
		return reply{}, err
	}
	if len(reqs) == 0 {
		return reply{text: "No open account requests."}, nil
	}
	tbl := newTable("Account requests", fmt.Sprintf("Open account requests (%d, oldest first):", len(reqs)),
		column{"id", "Id"}, column{"asked", "Asked"}, column{"until", "Open until"}, column{"name", "Name"},
		column{"contact", "Contact (not verified)"}, column{"message", "Message"})
	for _, r := range reqs {
		line := fmt.Sprintf("%s  asked %s by %s, contact %s%s: %s", r.ID, formatTime(r.Created), requesterName(r),
			requesterContact(r), mailMark(r), inert(r.Message))
		tbl.row(line, r.ID, formatTime(r.Created), formatTime(r.Expires), inert(r.Name), inert(r.Contact), inert(r.Message))
	}
	res := tbl.reply(req, "requests", req.say("To answer: approve <id>, or deny <id> [reason]",
		"To answer, run "+formCommand("approve")+" or "+formCommand("deny")+"."))
	res.plain = true
	return res, nil
}

func confirmApprove(ctx context.Context, b *Bot, req request) (string, error) {
	reqs, err := b.svc.Requests(ctx, req.actor)
	if err != nil {
		return "", err
	}
	for _, r := range reqs {
		if r.ID == req.args["id"] {
			return fmt.Sprintf("Approve request %s by %s? An invite in your name, counted in your quota, appears on their page.",
				r.ID, requesterName(r)), nil
		}
	}
	return fmt.Sprintf("Approve request %s? An invite in your name, counted in your quota, appears on the requester's page.", req.args["id"]), nil
}

func confirmDeny(ctx context.Context, b *Bot, req request) (string, error) {
	reqs, err := b.svc.Requests(ctx, req.actor)
	if err != nil {
		return "", err
	}
	// Short: some clients (poezio) cut the question at one line.
	tail := " Their page says it was declined"
	if req.args["reason"] != "" {
		tail += ", with your reason"
	}
	tail += "."
	for _, r := range reqs {
		if r.ID == req.args["id"] {
			return fmt.Sprintf("Decline request %s by %s?%s", r.ID, requesterName(r), tail), nil
		}
	}
	return fmt.Sprintf("Decline request %s?%s", req.args["id"], tail), nil
}

func runApprove(ctx context.Context, b *Bot, req request) (reply, error) {
	r, inv, err := b.svc.ApproveRequest(ctx, req.actor, req.args["id"])
	if res, ok := requestRefusal(req, r, err); ok {
		return res, nil
	}
	if err != nil {
		return reply{}, err
	}
	text := fmt.Sprintf("Approved request %s by %s: invite %s, in your name, is on their page now.", r.ID, requesterName(r), inv.ID)
	if r.Contact != "" {
		text += " They were told at " + inert(r.Contact) + " too."
	}
	text += req.say(" To take it back: cancel "+inv.ID, " To take it back, run "+formCommand("cancel")+" on invite "+inv.ID+".")
	return reply{text: text, plain: true}, nil
}

func runDeny(ctx context.Context, b *Bot, req request) (reply, error) {
	r, err := b.svc.DenyRequest(ctx, req.actor, req.args["id"], req.args["reason"])
	if res, ok := requestRefusal(req, r, err); ok {
		return res, nil
	}
	if err != nil {
		return reply{}, err
	}
	text := fmt.Sprintf("Declined request %s by %s. Their page says so", r.ID, requesterName(r))
	if r.Reason != "" {
		text += ", with your reason"
	}
	text += "."
	if r.Contact != "" {
		text += " They were told at " + inert(r.Contact) + " too."
	}
	return reply{text: text, plain: true}, nil
}

// requestRefusal answers an approval or denial that found no open
// request, saying who answered first; ok is false for other outcomes.
func requestRefusal(req request, r invites.Request, err error) (reply, bool) {
	switch {
	case errors.Is(err, invites.ErrNoSuchRequest):
		return refusal(stanza.ItemNotFound, fmt.Sprintf("No account request %s. %s", req.args["id"],
			req.say("Send requests to list the open ones.", "Run "+formCommand("requests")+" to see the open ones."))), true
	case errors.Is(err, invites.ErrRequestAnswered):
		return refusal(stanza.Conflict, answeredText(r)), true
	}
	return reply{}, false
}

// mailMark marks a request whose mail address was confirmed.
func mailMark(r invites.Request) string {
	if r.MailConfirmed.IsZero() {
		return ""
	}
	return ", email confirmed"
}
