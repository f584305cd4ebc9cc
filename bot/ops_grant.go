package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// The operations on grants: who may invite, with which limits.

func runGrant(ctx context.Context, b *Bot, req request) (reply, error) {
	target := req.args["jid"]
	opts := invites.GrantOptions{Note: req.args["note"], PerDay: countOption(req.args, "per-day"),
		MaxPending: countOption(req.args, "pending"), Events: countOption(req.args, "events")}
	if v, ok := req.args["requests"]; ok {
		answers := v == "yes"
		opts.Requests = &answers
	}
	g, updated, err := b.svc.Grant(ctx, req.actor, target, opts)
	if errors.Is(err, invites.ErrTargetIsAdmin) {
		return refusal(stanza.NotAllowed, fmt.Sprintf("%s is an admin of this service: admins may always invite and need no grant.", target)), nil
	}
	if err != nil {
		return reply{}, err
	}
	def := b.svc.DefaultLimits()
	limits := fmt.Sprintf("per-day %s, pending %s", orDefault(g.PerDay, def.PerDay), orDefault(g.MaxPending, def.MaxPending))
	text := fmt.Sprintf("%s may now create invites (%s).", target, limits)
	if updated {
		text = fmt.Sprintf("Updated the grant of %s: %s.", target, limits)
	}
	if g.Requests {
		text += " They may answer account requests too."
	} else if opts.Requests != nil {
		text += " They may not answer account requests."
	}
	allowed := min(g.Events, def.EventMaxUses)
	share := def.GlobalPerDay / policy.EventShareDivisor
	switch {
	case share < allowed:
		// Their links together take at most half the service's day.
		allowed = share
		text += fmt.Sprintf(" Event links of up to %d people (half the service's daily limit, policy.global_per_day; the grant says %d).", allowed, g.Events)
	case g.Events > allowed:
		// Kept as given, so raising the configured most later takes effect.
		text += fmt.Sprintf(" Event links of up to %d people (the configured most, policy.event_max_uses; the grant says %d).", allowed, g.Events)
	case g.Events > 0:
		text += fmt.Sprintf(" Event links of up to %d people.", allowed)
	case opts.Events != nil:
		text += " No event links."
	}
	if opts.Events != nil && updated {
		text += b.eventsBeyond(ctx, req, target, allowed)
	}
	return reply{text: text}, nil
}

// eventsBeyond tells the admin who just took away or lowered target's
// event allowance which of target's open links admit more than it now
// allows. They stay as they are: visitors may be standing in the room with
// the link in front of them, so closing one is the admin's decision, and
// it takes one close-event. Empty when there are none.
func (b *Bot) eventsBeyond(ctx context.Context, req request, target string, allowed int) string {
	evs, err := b.svc.Events(ctx, req.actor, target)
	if err != nil {
		// The grant is changed already; only the note is missing.
		b.log.ErrorContext(ctx, "grant: could not list event links", slog.String("jid", target), slog.Any("err", err))
		return " Event links they already made stay open until they expire or fill up; " +
			req.say("events "+target+" lists them.", formCommand("events")+" lists them.")
	}
	now := b.now()
	var ids []string
	for _, ev := range evs {
		if ev.State(now) == invites.EventOpen && ev.MaxUses > allowed {
			ids = append(ids, ev.ID)
		}
	}
	switch len(ids) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf(" Their open event link %s stays open until it expires or fills up; %s closes it and cancels its unused invites.",
			ids[0], req.say("close-event "+ids[0], formCommand("close-event")))
	}
	return fmt.Sprintf(" Their %d open event links (%s) stay open until they expire or fill up; %s closes one and cancels its unused invites.",
		len(ids), strings.Join(ids, ", "), req.say("close-event <id>", formCommand("close-event")))
}

// countOption reads a kindLimit or kindAllowance argument for
// GrantOptions: nil when it was left out (the grant keeps what it says),
// zero for default or none.
func countOption(args map[string]string, name string) *int {
	v, ok := args[name]
	if !ok {
		return nil
	}
	n := 0
	if v != keywordDefault {
		n, _ = strconv.Atoi(v) // parseParam checked it
	}
	return &n
}

// orDefault shows a grant's own limit n, or the default def that applies
// when the grant sets none.
func orDefault(n, def int) string {
	if n == 0 {
		return strconv.Itoa(def) + " (default)"
	}
	return strconv.Itoa(n)
}

