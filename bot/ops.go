package bot

import (
	"context"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

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
	// none, for a required parameter with choices, is what a form answers
	// at once, instead of itself, when the list is empty and the person
	// can type nothing beyond it (see commandRun.nothingToChoose).
	none string
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

// typesBeyondList reports whether role's free-text field next to p's list
// reaches values the list never offers them (anyone's invite, for an
// admin; typedPerm says who), rather than only those past the length of a
// list that holds them all: an empty list then still leaves something to
// do.
func (p param) typesBeyondList(role policy.Role) bool {
	return p.offersTyping(role) && p.typedPerm != policy.ReadHelp
}

// operation is one thing the bot can do. The table of operations is the
// only place a command is declared: the chat grammar, help, the ad-hoc
// command list and its data forms are all derived from it.
type operation struct {
	name    string // chat command word
	node    string // XEP-0050 node; empty for chat-only operations
	title   string // name shown in clients' command lists
	summary string
	// wider, when set, is the summary for the roles that hold its
	// permission: an operation that reaches further for them (an admin
	// cancels anyone's invites) says so in their help, and only in theirs.
	wider  *roleSummary
	perm   policy.Permission
	params []param
	// confirm, when set, adds a confirmation stage to the ad-hoc command
	// and returns the question it asks. Chat commands are explicit enough.
	confirm func(ctx context.Context, b *Bot, req request) (string, error)
	run     func(ctx context.Context, b *Bot, req request) (reply, error)
	// offered, when set, says whether the server supports the operation
	// right now; an operation it does not is neither listed nor run.
	offered func(b *Bot) bool
	// unavailable is the answer to a request when offered says no.
	unavailable string
	// precheck, when set, is asked before a form is shown: a refusal it
	// returns is the answer at once, so nobody fills a form that would be
	// refused whatever they enter (an inviter whose grant has no event
	// links). A zero reply lets the form show.
	precheck func(ctx context.Context, b *Bot, req request) (reply, error)
}

// roleSummary is the summary of an operation for the roles holding perm.
type roleSummary struct {
	perm    policy.Permission
	summary string
}

// summaryFor is what op does for role, as help says it.
func (op operation) summaryFor(role policy.Role) string {
	if op.wider != nil && policy.Allows(role, op.wider.perm) {
		return op.wider.summary
	}
	return op.summary
}

// available reports whether op can be run here now.
func (op operation) available(b *Bot) bool {
	return op.offered == nil || op.offered(b)
}

// request is a parsed, validated invocation.
type request struct {
	actor invites.Actor
	args  map[string]string
	// form says the request came as an ad-hoc command: its answer names
	// form commands where chat's names chat commands (see say).
	form bool
}

// say picks the words for the view the request came from: chat tells
// people what to send, a form which form command to run.
func (r request) say(chat, form string) string {
	if r.form {
		return form
	}
	return chat
}

// formCommand names, for a form, the ad-hoc command of the chat command
// name: its title in quotes, as clients list it (TestFormCommandsExist
// checks every name the bot passes).
func formCommand(name string) string {
	for _, op := range operations() {
		if op.name == name && op.node != "" {
			return "“" + op.title + "”"
		}
	}
	return name
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
	// refused, when set, marks a reply that says no: nothing was done,
	// and text says why. Chat sends the words; ad-hoc answers the command
	// with a stanza error of this condition carrying them (see
	// commandRun.refuse), the one answer that no client shows as success.
	refused stanza.Condition
	// plain marks a reply that repeats what a stranger wrote: its chat
	// message asks clients not to style it (XEP-0393 unstyled).
	plain bool
}

// refusal is the reply that says no with text; cond is what kind of no,
// as a stanza error condition (RFC 6120 §8.3.3): not-allowed for what
// this person or this service does not do, resource-constraint for a
// limit reached, item-not-found for an unknown id or account, conflict
// for what is done already, not-acceptable for a value the service
// refuses, feature-not-implemented for what this server does not offer.
func refusal(cond stanza.Condition, text string) reply { return reply{text: text, refused: cond} }

// operations returns the table. It is a function, not a package variable,
// because the entries refer to handlers that refer back to the table (help).
func operations() []operation {
	return []operation{
		{name: "help", summary: "show what you can do", perm: policy.ReadHelp, run: runHelp},
		{name: "invite", node: invites.NodeCreateAccount, title: "Create account invite",
			summary: "create a single-use account invite", perm: policy.CreateInvite, run: runInvite},
		{name: "invites", node: "list-invites", title: "List invites",
			summary: "list your invites", perm: policy.ListInvites,
			wider: &roleSummary{policy.ListAnyInvites, "list your invites, or someone else's"}, run: runListInvites,
			params: []param{{name: "jid", kind: kindJID, label: "Inviter (empty: yourself)", perm: policy.ListAnyInvites}, pageParam}},
		{name: "cancel", node: "cancel-invite", title: "Cancel invite",
			summary: "cancel a pending invite of yours", perm: policy.CancelInvite,
			wider: &roleSummary{policy.CancelAnyInvite, "cancel a pending invite, yours or anyone's"}, run: runCancel, confirm: confirmCancel,
			params: []param{{name: "id", kind: kindInviteID, required: true, label: "Invite", choices: pendingInvites,
				typed: true, typedPerm: policy.CancelAnyInvite, none: "You have no pending invites to cancel."}}},
		{name: "grant", node: "grant", title: "Grant invite rights",
			summary: "let a JID create invites (optionally with its own limits)", perm: policy.ManageGrants, run: runGrant,
			params: []param{
				{name: "jid", kind: kindJID, required: true, label: "JID to grant"},
				{name: "per-day", kind: kindLimit, keyword: "per-day",
					label: "Invites per day (a number, or default; empty: unchanged; new grants: default)"},
				{name: "pending", kind: kindLimit, keyword: "pending",
					label: "Pending invites at most (a number, or default; empty: unchanged; new grants: default)"},
				{name: "requests", kind: kindYesNo, keyword: "requests", label: "May answer account requests (empty: unchanged; new grants: no)",
					choices: yesNo},
				{name: "events", kind: kindAllowance, keyword: "events",
					label: "People their event links may admit per 24 hours (all links together: a number, or none; empty: unchanged; new grants: none)"},
				{name: "note", kind: kindText, label: "Note"},
			}},
		{name: "revoke", node: "revoke", title: "Revoke invite rights",
			summary: "take the right to invite away and cancel their pending invites", perm: policy.ManageGrants,
			run: runRevoke, confirm: confirmRevoke,
			params: []param{{name: "jid", kind: kindJID, required: true, label: "Inviter", choices: currentInviters, typed: true,
				none: "Nobody holds a grant: there is no one to revoke."}}},
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
			summary: "make a password reset link for an account your invites created",
			wider:   &roleSummary{policy.ResetAnyAccount, "make a password reset link for any account of the domain"},
			perm:    policy.ResetPassword, run: runReset,
			offered:     func(b *Bot) bool { return b.svc.ResetsAvailable() },
			unavailable: "Password resets need Prosody 13 or newer on the server; this server does not offer them.",
			params:      []param{{name: "jid", kind: kindAccount, required: true, label: "Account (user@domain, or just user on this domain)"}}},
		{name: "email", summary: "keep a mail address for password resets: email you@example.org, then email confirm CODE; email alone shows it, email remove forgets it",
			perm: policy.KeepOwnMail, run: runEmail, offered: recoveryOn, unavailable: msgRecoveryOff,
			params: []param{{name: "what", kind: kindText, label: "Address, confirm CODE, or remove"}}},
		{name: "backup", node: "backup", title: "Back up the database",
			summary: "write a copy of the database now", perm: policy.TakeBackups, run: runBackup},
		{name: "requests", node: "list-requests", title: "List account requests",
			summary: "list the open account requests from the web page", perm: policy.AnswerRequests, run: runRequests,
			offered: requestsOn, unavailable: msgRequestsOff, params: []param{pageParam}},
		{name: "approve", node: "approve-request", title: "Approve account request",
			summary: "approve an account request: an invite in your name (counted in your quota) appears on the requester's page",
			perm:    policy.AnswerRequests, run: runApprove, confirm: confirmApprove, offered: requestsOn, unavailable: msgRequestsOff,
			params: []param{{name: "id", kind: kindRequestID, required: true, label: "Request", choices: openRequests, typed: true,
				none: "There are no open account requests to approve."}}},
		{name: "deny", node: "deny-request", title: "Decline account request",
			summary: "decline an account request; the requester's page shows the reason, if you give one",
			perm:    policy.AnswerRequests, run: runDeny, confirm: confirmDeny, offered: requestsOn, unavailable: msgRequestsOff,
			params: []param{
				{name: "id", kind: kindRequestID, required: true, label: "Request", choices: openRequests, typed: true,
					none: "There are no open account requests to decline."},
				{name: "reason", kind: kindText, label: "Reason (shown on the requester's page; optional)"},
			}},
		{name: "whoinvited", node: "whoinvited", title: "Who invited an account",
			summary: "who invited an account", perm: policy.ReadAudit, run: runWhoInvited,
			params: []param{{name: "jid", kind: kindAccount, required: true, label: "Account (user@domain, or just user on this domain)"}}},
		{name: "event", node: "create-event", title: "Create event link",
			summary: "a link for a workshop or meetup: each visitor gets an invite of their own, up to a cap, for a few hours",
			perm:    policy.CreateEvent, run: runEvent, precheck: eventsAllowed,
			offered:     func(b *Bot) bool { return b.eventLinks != nil },
			unavailable: "Event links need the bot's web page: set http.listen and http.public_url in the configuration.",
			params: []param{
				{name: "uses", kind: kindCap, required: true, label: "How many people at most"},
				{name: "valid", kind: kindDuration, required: true, label: "How long it stays open (e.g. 3h or 90m; at most 24h)"},
				{name: "note", kind: kindText, label: "Note (for your list)"},
			}},
		{name: "events", node: "list-events", title: "List event links",
			summary: "list your event links", perm: policy.ListEvents,
			wider: &roleSummary{policy.ListAnyEvents, "list your event links, or someone else's"}, run: runListEvents,
			params: []param{{name: "jid", kind: kindJID, label: "Creator (empty: yourself)", perm: policy.ListAnyEvents}, pageParam}},
		{name: "close-event", node: "close-event", title: "Close event link",
			summary: "close an event link of yours and cancel its unused invites", perm: policy.CloseEvent,
			wider: &roleSummary{policy.CloseAnyEvent, "close an event link, yours or anyone's, and cancel its unused invites"}, run: runCloseEvent, confirm: confirmCloseEvent,
			params: []param{{name: "id", kind: kindEventID, required: true, label: "Event link", choices: openEvents,
				typed: true, typedPerm: policy.CloseAnyEvent, none: "You have no open event links to close."}}},
		{name: "tree", node: "tree", title: "Tree of who invited whom",
			summary: "your branch: who invited you, and every account your invites created, and theirs",
			wider:   &roleSummary{policy.ReadAnyBranch, "someone's branch: who invited them, and every account their invites created, and theirs"},
			perm:    policy.ReadBranch, run: runTree,
			params: []param{{name: "jid", kind: kindAccount, label: "Inviter or account (user@domain, or just user on this domain; empty: yourself)"}, pageParam}},
		{name: "suspend", node: "suspend", title: "Suspend a branch",
			summary: "revoke an inviter and suspend the accounts their invites created (deep: the whole branch), after a preview; unsuspend undoes it",
			perm:    policy.SuspendAccounts, run: runSuspend, confirm: confirmSuspend,
			params: []param{
				{name: "jid", kind: kindJID, required: true, label: "Inviter or account"},
				{name: "depth", kind: kindDepth, label: "Which accounts", choices: depthChoices},
				{name: "reason", kind: kindText, label: "Reason (for the audit log)"},
			}},
		{name: "yes", title: "Confirm", summary: "carry out the suspension you were just shown",
			perm: policy.SuspendAccounts, run: runYes},
		{name: "unsuspend", node: "unsuspend", title: "Lift a suspension",
			summary: "undo a suspend: grants back, accounts can log in again", perm: policy.SuspendAccounts, run: runUnsuspend,
			params: []param{{name: "jid", kind: kindAccount, required: true, label: "JID that was suspended"}}},
	}
}

// pageParam picks a page of a long list ("inviters page 2").
var pageParam = param{name: "page", kind: kindPage, keyword: "page", label: "Page (default 1)"}
