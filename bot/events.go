package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// The event link operations (event, events, close-event) and their words.

// minEventDuration is the shortest time an event link may stay open: the
// clock's granularity, so a typo such as 3ms is refused rather than making
// a link that is dead on arrival.
const minEventDuration = time.Second

// parseDuration reads how long an event link stays open: a Go duration
// ("3h", "90m", "1h30m") from minEventDuration to policy.MaxEventDuration.
func parseDuration(p param, raw string) (string, error) {
	d, err := time.ParseDuration(raw)
	if err != nil {
		return "", refused(p, "must be a duration like 3h or 90m, not %s", echo(raw))
	}
	if d < minEventDuration || d > policy.MaxEventDuration {
		return "", refused(p, "must be from 1s to %s, not %s", durationText(policy.MaxEventDuration), echo(raw))
	}
	return d.Truncate(time.Second).String(), nil
}

// durationText shows a duration the way people write it: 3h, 1h30m, 45m.
func durationText(d time.Duration) string {
	s := d.Truncate(time.Second).String()
	for _, zero := range []struct{ tail, cut string }{{"m0s", "m"}, {"h0m", "h"}} {
		if strings.HasSuffix(s, zero.tail) {
			s = strings.TrimSuffix(s, zero.tail) + zero.cut
		}
	}
	return s
}

// noEventLinks is the refusal to someone whose grant has no event links.
func noEventLinks(req request) reply {
	return refusal(stanza.NotAllowed, req.say("Your grant does not include event links. Ask an admin (grant <your jid> events N).",
		"Your grant does not include event links. Ask an admin to allow you some in your grant."))
}

// eventsAllowed refuses the event form at once to someone whose grant has
// no event links, before they fill it in.
func eventsAllowed(ctx context.Context, b *Bot, req request) (reply, error) {
	err := b.svc.MayCreateEvents(ctx, req.actor)
	if errors.Is(err, invites.ErrEventsNotAllowed) {
		return noEventLinks(req), nil
	}
	return reply{}, err
}

func runEvent(ctx context.Context, b *Bot, req request) (reply, error) {
	uses, _ := strconv.Atoi(req.args["uses"])
	valid, _ := time.ParseDuration(req.args["valid"])
	ev, err := b.svc.CreateEvent(ctx, req.actor, invites.EventOptions{Uses: uses, Valid: valid, Note: req.args["note"]})
	var capErr *invites.EventCapError
	switch {
	case errors.Is(err, invites.ErrEventsNotAllowed):
		return noEventLinks(req), nil
	case errors.As(err, &capErr) && capErr.Shared:
		return refusal(stanza.ResourceConstraint, eventAllowanceText(req, capErr)), nil
	case errors.As(err, &capErr) && capErr.Max >= b.svc.DefaultLimits().EventMaxUses:
		// The configured most, the same for everyone; admins are told
		// where it is set.
		where := ""
		if req.role() == policy.Admin {
			where = " (policy.event_max_uses)"
		}
		return refusal(stanza.NotAcceptable, fmt.Sprintf("An event link admits at most %d people here%s; ask for %d or fewer.", capErr.Max, where, capErr.Max)), nil
	case errors.As(err, &capErr):
		// Less than the configured most: what this inviter's grant allows.
		return refusal(stanza.NotAcceptable, fmt.Sprintf("Your grant lets an event link of yours admit at most %d people; ask for %d or fewer.", capErr.Max, capErr.Max)), nil
	case errors.Is(err, invites.ErrEventDuration):
		return refusal(stanza.NotAcceptable, fmt.Sprintf("An event link stays open for at most %s.", durationText(policy.MaxEventDuration))), nil
	case err != nil:
		return reply{}, err
	}
	page, qr := "", ""
	if b.eventLinks != nil {
		page, qr = b.eventLinks(ev.ID)
	}
	var t []string
	t = append(t, fmt.Sprintf("Event link %s for up to %d people, open until %s (%s):", ev.ID, ev.MaxUses, formatTime(ev.Expires), durationText(valid)))
	// The page stands on a line of its own, so clients linkify it.
	t = append(t, page)
	t = append(t, fmt.Sprintf("Everyone who opens it gets a single-use invite of their own, recorded as yours (they do not count toward your own daily invites). It hands out %d at most, even if it is passed on: share it with the people there, or show its QR code.", ev.MaxUses))
	t = append(t, fmt.Sprintf("To close it and cancel its unused invites: close-event %s", ev.ID))
	form := &dataform.Form{Type: dataform.TypeResult, Title: "Event link", Fields: []dataform.Field{
		{Var: "url", Type: dataform.TextSingle, Label: "Event page", Values: []string{page}},
		{Var: "uses", Type: dataform.TextSingle, Label: "People at most", Values: []string{strconv.Itoa(ev.MaxUses)}},
		{Var: "expire", Type: dataform.TextSingle, Label: "Open until", Values: []string{formatTime(ev.Expires)}},
		{Var: "id", Type: dataform.TextSingle, Label: "Event link id", Values: []string{ev.ID}},
	}}
	return reply{text: strings.Join(t, "\n"), form: form, image: qr}, nil
}

