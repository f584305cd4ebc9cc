package bot

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// Tunables for serving requests.
const (
	// maxBodyBytes is the largest chat body the bot reads as a command.
	maxBodyBytes = 4 << 10
	// maxWorkers bounds requests in flight: each may wait on the server
	// (minting) and the database, and must not run in the read loop.
	maxWorkers = 32
	// maxQueued bounds requests accepted but waiting for a worker. A burst
	// waits its turn; past this, requests are dropped rather than piling
	// up goroutines. Admins' requests are not counted against it.
	maxQueued = 512
	// maxPerSender bounds one bare JID's requests queued or running, so
	// that one sender's flood cannot fill the queue: a burst of dozens
	// (an inviter minting for a workshop) still waits its turn.
	maxPerSender = 64
	// maxRunningPerSender bounds one bare JID's requests holding workers
	// at once, so that its burst cannot keep others waiting for a worker.
	maxRunningPerSender = 4
	// adminWorkers are worker slots only admins' requests may take: an
	// admin must always be able to revoke whoever floods the bot.
	adminWorkers = 4
	// dropLogInterval is how often a sender's dropped requests are logged.
	dropLogInterval = time.Minute
	// requestTimeout bounds one request from parsing to reply.
	requestTimeout = 30 * time.Second
	// abortGrace is how long Drain waits for cancelled requests to return.
	abortGrace = 2 * time.Second
	// fallbackTimeout bounds sending the error that answers a request
	// which could not be served.
	fallbackTimeout = 5 * time.Second
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
	observer   CommandObserver
	ops        map[string]operation // by chat command word
	nodes      map[string]operation // by XEP-0050 node

	sessions *sessionTable

	slots      chan struct{}
	adminSlots chan struct{}
	queued     chan struct{}
	inflight   sync.WaitGroup
	// perSender holds each bare JID's requests queued or running: their
	// count, and the slots that bound how many run at once. Guarded by
	// gate.
	perSender map[string]*senderShare
	dropLog   *replyLimiter
	// gate orders spawn's Add against Drain's Wait: a WaitGroup must not
	// grow from zero while someone waits on it.
	gate    sync.Mutex
	closing bool
	// baseCtx ends only when the bot is forced down; requests derive from
	// it so a graceful drain lets them finish.
	baseCtx context.Context
	abort   context.CancelFunc

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
	ctx, cancel := context.WithCancel(context.Background())
	return &Bot{
		svc:         cfg.Service,
		reports:     cfg.Reports,
		component:   cfg.Component,
		log:         cfg.Log,
		now:         now,
		out:         cfg.Out,
		links:       cfg.Links,
		eventLinks:  cfg.EventLinks,
		observer:    cfg.Observer,
		ops:         ops,
		nodes:       nodes,
		sessions:    newSessionTable(now),
		slots:       make(chan struct{}, maxWorkers),
		adminSlots:  make(chan struct{}, adminWorkers),
		queued:      make(chan struct{}, maxQueued),
		perSender:   make(map[string]*senderShare),
		dropLog:     newReplyLimiter(dropLogInterval, now),
		baseCtx:     ctx,
		abort:       cancel,
		refusals:    newReplyLimiter(policy.RefusalInterval, now),
		helpReplies: newReplyLimiter(helpInterval, now),
		strangerLog: newAuditBudget(now),
	}
}

