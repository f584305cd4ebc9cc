package bot

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// CommandObserver is told about every command a permitted sender runs.
type CommandObserver interface {
	Command(name string)
}

// Encoder writes stanzas to the server. *Link implements it; tests may
// record instead.
type Encoder interface {
	Encode(ctx context.Context, v any) error
}

// Bot serves chat commands and discovery for the component.
type Bot struct {
	svc       *invites.Service
	reports   ReportReader
	component jid.JID
	log       *slog.Logger
	now       func() time.Time

	out   Encoder
	links func(id string) (landing, qr string)
	// eventLinks gives an event link's page and QR image; nil without a
	// web server, and then no event links can be made.
	eventLinks func(id string) (page, qr string)
	// treePages makes a one-time link to the picture of who's branch for
	// actor; nil without a web server.
	treePages func(ctx context.Context, actor invites.Actor, who string) (string, error)
	observer  CommandObserver
	ops       map[string]operation // by chat command word
	nodes     map[string]operation // by XEP-0050 node

	sessions *sessionTable

	// sched runs requests off the read loop; dropLog keeps a flood of
	// refused ones from flooding the log too.
	sched   *scheduler
	dropLog *replyLimiter
	// busy answers the chat messages the scheduler could not take.
	busy *busyAnswers

	// Strangers are answered sparingly: refusals once per
	// policy.RefusalInterval, help once per helpInterval, and only so many
	// refusals a window reach the audit log.
	refusals    *replyLimiter
	helpReplies *replyLimiter
	strangerLog *auditBudget
}

// Config wires a Bot.
type Config struct {
	// Service carries out the operations.
	Service *invites.Service
	// Component is the component's JID, used as from on everything sent.
	Component jid.JID
	// Log receives the bot's logs.
	Log *slog.Logger
	// Out is where replies go, normally the *Link.
	Out Encoder
	// Links, when set, gives an invite's landing page and QR image URLs
	// (the web room's); nil when no web server is configured.
	Links func(id string) (landing, qr string)
	// Observer, when set, counts commands run (metrics).
	Observer CommandObserver
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// EventLinks, when set, gives an event link's page and QR image URLs
	// (the web room's); nil when no web server is configured.
	EventLinks func(id string) (page, qr string)
	// Reports, when set, recognises the usage reports the server's module
	// sends (the server package's); nil takes none.
	Reports ReportReader
	// TreePages, when set, makes a one-time link to the picture of a
	// branch (the web room's); nil when no web server is configured.
	TreePages func(ctx context.Context, actor invites.Actor, who string) (string, error)
}

// New returns a Bot; give it to Link.Run as the stanza handler.
func New(cfg Config) *Bot {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	ops := make(map[string]operation)
	nodes := make(map[string]operation)
	for _, op := range operations() {
		ops[op.name] = op
		if op.node != "" {
			nodes[op.node] = op
		}
	}
	return &Bot{
		svc:         cfg.Service,
		reports:     cfg.Reports,
		component:   cfg.Component,
		log:         cfg.Log,
		now:         now,
		out:         cfg.Out,
		links:       cfg.Links,
		eventLinks:  cfg.EventLinks,
		treePages:   cfg.TreePages,
		observer:    cfg.Observer,
		ops:         ops,
		nodes:       nodes,
		sessions:    newSessionTable(now),
		sched:       newScheduler(cfg.Log),
		dropLog:     newReplyLimiter(dropLogInterval, now),
		busy:        newBusyAnswers(now),
		refusals:    newReplyLimiter(policy.RefusalInterval, now),
		helpReplies: newReplyLimiter(helpInterval, now),
		strangerLog: newAuditBudget(now),
	}
}

// Drain stops taking new commands and waits until the ones in flight have
// answered, or ctx ends (then they are cancelled).
func (b *Bot) Drain(ctx context.Context) error {
	return b.sched.drain(ctx)
}

// HandleXMPP routes one incoming stanza. It runs inside the session's read
// loop, so anything slow is handed to a goroutine, and it never returns an
// error: mellium would close the whole stream for it.
func (b *Bot) HandleXMPP(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	// A bug in one stanza's handling must not take the process down: the
	// read loop has no recover of its own.
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("panic handling a stanza", slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
		}
	}()
	switch start.Name.Local {
	case "message":
		b.handleMessage(t, start)
	case "iq":
		b.handleIQ(t, start)
	case "presence":
		b.handlePresence(t, start)
	}
	return nil
}

