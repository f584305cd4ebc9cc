package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/internal/plaintext"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// paramKind says how an operation parameter is validated and which data
// form field presents it.
type paramKind int

const (
	// kindJID is a bare JID, normalised (case-folded) on parsing.
	kindJID paramKind = iota
	// kindInviteID is an invite id as the store hands them out.
	kindInviteID
	// kindText is free text; as the last parameter it takes the rest of the
	// chat line.
	kindText
	// kindNumber is a positive whole number.
	kindNumber
	// kindSubject is what the audit log is about: a bare JID or an invite
	// id.
	kindSubject
	// kindAccount is an account on the home domain: a bare JID, or just
	// its localpart (the handler adds the domain).
	kindAccount
	// kindPage is a page number of a long list.
	kindPage
	// kindRequestID is an account request id.
	kindRequestID
	// kindYesNo is a yes or no ("grant <jid> requests yes").
	kindYesNo
	// kindDuration is how long something stays open: a Go duration such
	// as 3h or 90m, from a second to a day.
	kindDuration
	// kindEventID is an event link id (the same shape as invite ids).
	kindEventID
	// kindAllowance is a positive whole number, or none (also written 0):
	// a right that an update can take away again, unlike kindNumber's
	// limits, which fall back to a default. Its normal form for none is
	// "0".
	kindAllowance
	// kindLimit is a positive whole number, or default: a grant's own
	// limit, which an update can put back on the configured default. 0 is
	// refused rather than read as default, since "per-day 0" reads like
	// "no invites". Its normal form for default is "default", so a value
	// shown again in a form parses again.
	kindLimit
)

// keywordDefault is what an admin types to put a kindLimit back on the
// configured default.
const keywordDefault = "default"

// maxNumberParam bounds numeric parameters (limits, entry counts).
const maxNumberParam = 1000

// maxTextParam bounds free-text parameters (notes) so they stay notes.
const maxTextParam = 200

// param is one named input of an operation.
type param struct {
	name     string
	kind     paramKind
	required bool
	label    string
	// perm is the permission needed to see and set the parameter (in help,
	// forms and parsing). The zero value, policy.ReadHelp, leaves it to
	// whoever may run the operation.
	perm policy.Permission
	// choices, when set, presents the parameter as a list in forms.
	choices func(ctx context.Context, b *Bot, req request) ([]dataform.Option, error)
	// typed lets a form offer a free-text field next to the list, for
	// values that are not among the choices, to holders of typedPerm
	// (zero: everyone who sees the parameter).
	typed     bool
	typedPerm policy.Permission
	// keyword, when set, makes this an optional chat parameter written as
	// "keyword value" anywhere after the positional ones.
	keyword string
}

// visible reports whether role may see and set p.
func (p param) visible(role policy.Role) bool {
	return policy.Allows(role, p.perm)
}

// offersTyping reports whether a form shows role a free-text field next to
// p's list of choices.
func (p param) offersTyping(role policy.Role) bool {
	return p.typed && policy.Allows(role, p.typedPerm)
}

// operation is one thing the bot can do. The table of operations is the
// only place a command is declared: the chat grammar, help, the ad-hoc
// command list and its data forms are all derived from it.
type operation struct {
	name    string // chat command word
	node    string // XEP-0050 node; empty for chat-only operations
	title   string // name shown in clients' command lists
	summary string
	perm    policy.Permission
	params  []param
	// confirm, when set, adds a confirmation stage to the ad-hoc command
	// and returns the question it asks. Chat commands are explicit enough.
	confirm func(ctx context.Context, b *Bot, req request) (string, error)
	run     func(ctx context.Context, b *Bot, req request) (reply, error)
	// offered, when set, says whether the server supports the operation
	// right now; an operation it does not is neither listed nor run.
	offered func(b *Bot) bool
	// unavailable is the answer to a request when offered says no.
	unavailable string
}

// available reports whether op can be run here now.
func (op operation) available(b *Bot) bool {
	return op.offered == nil || op.offered(b)
}

// request is a parsed, validated invocation.
type request struct {
	actor invites.Actor
	args  map[string]string
}

