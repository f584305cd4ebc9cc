package bot

import (
	"encoding/xml"
	"log/slog"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"
)

// Namespaces the component answers on its own JID.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsPing       = "urn:xmpp:ping"
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

type discoItemsQuery struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
	Node    string   `xml:"node,attr,omitempty"`
}

// features lists what the component supports, for disco#info.
var features = []string{nsDiscoInfo, nsDiscoItems, nsPing}

// iqReply is an IQ answer with an optional payload.
type iqReply struct {
	XMLName xml.Name      `xml:"iq"`
	ID      string        `xml:"id,attr"`
	To      string        `xml:"to,attr"`
	From    string        `xml:"from,attr"`
	Type    stanza.IQType `xml:"type,attr"`
	Payload any
	Error   *stanza.Error
}

// handleIQ answers the IQs served on the component itself. Everything here
// is quick and touches no database, so it runs in the read loop.
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
	child, ok := firstChild(t)
	reply := iqReply{ID: iq.ID, To: iq.From.String(), From: iq.To.String(), Type: stanza.ResultIQ}
	switch {
	case !ok:
		reply.fail(stanza.BadRequest)
	case iq.Type == stanza.GetIQ && child.Name == xml.Name{Space: nsPing, Local: "ping"}:
	case iq.Type == stanza.GetIQ && child.Name == xml.Name{Space: nsDiscoInfo, Local: "query"}:
		node := attr(child, "node")
		if node != "" {
			reply.fail(stanza.ItemNotFound)
			break
		}
		q := discoInfoQuery{Identities: []discoIdentity{{Category: "component", Type: "generic", Name: identityName}}}
		for _, f := range features {
			q.Features = append(q.Features, discoFeature{Var: f})
		}
		reply.Payload = q
	case iq.Type == stanza.GetIQ && child.Name == xml.Name{Space: nsDiscoItems, Local: "query"}:
		if node := attr(child, "node"); node != "" {
			reply.fail(stanza.ItemNotFound)
			break
		}
		reply.Payload = discoItemsQuery{}
	default:
		reply.fail(stanza.ServiceUnavailable)
	}
	if err := t.Encode(reply); err != nil {
		b.log.Warn("iq reply not sent", slog.Any("err", err))
	}
}

func (r *iqReply) fail(cond stanza.Condition) {
	r.Type = stanza.ErrorIQ
	typ := stanza.Cancel
	if cond == stanza.BadRequest {
		typ = stanza.Modify
	}
	r.Error = &stanza.Error{Type: typ, Condition: cond}
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