// Drain stops taking new commands and waits until the ones in flight have
// answered, or ctx ends (then they are cancelled).
func (b *Bot) Drain(ctx context.Context) error {
	b.gate.Lock()
	b.closing = true
	b.gate.Unlock()
	done := make(chan struct{})
	go func() {
		b.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	// Cancel what is left and give it a moment to notice, so that nothing
	// still writes when the database closes after this.
	b.abort()
	select {
	case <-done:
	case <-time.After(abortGrace):
		b.log.Error("requests still running after cancellation")
	}
	return fmt.Errorf("drain: %w", ctx.Err())
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

// inboundMessage is the part of a message the bot reads.
type inboundMessage struct {
	stanza.Message
	Body []string `xml:"body"`
}

// outboundMessage is a message the bot sends.
type outboundMessage struct {
	XMLName xml.Name           `xml:"message"`
	To      string             `xml:"to,attr"`
	From    string             `xml:"from,attr"`
	Type    stanza.MessageType `xml:"type,attr,omitempty"`
	Body    string             `xml:"body"`
	OOB     *oobData           `xml:"jabber:x:oob x,omitempty"`
	// Unstyled asks clients to show the body as it is, without message
	// styling (XEP-0393 §6): set on messages that repeat a stranger's
	// words, whose *stars* and _underscores_ must not become markup.
	Unstyled *struct{} `xml:"urn:xmpp:styling:0 unstyled,omitempty"`
}

// unstyled is the value of outboundMessage.Unstyled for plain replies.
func unstyled(plain bool) *struct{} {
	if plain {
		return &struct{}{}
	}
	return nil
}

// oobData is XEP-0066 out-of-band data: clients show an image URL carried
// this way inline, when the body is the same URL.
type oobData struct {
	URL string `xml:"url"`
}

func (b *Bot) handleMessage(t xmlstream.TokenReadEncoder, start *xml.StartElement) {
	var m inboundMessage
	// The decoder must see the start element itself, or it rejects the
	// matching end element.
	d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t))
	if err := d.Decode(&m); err != nil {
		b.log.Debug("undecodable message", slog.Any("err", err))
		return
	}
	// Only person-to-bot chat is a command: answering error, groupchat or
	// headline messages invites loops with other bots and rooms.
	switch m.Type {
	case stanza.ChatMessage, stanza.NormalMessage, "":
	default:
		return
	}
	if len(m.Body) == 0 || m.From.Equal(jid.JID{}) {
		return // chat states, receipts and the like
	}
	from, to, typ, body := m.From, m.To, m.Type, m.Body[0]
	ok := b.spawn(from.Bare().String(), func(ctx context.Context) {
		res, ok := b.serveChat(ctx, from.Bare().String(), body)
		if !ok {
			return
		}
		b.send(ctx, outboundMessage{To: from.String(), From: b.replyFrom(to), Type: typ, Body: res.text, Unstyled: unstyled(res.plain)})
		if res.image != "" {
			b.send(ctx, outboundMessage{To: from.String(), From: b.replyFrom(to), Type: typ, Body: res.image,
				OOB: &oobData{URL: res.image}})
		}
	})
	if !ok && b.dropLog.allow(from.Bare().String()) {
		b.log.Warn("messages dropped: shutting down, busy, or this sender has too many requests in flight",
			slog.String("from", from.Bare().String()))
	}
}

// spawn queues work from sender (a bare JID) for a worker goroutine unless
// the bot is shutting down, the queue is full, or sender already has
// maxPerSender requests in flight; then it returns false at once: the read
// loop must never wait.
func (b *Bot) spawn(sender string, work func(ctx context.Context)) bool {
	return b.spawnOr(sender, work, nil)
}

// spawnOr is spawn with a fallback, run instead of work when the request
// timed out waiting for a worker (an IQ must still be answered).
func (b *Bot) spawnOr(sender string, work, timedOut func(ctx context.Context)) bool {
	// An in-memory look-up of the configuration: cheap enough for the
	// read loop, unlike a grant, which needs the database.
	return b.spawnAs(sender, b.svc.IsAdmin(sender), work, timedOut)
}

// spawnAs is spawnOr for a sender whose privilege is known: privileged
// senders (admins, the server's usage reports) bypass the shared queue and
// may take the worker slots kept for admins.
func (b *Bot) spawnAs(sender string, admin bool, work, timedOut func(ctx context.Context)) bool {
	share := b.admit(sender, admin)
	if share == nil {
		return false
	}
	go func() {
		defer func() {
			b.release(sender, admin)
			if r := recover(); r != nil {
				b.log.Error("panic in worker", slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			}
		}()
		ctx, cancel := context.WithTimeout(b.baseCtx, requestTimeout)
		defer cancel()
		release, ok := b.acquireWorker(ctx, share, admin)
		if !ok {
			b.log.Warn("request timed out waiting for a worker")
			if timedOut != nil {
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fallbackTimeout)
				defer cancel()
				timedOut(fctx)
			}
			return
		}
		defer release()
		work(ctx)
	}()
	return true
}

// senderShare is one sender's part of the queue and the workers.
type senderShare struct {
	queued  int
	running chan struct{} // capacity maxRunningPerSender
}