// role is what the requester is to the bot.
func (r request) role() policy.Role { return r.actor.Role() }

// reply is what an operation answers: text for chat (and as a note in
// ad-hoc results), a form for ad-hoc clients when the result is data, and
// an image URL that chat shows inline in a message of its own.
type reply struct {
	text  string
	form  *dataform.Form
	image string
	// warn marks a reply that succeeded with a caveat (ad-hoc shows it
	// as a warning note).
	warn bool
	// plain marks a reply that repeats what a stranger wrote: its chat
	// message asks clients not to style it (XEP-0393 unstyled).
	plain bool
}

// operations returns the table. It is a function, not a package variable,
// because the entries refer to handlers that refer back to the table (help).
func operations() []operation {
	return []operation{
		{name: "help", summary: "show what you can do", perm: policy.ReadHelp, run: runHelp},
		{name: "invite", node: invites.NodeCreateAccount, title: "Create account invite",
			summary: "create a single-use account invite", perm: policy.CreateInvite, run: runInvite},
		{name: "invites", node: "list-invites", title: "List invites",
			summary: "list your invites", perm: policy.ListInvites, run: runListInvites,
			params: []param{{name: "jid", kind: kindJID, label: "Inviter (empty: yourself)", perm: policy.ListAnyInvites}, pageParam}},
		{name: "cancel", node: "cancel-invite", title: "Cancel invite",
			summary: "cancel a pending invite", perm: policy.CancelInvite, run: runCancel, confirm: confirmCancel,
			params: []param{{name: "id", kind: kindInviteID, required: true, label: "Invite", choices: pendingInvites,
				typed: true, typedPerm: policy.CancelAnyInvite}}},
		{name: "grant", node: "grant", title: "Grant invite rights",
			summary: "let a JID create invites (optionally with its own limits)", perm: policy.ManageGrants, run: runGrant,
			params: []param{
				{name: "jid", kind: kindJID, required: true, label: "JID"},
				{name: "per-day", kind: kindLimit, keyword: "per-day",
					label: "Invites per day, or default (empty: unchanged; new grants: default)"},
				{name: "pending", kind: kindLimit, keyword: "pending",
					label: "Pending invites at most, or default (empty: unchanged; new grants: default)"},
				{name: "requests", kind: kindYesNo, keyword: "requests", label: "May answer account requests (empty: unchanged; new grants: no)",
					choices: yesNo},
				{name: "events", kind: kindAllowance, keyword: "events",
					label: "Event links: the most people one may admit, or none (empty: unchanged; new grants: none)"},
				{name: "note", kind: kindText, label: "Note"},
			}},
		{name: "revoke", node: "revoke", title: "Revoke invite rights",
			summary: "take the right to invite away and cancel their pending invites", perm: policy.ManageGrants,
			run: runRevoke, confirm: confirmRevoke,
			params: []param{{name: "jid", kind: kindJID, required: true, label: "Inviter", choices: currentInviters, typed: true}}},
		{name: "inviters", node: "list-inviters", title: "List inviters",
			summary: "list who may invite", perm: policy.ListInviters, run: runInviters,
			params: []param{pageParam}},
		{name: "pause", node: "pause", title: "Pause invites",
			summary: "stop all invite creation", perm: policy.PauseInvites, run: runPause,
			params: []param{{name: "reason", kind: kindText, label: "Reason (shown with every refusal)"}}},
		{name: "resume", node: "resume", title: "Resume invites",
			summary: "allow invite creation again", perm: policy.PauseInvites, run: runResume},
		{name: "audit", node: "audit", title: "Audit log",
			summary: "the latest audit entries, all or about one JID or invite", perm: policy.ReadAudit, run: runAudit,
			params: []param{
				{name: "about", kind: kindSubject, label: "About (JID or invite id; empty: everything)"},
				{name: "n", kind: kindNumber, label: "How many (default 20)"},
				pageParam,
			}},
		{name: "reset", node: "reset-password", title: "Password reset link",
			summary: "make a password reset link for an account (yours to reset: ones your invites created)",
			perm:    policy.ResetPassword, run: runReset,
			offered:     func(b *Bot) bool { return b.svc.ResetsAvailable() },
			unavailable: "Password resets need Prosody 13 or newer on the server; this server does not offer them.",
			params:      []param{{name: "jid", kind: kindAccount, required: true, label: "Account (user@domain, or just user on this domain)"}}},
		{name: "backup", node: "backup", title: "Back up the database",
			summary: "write a copy of the database now", perm: policy.TakeBackups, run: runBackup},
		{name: "requests", node: "list-requests", title: "List account requests",
			summary: "list the open account requests from the web page", perm: policy.AnswerRequests, run: runRequests,
			offered: requestsOn, unavailable: msgRequestsOff, params: []param{pageParam}},
		{name: "approve", node: "approve-request", title: "Approve account request",
			summary: "approve an account request: an invite in your name (counted in your quota) appears on the requester's page",
			perm:    policy.AnswerRequests, run: runApprove, confirm: confirmApprove, offered: requestsOn, unavailable: msgRequestsOff,
			params: []param{{name: "id", kind: kindRequestID, required: true, label: "Request", choices: openRequests, typed: true}}},
		{name: "deny", node: "deny-request", title: "Decline account request",
			summary: "decline an account request; the requester's page shows the reason, if you give one",
			perm:    policy.AnswerRequests, run: runDeny, offered: requestsOn, unavailable: msgRequestsOff,
			params: []param{
				{name: "id", kind: kindRequestID, required: true, label: "Request", choices: openRequests, typed: true},
				{name: "reason", kind: kindText, label: "Reason (shown on the requester's page; optional)"},
			}},
		{name: "whoinvited", node: "whoinvited", title: "Who invited an account",
			summary: "who invited an account", perm: policy.ReadAudit, run: runWhoInvited,
			params: []param{{name: "jid", kind: kindAccount, required: true, label: "Account (user@domain, or just user on this domain)"}}},
		{name: "event", node: "create-event", title: "Create event link",
			summary: "a link for a workshop or meetup: each visitor gets an invite of their own, up to a cap, for a few hours",
			perm:    policy.CreateEvent, run: runEvent,
			offered:     func(b *Bot) bool { return b.eventLinks != nil },
			unavailable: "Event links need the bot's web page: set http.listen and http.public_url in the configuration.",
			params: []param{
				{name: "uses", kind: kindNumber, required: true, label: "How many people at most"},
				{name: "valid", kind: kindDuration, required: true, label: "Open for (e.g. 3h or 90m; at most 24h)"},
				{name: "note", kind: kindText, label: "Note (for your list)"},
			}},
		{name: "events", node: "list-events", title: "List event links",
			summary: "list your event links", perm: policy.ListEvents, run: runListEvents,
			params: []param{{name: "jid", kind: kindJID, label: "Creator (empty: yourself)", perm: policy.ListAnyEvents}, pageParam}},
		{name: "close-event", node: "close-event", title: "Close event link",
			summary: "close an event link and cancel its unused invites", perm: policy.CloseEvent, run: runCloseEvent, confirm: confirmCloseEvent,
			params: []param{{name: "id", kind: kindEventID, required: true, label: "Event link", choices: openEvents,
				typed: true, typedPerm: policy.CloseAnyEvent}}},
	}
}

