package bot

import (
	"context"
	"encoding/xml"
	"log/slog"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/policy"
)

// Namespaces the component answers on its own JID.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsPing       = "urn:xmpp:ping"
	nsCommands   = "http://jabber.org/protocol/commands"
	nsStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// identityName is what clients show for the component in service
// discovery.
const identityName = "Invite bot"

type discoIdentity struct {
	Category string `xml:"category,attr"`
	Type     string `xml:"type,attr"`
	Name     string `xml:"name,attr,omitempty"`
}

type discoFeature struct {
	Var string `xml:"var,attr"`
}

type discoInfoQuery struct {
	XMLName    xml.Name        `xml:"http://jabber.org/protocol/disco#info query"`
	Node       string          `xml:"node,attr,omitempty"`
	Identities []discoIdentity `xml:"identity"`
	Features   []discoFeature  `xml:"feature"`
}

type discoItem struct {
	JID  string `xml:"jid,attr"`
	Node string `xml:"node,attr,omitempty"`
	Name string `xml:"name,attr,omitempty"`
}

type discoItemsQuery struct {
	XMLName xml.Name    `xml:"http://jabber.org/protocol/disco#items query"`
	Node    string      `xml:"node,attr,omitempty"`
	Items   []discoItem `xml:"item"`
}

// features lists what the component supports, for disco#info.
var features = []string{nsDiscoInfo, nsDiscoItems, nsPing, nsCommands, dataform.NS}

// iqReply is an IQ answer with an optional payload.
type iqReply struct {
	XMLName xml.Name      `xml:"iq"`
	ID      string        `xml:"id,attr"`
	To      string        `xml:"to,attr"`
	From    string        `xml:"from,attr"`
	Type    stanza.IQType `xml:"type,attr"`
	Payload any
	Error   *stanzaError
}

// stanzaError is an RFC 6120 stanza error with an optional
// application-specific condition (XEP-0050 defines several). mellium's
// stanza.Error cannot carry the latter.
type stanzaError struct {
	XMLName xml.Name `xml:"error"`
	Type    string   `xml:"type,attr"`
	// Cond and App take their element names from their XMLName values.
	Cond element
	App  *element
	Text *errorText `xml:"urn:ietf:params:xml:ns:xmpp-stanzas text,omitempty"`
}

// element is an empty element whose name is chosen at run time.
type element struct {
	XMLName xml.Name
}

type errorText struct {
	// Lang is "en": the bot speaks English. nbxmpp (Gajim) looks for the
	// text in the client's language, then in "en".
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Text string `xml:",chardata"`
}

// newError builds a stanza error; app is an optional XEP-0050 condition
// (e.g. "bad-sessionid"), text an optional human-readable explanation.
func newError(typ string, cond stanza.Condition, app, text string) *stanzaError {
	e := &stanzaError{Type: typ, Cond: element{xml.Name{Space: nsStanzas, Local: string(cond)}}}
	if app != "" {
		e.App = &element{xml.Name{Space: nsCommands, Local: app}}
	}
	if text != "" {
		e.Text = &errorText{Lang: "en", Text: text}
	}
	return e
}

// iqRequest is an IQ get or set with its payload's name and node, decoded
// in the read loop so that a worker can answer it later.
type iqRequest struct {
	iq      stanza.IQ
	payload xml.Name
	node    string
	command commandIn // when payload is an XEP-0050 command
}

func (r iqRequest) reply() iqReply {
	return iqReply{ID: r.iq.ID, To: r.iq.From.String(), From: r.iq.To.String(), Type: stanza.ResultIQ}
}

func (r *iqReply) fail(e *stanzaError) {
	r.Type = stanza.ErrorIQ
	r.Payload = nil
	r.Error = e
}

var (
	namePing       = xml.Name{Space: nsPing, Local: "ping"}
	nameDiscoInfo  = xml.Name{Space: nsDiscoInfo, Local: "query"}
	nameDiscoItems = xml.Name{Space: nsDiscoItems, Local: "query"}
	nameCommand    = xml.Name{Space: nsCommands, Local: "command"}
)

