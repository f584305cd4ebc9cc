package bot

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/policy"
)

// Chat: commands people type to the bot in a one-to-one conversation.

// maxBodyBytes is the largest chat body the bot reads as a command.
const maxBodyBytes = 4 << 10

// inboundMessage is the part of a message the bot reads.
type inboundMessage struct {
	stanza.Message
	Body   []string       `xml:"body"`
	Thread *messageThread `xml:"thread"`
}

// messageThread is a message's <thread/> (RFC 6121 §5.2.5). The bot copies
// the sender's into its replies, as the RFC asks of replies, so a client
// (or a benchmark) can tell which request a reply answers.
type messageThread struct {
	Parent string `xml:"parent,attr,omitempty"`
	ID     string `xml:",chardata"`
}

// maxThreadBytes bounds the thread id the bot copies back: ids are short
// (a UUID is 36 bytes), and a reply must not echo a stranger's megabyte.
const maxThreadBytes = 256

// replyThread returns the thread a reply to m carries, nil for none or one
// too long to copy.
func replyThread(m inboundMessage) *messageThread {
	t := m.Thread
	if t == nil || t.ID == "" || len(t.ID)+len(t.Parent) > maxThreadBytes {
		return nil
	}
	return &messageThread{Parent: t.Parent, ID: t.ID}
}

// outboundMessage is a message the bot sends.
type outboundMessage struct {
	XMLName xml.Name           `xml:"message"`
	To      string             `xml:"to,attr"`
	From    string             `xml:"from,attr"`
	Type    stanza.MessageType `xml:"type,attr,omitempty"`
	Body    string             `xml:"body"`
	Thread  *messageThread     `xml:"thread,omitempty"`
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
	head := outboundMessage{To: from.String(), From: b.replyFrom(to), Type: typ, Thread: replyThread(m)}
	run := func(ctx context.Context) {
		res, ok := b.serveChat(ctx, from.Bare().String(), body)
		if !ok {
			return
		}
		b.send(ctx, chatReply(head, res))
	}
	// A request that waited too long for a worker was not run: say so,
	// or the sender waits for a reply that never comes.
	timedOut := func(ctx context.Context) {
		m := head
		m.Body = msgBusyTimedOut
		b.send(ctx, m)
	}
	if !b.spawnOr(from.Bare().String(), run, timedOut) {
		b.chatDropped(from, head)
	}
}

// chatReply returns the messages that carry res to the sender of a chat
// command: the text, and after it the image as a message of its own whose
// body is the image's URL, because Conversations, Gajim and Monal show an
// XEP-0066 image inline only when the body is its URL. head holds the
// addressing.
//
// Both go out in one write, so the server reads them together and passes
// them on in one segment. Written apart, the server sends the image while
// the text is not yet acknowledged, and with Nagle on (Prosody's default)
// holds it until the client's delayed ACK, up to 40 ms; the reply to the
// person's next request then waits behind it (docs/PERFORMANCE.md).
func chatReply(head outboundMessage, res reply) []outboundMessage {
	text := head
	text.Body, text.Unstyled = res.text, unstyled(res.plain)
	if res.image == "" {
		return []outboundMessage{text}
	}
	image := head
	image.Body, image.OOB = res.image, &oobData{URL: res.image}
	return []outboundMessage{text, image}
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
	if op.perm == policy.KeepOwnMail && role == policy.Stranger && !strings.HasSuffix(actor, "@"+b.svc.Domain()) {
		// Open to every account of the domain, so a stranger from
		// elsewhere is refused like any stranger: once an hour.
		return refuse("Only accounts on "+b.svc.Domain()+" can keep a mail address here.", "no account for "+op.name)
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
	req := request{actor: who, args: args}
	res, err := op.run(ctx, b, req)
	if err != nil {
		return reply{text: b.userMessage(ctx, op, req, err)}, true
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
				return nil, &missingError{p: p}
			}
			continue
		}
		raw := words[next]
		last := i == len(positional)-1
		takesRest := last && p.spec().restOfLine
		if takesRest {
			raw = dropLabel(p, strings.Join(words[next:], " "))
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
		if takesRest {
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

// dropLabel drops the parameter's own name and a colon from the start of
// free text, in any case and with spaces around: people write "grant bob
// note: met at FOSDEM" or "pause reason: spam", and the label is not part
// of the note.
func dropLabel(p param, text string) string {
	head := strings.TrimLeft(text, " \t")
	if len(head) <= len(p.name) || !strings.EqualFold(head[:len(p.name)], p.name) {
		return text
	}
	if rest, ok := strings.CutPrefix(strings.TrimLeft(head[len(p.name):], " \t"), ":"); ok {
		return strings.TrimLeft(rest, " \t")
	}
	return text
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