// replyFrom answers from the address the sender wrote to (the component or
// any localpart under it), so clients keep the conversation in one window.
func (b *Bot) replyFrom(to jid.JID) string {
	if to.Domainpart() == b.component.Domainpart() {
		return to.String()
	}
	return b.component.String()
}

func (b *Bot) send(ctx context.Context, v any) {
	if err := b.out.Encode(ctx, v); err != nil {
		b.log.Warn("reply not sent", slog.Any("err", err))
	}
}

// countCommand tells the observer a permitted command runs.
func (b *Bot) countCommand(op operation) {
	if b.observer != nil {
		b.observer.Command(op.name)
	}
}

// User-facing messages for failures. Short and generic: the detail goes to
// the log, where the admin can read it.
const (
	msgInternal     = "Sorry, something went wrong. Please try again later."
	msgUnavailable  = "Sorry, the server cannot be reached right now. Please try again in a minute."
	msgIssuerRefuse = "Sorry, the server refused to create the invite. The admins have been told."
	// msgStrangerQuiet ends the one answer a stranger gets per interval.
	msgStrangerQuiet = "(I answer people without invite rights at most once an hour.)"
)

// userMessage turns an operation error into a reply and logs what an admin
// needs to know.
func (b *Bot) userMessage(ctx context.Context, op operation, req request, err error) string {
	_, text := b.failureText(ctx, op, req, err)
	return text
}

// failureText is userMessage with the stanza error condition an ad-hoc
// command answers with (see refusal).
func (b *Bot) failureText(ctx context.Context, op operation, req request, err error) (stanza.Condition, string) {
	actor := req.actor.JID()
	switch {
	case errors.Is(err, invites.ErrForbidden):
		return stanza.Forbidden, "Sorry, you may not use " + req.say(op.name, "“"+op.title+"”") + " here."
	case errors.Is(err, invites.ErrNoSuchInvite) && policy.Allows(req.role(), policy.CancelAnyInvite):
		return stanza.ItemNotFound, req.say("No such invite. Check the id in audit or invites <jid>.",
			"No such invite. Check the id in "+formCommand("audit")+" or "+formCommand("invites")+".")
	case errors.Is(err, invites.ErrNoSuchInvite):
		return stanza.ItemNotFound, req.say("No such invite among yours. Send invites to list them.",
			"No such invite among yours. Run "+formCommand("invites")+" to see them.")
	case errors.As(err, new(*invites.PausedError)):
		var pe *invites.PausedError
		errors.As(err, &pe)
		return stanza.NotAllowed, "Invites are paused: " + pauseReason(pe.Reason)
	case errors.As(err, new(*invites.QuotaError)):
		var qe *invites.QuotaError
		errors.As(err, &qe)
		return stanza.ResourceConstraint, "No invite: " + quotaText(qe.Refusal) + "."
	case errors.Is(err, invites.ErrIssuerForbidden):
		b.logIssuerRefused(ctx, err)
		return stanza.ServiceUnavailable, msgIssuerRefuse
	case errors.Is(err, invites.ErrIssuerUnsupported):
		b.log.ErrorContext(ctx, "the server has no invite command: enable the invites and invites_adhoc modules on the domain",
			slog.String("domain", b.svc.Domain()), slog.Any("err", err))
		return stanza.ServiceUnavailable, msgIssuerRefuse
	case errors.Is(err, ErrLinkDown), errors.Is(err, invites.ErrServerUnreachable), errors.Is(err, context.DeadlineExceeded):
		b.log.WarnContext(ctx, "request failed: server unreachable", slog.String("op", op.name), slog.Any("err", err))
		return stanza.RemoteServerTimeout, msgUnavailable
	default:
		b.log.ErrorContext(ctx, "request failed", slog.String("op", op.name), slog.String("actor", actor), slog.Any("err", err))
		return stanza.InternalServerError, msgInternal
	}
}