// eventAllowanceText explains a link refused because the actor's event
// links together have used or hold their allowance.
func eventAllowanceText(req request, e *invites.EventCapError) string {
	used := fmt.Sprintf("Your event links may hand out %s per 24 hours, all of them together; %d handed out in the last 24 hours and %d held by open links leave %d.",
		count(e.Allowance, "invite", "invites"), e.Usage.HandedOut, e.Usage.Held, e.Max)
	if e.Max == 0 {
		return used + " An invite frees up 24 hours after it was handed out; " +
			req.say("close-event frees", "closing a link ("+formCommand("close-event")+") frees") + " what an open link has not handed out yet."
	}
	return used + fmt.Sprintf(" Ask for %d or fewer.", e.Max)
}

// eventStateText says where an event link is, for lists.
func eventStateText(ev invites.EventLink, now time.Time) string {
	switch st := ev.State(now); st {
	case invites.EventClosed:
		return fmt.Sprintf("closed %s by %s", formatTime(ev.Closed), ev.ClosedBy)
	case invites.EventExpired:
		return "expired " + formatTime(ev.Expires)
	case invites.EventUsedUp:
		return "used up, until " + formatTime(ev.Expires)
	default:
		return "open until " + formatTime(ev.Expires)
	}
}

func runListEvents(ctx context.Context, b *Bot, req request) (reply, error) {
	whose := req.args["jid"]
	evs, err := b.svc.Events(ctx, req.actor, whose)
	if err != nil {
		return reply{}, err
	}
	mine := whose == "" || whose == req.actor.JID()
	if len(evs) == 0 {
		if mine {
			return reply{text: req.say("You have no event links. Send event <uses> <valid> to make one, e.g. event 20 3h.",
				"You have no event links. Run "+formCommand("event")+" to make one.")}, nil
		}
		return reply{text: whose + " has no event links."}, nil
	}
	owner, more := "Your event links", "events"
	if !mine {
		owner, more = "Event links of "+whose, "events "+whose
	}
	now := b.now()
	tbl := newTable(owner, fmt.Sprintf("%s (%d, newest first):", owner, len(evs)),
		column{"id", "Id"}, column{"state", "State"}, column{"uses", "Handed out"}, column{"created", "Created"},
		column{"expires", "Open until"}, column{"note", "Note"})
	for _, ev := range evs {
		uses := fmt.Sprintf("%d of %d", ev.Uses, ev.MaxUses)
		line := fmt.Sprintf("%s  %s, %s handed out", ev.ID, eventStateText(ev, now), uses)
		if ev.Note != "" {
			line += " (" + ev.Note + ")"
		}
		tbl.row(line, ev.ID, string(ev.State(now)), uses, formatTime(ev.Created), formatTime(ev.Expires), ev.Note)
	}
	return tbl.reply(req, more, ""), nil
}

// openEvents offers the actor's event links that are not closed yet (an
// expired one may still be closed, to cancel its unused invites).
func openEvents(ctx context.Context, b *Bot, req request) ([]dataform.Option, error) {
	evs, err := b.svc.Events(ctx, req.actor, "")
	if err != nil {
		return nil, err
	}
	now := b.now()
	var opts []dataform.Option
	for _, ev := range evs {
		if ev.State(now) == invites.EventClosed {
			continue
		}
		// Not the note: see optionLabel.
		opts = append(opts, dataform.Option{Label: optionLabel(ev.ID, fmt.Sprintf("%d/%d used", ev.Uses, ev.MaxUses)), Value: ev.ID})
	}
	return opts, nil
}

func confirmCloseEvent(_ context.Context, _ *Bot, req request) (string, error) {
	return fmt.Sprintf("Close event link %s? It hands out no more invites, and the invites it handed out that are still unused stop working, at the server too.", req.args["id"]), nil
}

func runCloseEvent(ctx context.Context, b *Bot, req request) (reply, error) {
	id := req.args["id"]
	res, err := b.svc.CloseEvent(ctx, req.actor, id)
	switch {
	case errors.Is(err, invites.ErrNoSuchEvent) && policy.Allows(req.role(), policy.CloseAnyEvent):
		return refusal(stanza.ItemNotFound, req.say("No such event link. Check the id in events <jid>.",
			"No such event link. Check the id in "+formCommand("events")+".")), nil
	case errors.Is(err, invites.ErrNoSuchEvent):
		return refusal(stanza.ItemNotFound, req.say("No such event link among yours. Send events to list them.",
			"No such event link among yours. Run "+formCommand("events")+" to see them.")), nil
	case err != nil && res.Link.ID == "":
		return reply{}, err
	}
	var text string
	if res.AlreadyClosed {
		text = fmt.Sprintf("Event link %s was already closed", id)
	} else {
		text = fmt.Sprintf("Event link %s is closed: it hands out no more invites. It handed out %d of %d", id, res.Link.Uses, res.Link.MaxUses)
	}
	switch {
	case res.Cancelled == 0:
		text += "; none of its invites was still unused."
	default:
		text += fmt.Sprintf("; cancelled %d unused invite(s)", res.Cancelled)
	}
	if err != nil || res.StillValid > 0 {
		if res.StillValid > 0 {
			text += fmt.Sprintf(", of which the server still accepts %d for now; I will keep trying to revoke them.", res.StillValid)
		} else {
			text += "; some could not be cancelled (see the log): " + req.say("send close-event "+id, "run "+formCommand("close-event")+" on it") + " again."
		}
		return reply{text: text, warn: true}, nil
	}
	if res.Cancelled > 0 {
		text += ": their links no longer work."
	}
	return reply{text: text}, nil
}