// pageParam picks a page of a long list ("inviters page 2").
var pageParam = param{name: "page", kind: kindPage, keyword: "page", label: "Page (default 1)"}

// usage renders an operation's chat syntax for role, e.g. "grant <jid> [note]".
func (op operation) usage(role policy.Role) string {
	var b strings.Builder
	b.WriteString(op.name)
	for _, p := range op.params {
		if !p.visible(role) {
			continue
		}
		switch {
		case p.keyword != "" && p.kind == kindYesNo:
			fmt.Fprintf(&b, " [%s yes|no]", p.keyword)
		case p.keyword != "" && p.kind == kindAllowance:
			fmt.Fprintf(&b, " [%s N|none]", p.keyword)
		case p.keyword != "" && p.kind == kindLimit:
			fmt.Fprintf(&b, " [%s N|%s]", p.keyword, keywordDefault)
		case p.keyword != "":
			fmt.Fprintf(&b, " [%s N]", p.keyword)
		case p.required:
			fmt.Fprintf(&b, " <%s>", p.name)
		default:
			fmt.Fprintf(&b, " [%s]", p.name)
		}
	}
	return b.String()
}

// parseParam validates one raw argument for p and returns its normal form.
func parseParam(p param, raw string) (string, error) {
	switch p.kind {
	case kindJID:
		return parseBareJID(raw)
	case kindAccount:
		if !strings.Contains(raw, "@") && !strings.HasPrefix(raw, "xmpp:") {
			// A localpart alone: check it the way a JID's is checked.
			j, err := jid.New(raw, "localpart.invalid", "")
			if err != nil || j.Localpart() == "" {
				return "", fmt.Errorf("%q is not a username or a bare JID", raw)
			}
			return j.Localpart(), nil
		}
		return parseBareJID(raw)
	case kindPage:
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxNumberParam {
			return "", fmt.Errorf("page must be a number from 1 to %d, not %q", maxNumberParam, raw)
		}
		return strconv.Itoa(n), nil
	case kindInviteID:
		id := strings.ToLower(raw)
		if !invites.ValidID(id) {
			return "", fmt.Errorf("%q is not an invite id", raw)
		}
		return id, nil
	case kindRequestID:
		id := strings.ToLower(raw)
		if !invites.ValidID(id) {
			return "", fmt.Errorf("%q is not a request id; send requests to list them", raw)
		}
		return id, nil
	case kindYesNo:
		switch strings.ToLower(raw) {
		case "yes", "y", "true", "on", "1":
			return "yes", nil
		case "no", "n", "false", "off", "0":
			return "no", nil
		}
		return "", fmt.Errorf("%s must be yes or no, not %q", p.name, raw)
	case kindEventID:
		id := strings.ToLower(raw)
		if !invites.ValidID(id) {
			return "", fmt.Errorf("%q is not an event link id", raw)
		}
		return id, nil
	case kindDuration:
		return parseDuration(p, raw)
	case kindNumber:
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxNumberParam {
			return "", fmt.Errorf("%s must be a number from 1 to %d, not %q", p.name, maxNumberParam, raw)
		}
		return strconv.Itoa(n), nil
	case kindAllowance:
		if strings.EqualFold(raw, "none") {
			return "0", nil
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 || n > maxNumberParam {
			return "", fmt.Errorf("%s must be a number from 1 to %d, or none, not %q", p.name, maxNumberParam, raw)
		}
		return strconv.Itoa(n), nil
	case kindLimit:
		return parseLimit(p, raw)
	case kindSubject:
		if id := strings.ToLower(raw); invites.ValidID(id) {
			return id, nil
		}
		if strings.Contains(raw, "@") {
			if bare, err := parseBareJID(raw); err == nil {
				return bare, nil
			}
		}
		return "", fmt.Errorf("%q is neither a bare JID nor an invite id", raw)
	default:
		// Free text comes back in lists and refusals: one line, no
		// control or bidi characters, whatever the client sent.
		text := plaintext.Line(raw)
		if len(text) > maxTextParam {
			return "", fmt.Errorf("%s is longer than %d bytes", p.name, maxTextParam)
		}
		return text, nil
	}
}

// parseLimit reads a kindLimit value. An admin who types 0 most likely
// wants either the default or no invites at all, and the two are far
// apart; the answer names the keyword for the first (revoke is the other).
func parseLimit(p param, raw string) (string, error) {
	if strings.EqualFold(raw, keywordDefault) {
		return keywordDefault, nil
	}
	n, err := strconv.Atoi(raw)
	switch {
	case err == nil && n == 0:
		return "", fmt.Errorf("%s must be at least 1; for the configured default, write %s", p.name, keywordDefault)
	case err != nil || n < 1 || n > maxNumberParam:
		return "", fmt.Errorf("%s must be a number from 1 to %d, or %s, not %q", p.name, maxNumberParam, keywordDefault, raw)
	}
	return strconv.Itoa(n), nil
}

// parseBareJID reads a bare JID typed by a person, with or without an
// xmpp: scheme (copied from a link), and returns its normal form.
func parseBareJID(raw string) (string, error) {
	trimmed := strings.TrimPrefix(raw, "xmpp:")
	if i := strings.IndexByte(trimmed, '?'); i >= 0 {
		trimmed = trimmed[:i]
	}
	j, err := jid.Parse(trimmed)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		return "", fmt.Errorf("%q is not a bare JID like someone@example.org", raw)
	}
	return j.String(), nil
}