// admit takes a place in the queue for one request of sender, or returns
// nil. Admins are bounded only by their own share: the shared queue may be
// full of others.
func (b *Bot) admit(sender string, admin bool) *senderShare {
	b.gate.Lock()
	defer b.gate.Unlock()
	share := b.perSender[sender]
	if b.closing || (share != nil && share.queued >= maxPerSender) {
		return nil
	}
	if !admin {
		select {
		case b.queued <- struct{}{}:
		default:
			return nil
		}
	}
	if share == nil {
		share = &senderShare{running: make(chan struct{}, maxRunningPerSender)}
		b.perSender[sender] = share
	}
	share.queued++
	b.inflight.Add(1)
	return share
}

// release gives back what admit took.
func (b *Bot) release(sender string, admin bool) {
	b.gate.Lock()
	if share := b.perSender[sender]; share != nil {
		if share.queued--; share.queued <= 0 {
			delete(b.perSender, sender)
		}
	}
	b.gate.Unlock()
	if !admin {
		<-b.queued
	}
	b.inflight.Done()
}

// acquireWorker waits for the sender's turn and a worker slot; admins may
// also take one of the slots kept for them. It returns the function that
// gives both back.
func (b *Bot) acquireWorker(ctx context.Context, share *senderShare, admin bool) (func(), bool) {
	select {
	case share.running <- struct{}{}:
	case <-ctx.Done():
		return nil, false
	}
	adminSlots := b.adminSlots
	if !admin {
		adminSlots = nil // a nil channel never receives: others cannot take these
	}
	select {
	case b.slots <- struct{}{}:
		return func() { <-b.slots; <-share.running }, true
	case adminSlots <- struct{}{}:
		return func() { <-b.adminSlots; <-share.running }, true
	case <-ctx.Done():
		<-share.running
		return nil, false
	}
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

// serveChat runs one chat command for the bare JID actor and returns the
// reply, or false when the bot stays silent.
func (b *Bot) serveChat(ctx context.Context, actor, body string) (reply, bool) {
	who, err := b.svc.Actor(ctx, actor)
	role := who.Role()
	if err != nil {
		b.log.Error("role lookup failed", slog.String("actor", actor), slog.Any("err", err))
		// Whoever this is, they hear about it once per interval at most.
		if !b.refusals.allow(actor) {
			return reply{}, false
		}
		return reply{text: msgInternal}, true
	}
	// Strangers get each kind of "no" at most once per interval, so the bot
	// cannot be used to reflect traffic.
	refuse := func(text, why string) (reply, bool) {
		if role != policy.Stranger {
			return reply{text: text}, true
		}
		if !b.refusals.allow(actor) {
			return reply{}, false
		}
		if b.strangerLog.allow(ctx, b.svc) {
			b.svc.RecordRefusal(ctx, actor, why)
		}
		// Said once, so that silence afterwards is not a mystery.
		return reply{text: text + " " + msgStrangerQuiet}, true
	}

	if len(body) > maxBodyBytes {
		return refuse(fmt.Sprintf("Too long: a command is at most %d bytes.", maxBodyBytes), "message too long")
	}
	name, rest := splitCommand(body)
	op, ok := b.ops[name]
	if !ok {
		if name == "" {
			return reply{}, false
		}
		text := fmt.Sprintf("Unknown command %q.", truncate(name, 32))
		if guess := b.closestCommand(name, role); guess != "" {
			text += fmt.Sprintf(" Did you mean %s?", guess)
		}
		return refuse(text+" Send help to see what you can do.", "unknown command")
	}
	if op.perm == policy.ReadHelp && role == policy.Stranger && !b.helpReplies.allow(actor) {
		return reply{}, false
	}
	if !policy.Allows(role, op.perm) {
		return refuse("Sorry, you may not use "+op.name+" here. Send help to see what you can do.",
			"no rights for "+op.name)
	}
	if !op.available(b) {
		return reply{text: op.unavailable}, true
	}
	args, err := bindArgs(op, role, rest)
	if err != nil {
		return reply{text: fmt.Sprintf("%s\nUsage: %s", sentence(err.Error()), op.usage(role))}, true
	}
	b.countCommand(op)
	res, err := op.run(ctx, b, request{actor: who, args: args})
	if err != nil {
		return reply{text: b.userMessage(ctx, op, who, err)}, true
	}
	return res, true
}

// maxTypoDistance is how many edits a typo may be from a command for the
// bot to suggest it.
const maxTypoDistance = 2

// closestCommand suggests the command role may use that name is a typo
// of, or "".
func (b *Bot) closestCommand(name string, role policy.Role) string {
	best, bestDist := "", maxTypoDistance+1
	for _, op := range operations() {
		if !policy.Allows(role, op.perm) {
			continue
		}
		if !op.available(b) {
			continue
		}
		if d := editDistance(name, op.name); d < bestDist {
			best, bestDist = op.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between two short words.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur := make([]int, len(rb)+1)
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(rb)]
}

// countCommand tells the observer a permitted command runs.
func (b *Bot) countCommand(op operation) {
	if b.observer != nil {
		b.observer.Command(op.name)
	}
}

// splitCommand separates the command word, case-folded, from its
// arguments.
func splitCommand(body string) (name, rest string) {
	body = strings.TrimSpace(body)
	name, rest, _ = strings.Cut(body, " ")
	if i := strings.IndexAny(name, "\t\r\n"); i >= 0 {
		name, rest = body[:i], body[i:]
	}
	return strings.ToLower(name), strings.TrimSpace(rest)
}

// bindArgs maps the words after the command onto the parameters role may
// set: keyword parameters ("per-day 3") anywhere, the others in order. A
// trailing text parameter takes the rest of the line; an optional
// parameter that cannot take a word leaves it to the next one ("audit 50").
func bindArgs(op operation, role policy.Role, rest string) (map[string]string, error) {
	args := make(map[string]string)
	words := strings.Fields(rest)
	var positional []param
	for _, p := range op.params {
		if !p.visible(role) {
			continue
		}
		if p.keyword == "" {
			positional = append(positional, p)
			continue
		}
		for i := 0; i < len(words); i++ {
			if !strings.EqualFold(words[i], p.keyword) {
				continue
			}
			if i+1 == len(words) {
				return nil, fmt.Errorf("%s needs a value", p.keyword)
			}
			v, err := parseParam(p, words[i+1])
			if err != nil {
				return nil, err
			}
			args[p.name] = v
			words = append(words[:i:i], words[i+2:]...)
			break
		}
	}
	next := 0
	for i, p := range positional {
		if next >= len(words) {
			if p.required {
				return nil, fmt.Errorf("missing %s", p.name)
			}
			continue
		}
		raw := words[next]
		last := i == len(positional)-1
		if p.kind == kindText && last {
			raw = strings.Join(words[next:], " ")
		}
		v, err := parseParam(p, raw)
		if err != nil {
			if !p.required && !last {
				continue
			}
			return nil, err
		}
		args[p.name] = v
		next++
		if p.kind == kindText && last {
			next = len(words)
		}
	}
	if next < len(words) {
		if len(positional) == 0 && len(args) == 0 {
			return nil, fmt.Errorf("%s takes no arguments: send just %s", op.name, op.name)
		}
		return nil, errors.New("too many arguments")
	}
	return args, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
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
func (b *Bot) userMessage(ctx context.Context, op operation, who invites.Actor, err error) string {
	actor := who.JID()
	switch {
	case errors.Is(err, invites.ErrForbidden):
		return "Sorry, you may not use " + op.name + " here."
	case errors.Is(err, invites.ErrNoSuchInvite) && policy.Allows(who.Role(), policy.CancelAnyInvite):
		return "No such invite. Check the id in audit or invites <jid>."
	case errors.Is(err, invites.ErrNoSuchInvite):
		return "No such invite among yours. Send invites to list them."
	case errors.As(err, new(*invites.PausedError)):
		var pe *invites.PausedError
		errors.As(err, &pe)
		return "Invites are paused: " + pauseReason(pe.Reason)
	case errors.As(err, new(*invites.QuotaError)):
		var qe *invites.QuotaError
		errors.As(err, &qe)
		return "No invite: " + quotaText(qe.Refusal) + "."
	case errors.Is(err, invites.ErrIssuerForbidden):
		b.logIssuerRefused(ctx, err)
		return msgIssuerRefuse
	case errors.Is(err, invites.ErrIssuerUnsupported):
		b.log.ErrorContext(ctx, "the server has no invite command: enable the invites and invites_adhoc modules on the domain",
			slog.String("domain", b.svc.Domain()), slog.Any("err", err))
		return msgIssuerRefuse
	case errors.Is(err, ErrLinkDown), errors.Is(err, invites.ErrServerUnreachable), errors.Is(err, context.DeadlineExceeded):
		b.log.WarnContext(ctx, "request failed: server unreachable", slog.String("op", op.name), slog.Any("err", err))
		return msgUnavailable
	default:
		b.log.ErrorContext(ctx, "request failed", slog.String("op", op.name), slog.String("actor", actor), slog.Any("err", err))
		return msgInternal
	}
}