// currentInviters offers the JIDs holding a grant to choose from.
func currentInviters(ctx context.Context, b *Bot, req request) ([]dataform.Option, error) {
	grants, err := b.svc.Inviters(ctx, req.actor)
	if err != nil {
		return nil, err
	}
	opts := make([]dataform.Option, 0, len(grants))
	for _, g := range grants {
		// Some clients (poezio) show only labels.
		opts = append(opts, dataform.Option{Label: shortLabel(g.JID), Value: g.JID})
	}
	return opts, nil
}

func confirmRevoke(_ context.Context, _ *Bot, req request) (string, error) {
	return fmt.Sprintf("Revoke %s? Their pending invites are cancelled too, and their links stop working.", req.args["jid"]), nil
}

func runRevoke(ctx context.Context, b *Bot, req request) (reply, error) {
	target := req.args["jid"]
	res, err := b.svc.Revoke(ctx, req.actor, target)
	switch {
	case errors.Is(err, invites.ErrNotInviter):
		return refusal(stanza.ItemNotFound, fmt.Sprintf("%s is not an inviter.", target)), nil
	case errors.Is(err, invites.ErrTargetIsAdmin):
		return refusal(stanza.NotAllowed, fmt.Sprintf("%s is an admin of this service; admins are set in the configuration, not by grants, and keep their invites.", target)), nil
	case err != nil:
		return reply{}, err
	}
	if res.Cancelled == 0 {
		return reply{text: fmt.Sprintf("%s may no longer create invites. None of their invites was still pending.", target)}, nil
	}
	text := fmt.Sprintf("%s may no longer create invites. Cancelled %s", target, count(res.Cancelled, "pending invite", "pending invites"))
	if res.StillValid > 0 || res.Unrevocable > 0 {
		if res.StillValid > 0 {
			text += fmt.Sprintf("; %s still accepted by the server for now, I will keep trying to revoke them", count(res.StillValid, "token is", "tokens are"))
		}
		if res.Unrevocable > 0 {
			text += fmt.Sprintf("; %s the server cannot cancel: they work until they expire (see invites %s)", count(res.Unrevocable, "password reset link", "password reset links"), target)
		}
		return reply{text: text + ".", warn: true}, nil
	}
	text += "; none of their links works any more."
	return reply{text: text}, nil
}

func runInviters(ctx context.Context, b *Bot, req request) (reply, error) {
	grants, err := b.svc.Inviters(ctx, req.actor)
	if err != nil {
		return reply{}, err
	}
	if len(grants) == 0 {
		return reply{text: req.say("Nobody holds a grant. Use grant <jid> to add an inviter.",
			"Nobody holds a grant. Run "+formCommand("grant")+" to add an inviter.")}, nil
	}
	def := b.svc.DefaultLimits()
	tbl := newTable("Inviters", fmt.Sprintf("Inviters (%d):", len(grants)),
		column{"jid", "JID"}, column{"granted_by", "Granted by"}, column{"granted_at", "Granted"},
		column{"per_day", "Per day"}, column{"pending", "Pending"}, column{"note", "Note"},
		column{"requests", "Answers requests"}, column{"events", "Event links up to"})
	for _, g := range grants {
		line := fmt.Sprintf("%s  granted by %s on %s, per-day %s, pending %s", g.JID, g.GrantedBy, formatTime(g.GrantedAt),
			orDefault(g.PerDay, def.PerDay), orDefault(g.MaxPending, def.MaxPending))
		if g.Requests {
			line += ", answers account requests"
		}
		events := ""
		if g.Events > 0 {
			events = strconv.Itoa(min(g.Events, def.EventMaxUses, def.GlobalPerDay/policy.EventShareDivisor))
			line += ", event links up to " + events
		}
		if g.Note != "" {
			line += " (" + g.Note + ")"
		}
		tbl.row(line, g.JID, g.GrantedBy, formatTime(g.GrantedAt), orDefault(g.PerDay, def.PerDay), orDefault(g.MaxPending, def.MaxPending), g.Note,
			map[bool]string{true: "yes", false: "no"}[g.Requests], events)
	}
	return tbl.reply(req, "inviters", ""), nil
}