func runHelp(_ context.Context, bot *Bot, req request) (reply, error) {
	var b strings.Builder
	b.WriteString("Commands:")
	for _, op := range operations() {
		if policy.Allows(req.role(), op.perm) && op.available(bot) {
			fmt.Fprintf(&b, "\n  %s: %s", op.usage(req.role()), op.summary)
		}
	}
	if req.role() == policy.Stranger {
		b.WriteString("\nAsk an admin of this service if you should be able to invite people.")
	} else {
		b.WriteString("\nClients with an ad-hoc command menu offer the same commands as forms.")
	}
	return reply{text: b.String()}, nil
}

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
		return reply{text: fmt.Sprintf("%s is not an account on %s.", account, b.svc.Domain())}, nil
	case errors.Is(err, invites.ErrNotYourAccount):
		return reply{text: fmt.Sprintf("You may reset only accounts your own invites created, and %s is not one of them (as far as I know). Ask an admin.", account)}, nil
	case errors.Is(err, invites.ErrResetUnsupported):
		return reply{text: "Password resets need Prosody 13 or newer on the server; this server does not offer them."}, nil
	case err != nil:
		return reply{}, err
	}
	r := b.inviteReply(inv, fmt.Sprintf("Password reset link %s for %s", inv.ID, inv.ResetFor))
	r.text += "\nWhoever opens it sets a new password for " + inv.ResetFor + " (it could also create a new account, so hand it only to its owner). The account was told."
	return r, nil
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
		form.Fields = append(form.Fields, dataform.Field{Var: "expire", Type: dataform.TextSingle, Label: "Expires", Values: []string{inv.Expires.UTC().Format(time.RFC3339)}})
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
			return reply{text: "You have no invites yet. Send invite to create one."}, nil
		}
		return reply{text: whose + " has no invites."}, nil
	}
	pg := pageOf(req.args["page"], len(invs))
	if pg.empty() {
		return pg.beyond(), nil
	}
	owner, more := "Your invites", "invites"
	if !mine {
		owner, more = "Invites of "+whose, "invites "+whose
	}
	tbl := newTable(owner, fmt.Sprintf("%s (%d, newest first):", owner, len(invs)),
		column{"id", "Id"}, column{"state", "State"}, column{"created", "Created"}, column{"expires", "Expires"},
		column{"account", "Account created"})
	for _, inv := range invs[pg.from:pg.to] {
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
		if inv.State == invites.StateCancelled && !inv.Revoked {
			line += " (token not yet revoked at the server)"
		}
		tbl.row(line, inv.ID, string(inv.State), formatTime(inv.Created), expires, inv.UsedBy)
	}
	tbl.paged(pg, more)
	return tbl.reply(), nil
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
		label := fmt.Sprintf("%s, created %s", inv.ID, formatTime(inv.Created))
		opts = append(opts, dataform.Option{Label: label, Value: inv.ID})
	}
	return opts, nil
}

