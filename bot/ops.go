package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// paramKind says how an operation parameter is validated and, later, which
// data form field type presents it.
type paramKind int

const (
	// kindJID is a bare JID, normalised (case-folded) on parsing.
	kindJID paramKind = iota
	// kindInviteID is an invite id as the store hands them out.
	kindInviteID
	// kindText is free text; as the last parameter it takes the rest of the
	// chat line.
	kindText
)

// maxTextParam bounds free-text parameters (notes) so they stay notes.
const maxTextParam = 200

// param is one named input of an operation.
type param struct {
	name     string
	kind     paramKind
	required bool
	label    string
}

// operation is one thing the bot can do. The table of operations is the
// only place a command is declared: the chat grammar, help and (with the
// ad-hoc issue) the command list and data forms are derived from it.
type operation struct {
	name    string
	summary string
	perm    policy.Permission
	params  []param
	run     func(ctx context.Context, b *Bot, req request) (reply, error)
}

// request is a parsed, validated invocation.
type request struct {
	actor string // normalised bare JID
	role  policy.Role
	args  map[string]string
}

// reply is what an operation answers: text for chat, and extra messages
// (the QR image later) that follow it.
type reply struct {
	text string
}

// operations returns the table. It is a function, not a package variable,
// because the entries refer to handlers that refer back to the table (help).
func operations() []operation {
	return []operation{
		{name: "help", summary: "show what you can do", perm: policy.ReadHelp, run: runHelp},
		{name: "invite", summary: "create a single-use account invite", perm: policy.CreateInvite, run: runInvite},
		{name: "invites", summary: "list your invites", perm: policy.ListInvites, run: runListInvites},
		{name: "cancel", summary: "cancel a pending invite", perm: policy.CancelInvite, run: runCancel,
			params: []param{{name: "id", kind: kindInviteID, required: true, label: "Invite id"}}},
		{name: "grant", summary: "let a JID create invites", perm: policy.ManageGrants, run: runGrant,
			params: []param{
				{name: "jid", kind: kindJID, required: true, label: "JID"},
				{name: "note", kind: kindText, label: "Note"},
			}},
		{name: "revoke", summary: "take the right to invite away", perm: policy.ManageGrants, run: runRevoke,
			params: []param{{name: "jid", kind: kindJID, required: true, label: "JID"}}},
		{name: "inviters", summary: "list who may invite", perm: policy.ListInviters, run: runInviters},
	}
}

// usage renders an operation's chat syntax, e.g. "grant <jid> [note]".
func (op operation) usage() string {
	var b strings.Builder
	b.WriteString(op.name)
	for _, p := range op.params {
		if p.required {
			fmt.Fprintf(&b, " <%s>", p.name)
		} else {
			fmt.Fprintf(&b, " [%s]", p.name)
		}
	}
	return b.String()
}

// errUsage marks input that does not fit an operation's parameters.
var errUsage = errors.New("usage")

// parseParam validates one raw argument for p and returns its normal form.
func parseParam(p param, raw string) (string, error) {
	switch p.kind {
	case kindJID:
		j, err := jid.Parse(raw)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			return "", fmt.Errorf("%q is not a bare JID like someone@example.org", raw)
		}
		return j.String(), nil
	case kindInviteID:
		id := strings.ToLower(raw)
		if !store.ValidID(id) {
			return "", fmt.Errorf("%q is not an invite id", raw)
		}
		return id, nil
	default:
		if len(raw) > maxTextParam {
			return "", fmt.Errorf("%s is longer than %d characters", p.name, maxTextParam)
		}
		return raw, nil
	}
}

func runHelp(_ context.Context, _ *Bot, req request) (reply, error) {
	var b strings.Builder
	b.WriteString("Commands:")
	for _, op := range operations() {
		if policy.Allows(req.role, op.perm) {
			fmt.Fprintf(&b, "\n  %s: %s", op.usage(), op.summary)
		}
	}
	if req.role == policy.Stranger {
		b.WriteString("\nAsk an admin of this service if you should be able to invite people.")
	}
	return reply{text: b.String()}, nil
}