// handleIQ answers IQs addressed to the component. Those that need no
// database (ping, the component's own disco#info) are answered in the read
// loop; the rest go to a worker.
func (b *Bot) handleIQ(t xmlstream.TokenReadEncoder, start *xml.StartElement) {
	iq, err := stanza.NewIQ(*start)
	if err != nil {
		return
	}
	// Results and errors answer IQs we sent; mellium matches those before
	// the handler. Stray ones must never be answered, or two entities can
	// bounce errors at each other forever.
	if iq.Type != stanza.GetIQ && iq.Type != stanza.SetIQ {
		return
	}
	req := iqRequest{iq: iq}
	child, ok := firstChild(t)
	if ok {
		req.payload = child.Name
		req.node = attr(child, "node")
	}
	reply := req.reply()
	switch {
	case !ok:
		reply.fail(newError("modify", stanza.BadRequest, "", "empty IQ"))
	case iq.Type == stanza.GetIQ && req.payload == namePing:
	case iq.Type == stanza.GetIQ && req.payload == nameDiscoInfo && req.node == "":
		q := discoInfoQuery{Identities: []discoIdentity{{Category: "component", Type: "generic", Name: identityName}}}
		for _, f := range features {
			q.Features = append(q.Features, discoFeature{Var: f})
		}
		reply.Payload = q
	case iq.Type == stanza.GetIQ && req.payload == nameDiscoItems && req.node == "":
		reply.Payload = discoItemsQuery{}
	case iq.Type == stanza.GetIQ && (req.payload == nameDiscoInfo || req.payload == nameDiscoItems):
		b.dispatchIQ(t, req)
		return
	case iq.Type == stanza.SetIQ && isReport(b.reports, child):
		b.handleReport(t, req, child)
		return
	case iq.Type == stanza.SetIQ && req.payload == nameCommand:
		d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(child), t))
		if err := d.Decode(&req.command); err != nil {
			reply.fail(newError("modify", stanza.BadRequest, "", "undecodable command"))
			break
		}
		b.dispatchIQ(t, req)
		return
	default:
		reply.fail(newError("cancel", stanza.ServiceUnavailable, "", ""))
	}
	b.encodeInline(t, reply)
}

func (b *Bot) encodeInline(t xmlstream.TokenReadEncoder, v any) {
	if err := t.Encode(v); err != nil {
		b.log.Warn("iq reply not sent", slog.Any("err", err))
	}
}

// dispatchIQ answers req in a worker, or at once with an error when the
// bot is shutting down or busy.
func (b *Bot) dispatchIQ(t xmlstream.TokenReadEncoder, req iqRequest) {
	fail := func(ctx context.Context, e *stanzaError) {
		reply := req.reply()
		reply.fail(e)
		b.send(ctx, reply)
	}
	ok := b.spawnOr(req.iq.From.Bare().String(), func(ctx context.Context) {
		// Every IQ gets an answer, even when serving it panics; the
		// panic goes on to the worker's recover to be logged.
		defer func() {
			if r := recover(); r != nil {
				fail(context.WithoutCancel(ctx), newError("cancel", stanza.InternalServerError, "", ""))
				panic(r)
			}
		}()
		reply := b.answerIQ(ctx, req)
		b.send(ctx, reply)
	}, func(ctx context.Context) {
		fail(ctx, newError("wait", stanza.ResourceConstraint, "", "busy, try again"))
	})
	if !ok {
		reply := req.reply()
		reply.fail(newError("wait", stanza.ResourceConstraint, "", "busy, try again"))
		b.encodeInline(t, reply)
	}
}