func confirmCancel(ctx context.Context, b *Bot, req request) (string, error) {
	id := req.args["id"]
	// Short: some clients (poezio) cut the question at one line.
	if inv, err := b.svc.Lookup(ctx, id); err == nil && inv.Inviter != req.actor.JID() {
		return fmt.Sprintf("Cancel %s's invite %s? Its link stops working.", inv.Inviter, id), nil
	}
	return fmt.Sprintf("Cancel invite %s? Its link stops working.", id), nil
}

func runCancel(ctx context.Context, b *Bot, req request) (reply, error) {
	inv, err := b.svc.Cancel(ctx, req.actor, req.args["id"])
	if errors.Is(err, invites.ErrNotPending) {
		if inv.State == invites.StateUsed && inv.UsedBy != "" {
			return reply{text: fmt.Sprintf("Invite %s is already used by %s.", inv.ID, inv.UsedBy)}, nil
		}
		return reply{text: fmt.Sprintf("Invite %s is already %s.", inv.ID, inv.State)}, nil
	}
	if err != nil {
		return reply{}, err
	}
	if !inv.Revoked {
		return reply{text: fmt.Sprintf("Invite %s is cancelled here, but the server still accepts its token for now (see the log); it stops working when it expires.", inv.ID), warn: true}, nil
	}
	return reply{text: fmt.Sprintf("Invite %s is cancelled; its link no longer works.", inv.ID)}, nil
}

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
		return reply{text: fmt.Sprintf("%s is an admin of this service: admins may always invite and need no grant.", target)}, nil
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
	switch {
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
		return " Event links they already made stay open until they expire or fill up; events " + target + " lists them."
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
		return fmt.Sprintf(" Their open event link %s stays open until it expires or fills up; close-event %s closes it and cancels its unused invites.", ids[0], ids[0])
	}
	return fmt.Sprintf(" Their %d open event links (%s) stay open until they expire or fill up; close-event <id> closes one and cancels its unused invites.",
		len(ids), strings.Join(ids, ", "))
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
		opts = append(opts, dataform.Option{Label: g.JID, Value: g.JID})
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
		return reply{text: fmt.Sprintf("%s is not an inviter.", target)}, nil
	case errors.Is(err, invites.ErrTargetIsAdmin):
		return reply{text: fmt.Sprintf("%s is an admin of this service; admins are set in the configuration, not by grants, and keep their invites.", target)}, nil
	case err != nil:
		return reply{}, err
	}
	if res.Cancelled == 0 {
		return reply{text: fmt.Sprintf("%s may no longer create invites. None of their invites was still pending.", target)}, nil
	}
	text := fmt.Sprintf("%s may no longer create invites. Cancelled %s", target, count(res.Cancelled, "pending invite", "pending invites"))
	if res.StillValid > 0 {
		text += fmt.Sprintf("; %s still accepted by the server for now, I will keep trying to revoke them.", count(res.StillValid, "token is", "tokens are"))
		return reply{text: text, warn: true}, nil
	}
	text += "; none of their links works any more."
	return reply{text: text}, nil
}