func runInvite(ctx context.Context, b *Bot, req request) (reply, error) {
	inv, err := b.svc.Create(ctx, req.actor)
	if err != nil {
		return reply{}, err
	}
	var t strings.Builder
	fmt.Fprintf(&t, "Invite %s for an account on %s (single use", inv.ID, inv.Domain)
	if !inv.Expires.IsZero() {
		fmt.Fprintf(&t, ", expires %s", formatTime(inv.Expires))
	}
	t.WriteString("):\n")
	// The URI stands on a line of its own, exactly as the server returned
	// it, so clients linkify it and people can copy it whole.
	t.WriteString(inv.URI)
	if inv.LandingURL != "" {
		fmt.Fprintf(&t, "\nLanding page: %s", inv.LandingURL)
	}
	fmt.Fprintf(&t, "\nTo cancel it: cancel %s", inv.ID)
	return reply{text: t.String()}, nil
}

// listLimit caps how many invites one chat reply shows.
const listLimit = 20

func runListInvites(ctx context.Context, b *Bot, req request) (reply, error) {
	invs, err := b.svc.List(ctx, req.actor)
	if err != nil {
		return reply{}, err
	}
	if len(invs) == 0 {
		return reply{text: "You have no invites yet. Send invite to create one."}, nil
	}
	var t strings.Builder
	fmt.Fprintf(&t, "Your invites (%d, newest first):", len(invs))
	for i, inv := range invs {
		if i == listLimit {
			fmt.Fprintf(&t, "\n  … and %d older", len(invs)-listLimit)
			break
		}
		fmt.Fprintf(&t, "\n  %s  %s  created %s", inv.ID, inv.State, formatTime(inv.Created))
		if inv.State == store.StatePending && !inv.Expires.IsZero() {
			fmt.Fprintf(&t, ", expires %s", formatTime(inv.Expires))
		}
	}
	return reply{text: t.String()}, nil
}

func runCancel(ctx context.Context, b *Bot, req request) (reply, error) {
	inv, err := b.svc.Cancel(ctx, req.actor, req.args["id"])
	if errors.Is(err, invites.ErrNotPending) {
		return reply{text: fmt.Sprintf("Invite %s is already %s.", inv.ID, inv.State)}, nil
	}
	if err != nil {
		return reply{}, err
	}
	return reply{text: fmt.Sprintf("Invite %s is cancelled.", inv.ID)}, nil
}

func runGrant(ctx context.Context, b *Bot, req request) (reply, error) {
	target := req.args["jid"]
	if err := b.svc.Grant(ctx, req.actor, target, req.args["note"]); err != nil {
		return reply{}, err
	}
	return reply{text: fmt.Sprintf("%s may now create invites.", target)}, nil
}

func runRevoke(ctx context.Context, b *Bot, req request) (reply, error) {
	target := req.args["jid"]
	err := b.svc.Revoke(ctx, req.actor, target)
	if errors.Is(err, invites.ErrNotInviter) {
		return reply{text: fmt.Sprintf("%s is not an inviter.", target)}, nil
	}
	if err != nil {
		return reply{}, err
	}
	return reply{text: fmt.Sprintf("%s may no longer create invites.", target)}, nil
}

func runInviters(ctx context.Context, b *Bot, req request) (reply, error) {
	grants, err := b.svc.Inviters(ctx, req.actor)
	if err != nil {
		return reply{}, err
	}
	if len(grants) == 0 {
		return reply{text: "Nobody holds a grant. Use grant <jid> to add an inviter."}, nil
	}
	var t strings.Builder
	fmt.Fprintf(&t, "Inviters (%d):", len(grants))
	for _, g := range grants {
		fmt.Fprintf(&t, "\n  %s  granted by %s on %s", g.JID, g.GrantedBy, formatTime(g.GrantedAt))
		if g.Note != "" {
			fmt.Fprintf(&t, " (%s)", g.Note)
		}
	}
	return reply{text: t.String()}, nil
}

// formatTime shows times in UTC to the minute: inviters and invitees are in
// any time zone, and UTC is the one everybody can convert from.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