// answerIQ serves the IQs that depend on who is asking.
func (b *Bot) answerIQ(ctx context.Context, req iqRequest) iqReply {
	reply := req.reply()
	actor := req.iq.From.Bare().String()
	who, err := b.svc.Actor(ctx, actor)
	role := who.Role()
	if err != nil {
		b.log.Error("role lookup failed", slog.String("actor", actor), slog.Any("err", err))
		reply.fail(newError("cancel", stanza.InternalServerError, "", ""))
		return reply
	}
	switch req.payload {
	case nameDiscoInfo:
		b.commandNodeInfo(&reply, req.node, role)
	case nameDiscoItems:
		b.commandItems(&reply, req, role)
	case nameCommand:
		b.executeCommand(ctx, &reply, req, who)
	}
	return reply
}

// commandNodeInfo answers disco#info on a command node.
func (b *Bot) commandNodeInfo(reply *iqReply, node string, role policy.Role) {
	if node == nsCommands {
		reply.Payload = discoInfoQuery{Node: node,
			Identities: []discoIdentity{{Category: "automation", Type: "command-list", Name: "Commands"}},
			Features:   []discoFeature{{Var: nsCommands}}}
		return
	}
	op, ok := b.nodes[node]
	switch {
	case !ok:
		reply.fail(newError("cancel", stanza.ItemNotFound, "", ""))
	case !policy.Allows(role, op.perm):
		reply.fail(newError("auth", stanza.Forbidden, "", ""))
	case !op.available(b):
		reply.fail(newError("cancel", stanza.ItemNotFound, "", ""))
	default:
		reply.Payload = discoInfoQuery{Node: node,
			Identities: []discoIdentity{{Category: "automation", Type: "command-node", Name: op.title}},
			Features:   []discoFeature{{Var: nsCommands}, {Var: dataform.NS}}}
	}
}

// commandItems lists the commands the requester may run (XEP-0050 §2.2).
func (b *Bot) commandItems(reply *iqReply, req iqRequest, role policy.Role) {
	if req.node != nsCommands {
		reply.fail(newError("cancel", stanza.ItemNotFound, "", ""))
		return
	}
	q := discoItemsQuery{Node: nsCommands}
	self := req.iq.To
	if self.Equal(jid.JID{}) {
		self = b.component
	}
	for _, op := range operations() {
		if op.node != "" && policy.Allows(role, op.perm) && op.available(b) {
			q.Items = append(q.Items, discoItem{JID: self.String(), Node: op.node, Name: op.title})
		}
	}
	reply.Payload = q
}

// firstChild reads up to the IQ's payload element.
func firstChild(t xml.TokenReader) (xml.StartElement, bool) {
	for {
		tok, err := t.Token()
		if err != nil {
			return xml.StartElement{}, false
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			return tok, true
		case xml.EndElement:
			return xml.StartElement{}, false
		}
	}
}

func attr(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// presenceStanza is a presence the bot sends.
type presenceStanza struct {
	XMLName xml.Name            `xml:"presence"`
	To      string              `xml:"to,attr"`
	From    string              `xml:"from,attr"`
	Type    stanza.PresenceType `xml:"type,attr,omitempty"`
}

// handlePresence approves subscription requests and answers probes, so
// people who add the bot to their contacts see it online. It holds no
// roster: every subscription is approved, which reveals nothing.
func (b *Bot) handlePresence(t xmlstream.TokenReadEncoder, start *xml.StartElement) {
	p, err := stanza.NewPresence(*start)
	if err != nil || p.From.Equal(p.To) {
		return
	}
	from := b.replyFrom(p.To)
	to := p.From.Bare().String()
	var out []presenceStanza
	switch p.Type {
	case stanza.SubscribePresence:
		out = []presenceStanza{{To: to, From: from, Type: stanza.SubscribedPresence}, {To: to, From: from}}
	case stanza.ProbePresence:
		out = []presenceStanza{{To: to, From: from}}
	}
	for _, s := range out {
		if err := t.Encode(s); err != nil {
			b.log.Warn("presence not sent", slog.Any("err", err))
			return
		}
	}
}