func runPause(ctx context.Context, b *Bot, req request) (reply, error) {
	p, err := b.svc.Pause(ctx, req.actor, req.args["reason"])
	if err != nil {
		return reply{}, err
	}
	return reply{text: fmt.Sprintf("Invites are paused for everybody (reason: %s). Invites already handed out still work; revoke an inviter to stop theirs. Send resume to allow invites again.", pauseReason(p.Reason))}, nil
}

func runResume(ctx context.Context, b *Bot, req request) (reply, error) {
	err := b.svc.Resume(ctx, req.actor)
	if errors.Is(err, invites.ErrNotPaused) {
		return reply{text: "Invites were not paused."}, nil
	}
	if err != nil {
		return reply{}, err
	}
	return reply{text: "Invites are allowed again."}, nil
}

// defaultAuditEntries is how many entries audit shows unless told.
const defaultAuditEntries = 20

func runAudit(ctx context.Context, b *Bot, req request) (reply, error) {
	n := defaultAuditEntries
	if v, err := strconv.Atoi(req.args["n"]); err == nil {
		n = v
	}
	entries, err := b.svc.Audit(ctx, req.actor, req.args["about"], n)
	if err != nil {
		return reply{}, err
	}
	if len(entries) == 0 {
		return reply{text: "No audit entries."}, nil
	}
	pg := pageOf(req.args["page"], len(entries))
	if pg.empty() {
		return pg.beyond(), nil
	}
	tbl := newTable("Audit log", fmt.Sprintf("Audit log, newest first (%d):", len(entries)),
		column{"time", "Time"}, column{"actor", "Actor"}, column{"action", "Action"},
		column{"subject", "Subject"}, column{"detail", "Detail"})
	for _, e := range entries[pg.from:pg.to] {
		line := fmt.Sprintf("%s  %s  %s  %s", formatTime(e.Time), e.Actor, e.Action, e.Subject)
		if e.Detail != "" {
			line += "  (" + e.Detail + ")"
		}
		tbl.row(line, formatTime(e.Time), e.Actor, e.Action, e.Subject, e.Detail)
	}
	more := strings.Join(strings.Fields("audit "+req.args["about"]+" "+req.args["n"]), " ")
	tbl.paged(pg, more)
	return tbl.reply(), nil
}

func runWhoInvited(ctx context.Context, b *Bot, req request) (reply, error) {
	account := req.args["jid"]
	if !strings.Contains(account, "@") {
		account += "@" + b.svc.Domain() // a username alone is one of ours
	}
	invs, err := b.svc.WhoInvited(ctx, req.actor, account)
	if err != nil {
		return reply{}, err
	}
	if len(invs) == 0 {
		if b.svc.ServerModule() == invites.ModulePresent {
			return reply{text: fmt.Sprintf("No record of who invited %s: none of the bot's invites created it, or it was created before the server ran mod_invitebot (see audit).", account)}, nil
		}
		return reply{text: fmt.Sprintf("No record of who invited %s. Without mod_invitebot on the server only accounts created through the web page are known by name; see audit for invites used otherwise.", account)}, nil
	}
	var t strings.Builder
	for i, inv := range invs[:min(len(invs), pageSize)] {
		if i > 0 {
			t.WriteString("\n")
		}
		fmt.Fprintf(&t, "%s was invited by %s with invite %s, created %s", account, inv.Inviter, inv.ID, formatTime(inv.Created))
		if inv.Event != "" {
			fmt.Fprintf(&t, " (from event link %s)", inv.Event)
		}
		t.WriteString(".")
	}
	return reply{text: t.String()}, nil
}

func runInviters(ctx context.Context, b *Bot, req request) (reply, error) {
	grants, err := b.svc.Inviters(ctx, req.actor)
	if err != nil {
		return reply{}, err
	}
	if len(grants) == 0 {
		return reply{text: "Nobody holds a grant. Use grant <jid> to add an inviter."}, nil
	}
	def := b.svc.DefaultLimits()
	pg := pageOf(req.args["page"], len(grants))
	if pg.empty() {
		return pg.beyond(), nil
	}
	tbl := newTable("Inviters", fmt.Sprintf("Inviters (%d):", len(grants)),
		column{"jid", "JID"}, column{"granted_by", "Granted by"}, column{"granted_at", "Granted"},
		column{"per_day", "Per day"}, column{"pending", "Pending"}, column{"note", "Note"},
		column{"requests", "Answers requests"}, column{"events", "Event links up to"})
	for _, g := range grants[pg.from:pg.to] {
		line := fmt.Sprintf("%s  granted by %s on %s, per-day %s, pending %s", g.JID, g.GrantedBy, formatTime(g.GrantedAt),
			orDefault(g.PerDay, def.PerDay), orDefault(g.MaxPending, def.MaxPending))
		if g.Requests {
			line += ", answers account requests"
		}
		events := ""
		if g.Events > 0 {
			events = strconv.Itoa(min(g.Events, def.EventMaxUses))
			line += ", event links up to " + events
		}
		if g.Note != "" {
			line += " (" + g.Note + ")"
		}
		tbl.row(line, g.JID, g.GrantedBy, formatTime(g.GrantedAt), orDefault(g.PerDay, def.PerDay), orDefault(g.MaxPending, def.MaxPending), g.Note,
			map[bool]string{true: "yes", false: "no"}[g.Requests], events)
	}
	tbl.paged(pg, "inviters")
	return tbl.reply(), nil
}

func runBackup(ctx context.Context, b *Bot, req request) (reply, error) {
	path, err := b.svc.Backup(ctx, req.actor)
	if errors.Is(err, invites.ErrNoBackupDir) {
		return reply{text: "Backups are off: set store.backup_dir in the configuration and restart the bot."}, nil
	}
	if err != nil {
		return reply{}, err
	}
	return reply{text: "Backup written: " + path}, nil
}
