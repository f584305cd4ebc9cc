// Package adhoc runs a server's XEP-0050 ad-hoc commands as a client: the
// XEP-0401 create-account command that mints invites, any command that
// answers with an invitation form (Prosody's password reset), and the
// discovery of which commands the server offers. It is the shared part of
// every server the bot mints on; what is particular to one server lives in
// that server's package.
package adhoc

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
)

// IQSender sends an IQ and waits for its answer. *xmpp.Session has this
// method; the bot's component link provides it across reconnects, and so
// does the minter account's session.
type IQSender interface {
	SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error)
}

// Tunables for talking to the server.
const (
	// issuerTimeout bounds one mint, all command stages included. It is
	// longer than the bot's own bound on a request (30 s): a server busy
	// for 20 s still answers, and the token it minted is then recorded,
	// and revoked if nobody waits for it any more, instead of being left
	// valid at the server with nobody knowing it.
	issuerTimeout = 45 * time.Second
	// maxCommandStages stops a server that keeps asking for more stages.
	maxCommandStages = 3
)

// Issuer mints invites by running the server's XEP-0401 ad-hoc command
// urn:xmpp:invite#create-account, either over the component link (the
// server must list the component's JID among the domain's admins) or over
// a minter account's c2s session (the account needs a role that allows
// the command).
type Issuer struct {
	// Server is the domain the accounts are created on (the command's JID).
	Server jid.JID
	// From is who runs the command: the component's JID, or the minter
	// account's bare JID. A component's stanzas carry no from of their
	// own, and the server checks it against the admins list; on a c2s
	// session the server stamps the session's own JID, so that Link drops
	// it. Refusals name From, so the log can say what to grant to whom.
	From jid.JID
	// Link carries the IQs.
	Link IQSender
}

// Mint runs the command, completing any stage the server presents with its
// defaults, and reads the XEP-0401 result form.
func (a Issuer) Mint(ctx context.Context) (invites.Minted, error) {
	// A server that wants options (ejabberd, later Prosody versions) gets
	// its own defaults back: the bot has no options to give.
	return a.Run(ctx, invites.NodeCreateAccount, func(*dataform.Form) {})
}

// Run executes the command node, has fill complete each stage's form (the
// server's defaults already in it), and reads the XEP-0401 result form.
func (a Issuer) Run(ctx context.Context, node string, fill func(*dataform.Form)) (invites.Minted, error) {
	res, err := a.Complete(ctx, node, fill)
	if err != nil {
		return invites.Minted{}, err
	}
	return mintedFromForm(res.Form)
}

// Completed is what a command that completed answered: its result form
// (nil when it sent none) and its notes.
type Completed struct {
	Form  *dataform.Form
	Notes []Note
}

// Note is one note of a command's answer (XEP-0050): its type (info,
// warn, error) and text.
type Note struct {
	Type string
	Text string
}

// ErrorNote returns the text of the first error note, "" when there is
// none: a command that failed in its own terms completes with one.
func (c Completed) ErrorNote() string {
	for _, n := range c.Notes {
		if n.Type == "error" {
			return n.Text
		}
	}
	return ""
}

// Complete executes the command node, has fill complete each stage's form
// (the server's defaults already in it), and returns what the command
// answered when it completed. Refusals and errors are classified as Run's.
func (a Issuer) Complete(ctx context.Context, node string, fill func(*dataform.Form)) (Completed, error) {
	ctx, cancel := context.WithTimeout(ctx, issuerTimeout)
	defer cancel()

	req := commandRequest{Node: node, Action: "execute"}
	for stage := 0; stage < maxCommandStages; stage++ {
		resp, err := a.execute(ctx, req)
		if err != nil {
			return Completed{}, err
		}
		switch resp.Status {
		case "completed":
			res := Completed{Form: resp.Form}
			for _, n := range resp.Notes {
				res.Notes = append(res.Notes, Note{Type: n.Type, Text: strings.TrimSpace(n.Text)})
			}
			return res, nil
		case "executing":
			form := resp.Form.Submission()
			if form == nil {
				form = &dataform.Form{Type: dataform.TypeSubmit}
			}
			fill(form)
			req = commandRequest{Node: node, SessionID: resp.SessionID, Action: "complete", Form: form}
		default:
			return Completed{}, fmt.Errorf("run %s: command ended with status %q%s", node, resp.Status, resp.notes())
		}
	}
	return Completed{}, fmt.Errorf("run %s: server asked for more than %d stages", node, maxCommandStages)
}

func (a Issuer) execute(ctx context.Context, req commandRequest) (commandResponse, error) {
	payload, err := marshalTokens(req)
	if err != nil {
		return commandResponse{}, err
	}
	iq := stanza.IQ{Type: stanza.SetIQ, To: a.Server, From: a.From}
	r, err := a.Link.SendIQElement(ctx, payload, iq)
	if err != nil {
		return commandResponse{}, fmt.Errorf("mint invite: %w", err)
	}
	defer r.Close()

	tok, err := r.Token()
	if err != nil {
		return commandResponse{}, fmt.Errorf("mint invite: read reply: %w", err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return commandResponse{}, errors.New("mint invite: reply is not an IQ")
	}
	if _, err := stanza.UnmarshalIQError(r, start); err != nil {
		return commandResponse{}, classifyCommandError(err, req.Node, a.From)
	}
	var resp commandResponse
	if err := xml.NewTokenDecoder(r).Decode(&resp); err != nil {
		return commandResponse{}, fmt.Errorf("mint invite: decode command reply: %w", err)
	}
	return resp, nil
}

func classifyCommandError(err error, node string, as jid.JID) error {
	var se stanza.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("mint invite: %w", err)
	}
	switch se.Condition {
	case stanza.Forbidden, stanza.NotAuthorized, stanza.NotAllowed:
		return &invites.RefusedError{Node: node, As: as, Condition: string(se.Condition), Err: se}
	case stanza.ItemNotFound, stanza.ServiceUnavailable, stanza.FeatureNotImplemented:
		return fmt.Errorf("%w (%s): %w", invites.ErrIssuerUnsupported, se.Condition, se)
	default:
		return fmt.Errorf("mint invite: server error: %w", se)
	}
}

func mintedFromForm(f *dataform.Form) (invites.Minted, error) {
	if f == nil {
		return invites.Minted{}, errors.New("mint invite: completed without a result form")
	}
	m := invites.Minted{
		URI:        f.Value("uri"),
		LandingURL: f.Value("landing-url"),
	}
	if m.URI == "" {
		return invites.Minted{}, errors.New("mint invite: result form has no uri")
	}
	parsed, err := invites.ParseURI(m.URI)
	if err != nil {
		return invites.Minted{}, fmt.Errorf("mint invite: %w", err)
	}
	m.Token = parsed.Token
	// XEP-0401 0.5 says "expire", some servers and later drafts "expiry".
	expire := f.Value("expire")
	if expire == "" {
		expire = f.Value("expiry")
	}
	if expire != "" {
		m.Expires, err = time.Parse(time.RFC3339, expire)
		if err != nil {
			// Quote what the server sent, but never the token, whatever
			// field it turns up in: errors end up in logs.
			shown := strings.ReplaceAll(expire, m.Token, invites.RedactToken(m.Token))
			return invites.Minted{}, fmt.Errorf("mint invite: expire %q is not an RFC 3339 time", shown)
		}
		m.Expires = m.Expires.UTC()
	}
	return m, nil
}

// commandRequest is the XEP-0050 <command/> the bot sends.
type commandRequest struct {
	XMLName   xml.Name       `xml:"http://jabber.org/protocol/commands command"`
	Node      string         `xml:"node,attr"`
	Action    string         `xml:"action,attr,omitempty"`
	SessionID string         `xml:"sessionid,attr,omitempty"`
	Form      *dataform.Form `xml:"jabber:x:data x,omitempty"`
}

// commandResponse is the XEP-0050 <command/> a server answers with.
type commandResponse struct {
	XMLName   xml.Name       `xml:"http://jabber.org/protocol/commands command"`
	Status    string         `xml:"status,attr"`
	SessionID string         `xml:"sessionid,attr"`
	Notes     []note         `xml:"note"`
	Form      *dataform.Form `xml:"jabber:x:data x"`
}

type note struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

func (r commandResponse) notes() string {
	var b strings.Builder
	for _, n := range r.Notes {
		fmt.Fprintf(&b, " [%s: %s]", n.Type, strings.TrimSpace(n.Text))
	}
	return b.String()
}

// marshalTokens encodes v and returns it as a token stream for mellium.
func marshalTokens(v any) (xml.TokenReader, error) {
	raw, err := xml.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return stripXMLNS{xml.NewDecoder(strings.NewReader(string(raw)))}, nil
}

// stripXMLNS drops xmlns attributes from decoded tokens: the decoder already
// moved them into Name.Space, and encoding/xml would write them twice.
type stripXMLNS struct{ r xml.TokenReader }

func (s stripXMLNS) Token() (xml.Token, error) {
	tok, err := s.r.Token()
	start, ok := tok.(xml.StartElement)
	if !ok {
		return tok, err
	}
	attrs := start.Attr[:0:0]
	for _, a := range start.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		attrs = append(attrs, a)
	}
	start.Attr = attrs
	return start, err
}

// Commands lists the command nodes the server offers From on the domain
// (XEP-0050 discovery).
func (a Issuer) Commands(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, issuerTimeout)
	defer cancel()
	q := struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
		Node    string   `xml:"node,attr"`
	}{Node: "http://jabber.org/protocol/commands"}
	payload, err := marshalTokens(q)
	if err != nil {
		return nil, err
	}
	r, err := a.Link.SendIQElement(ctx, payload, stanza.IQ{Type: stanza.GetIQ, To: a.Server, From: a.From})
	if err != nil {
		return nil, fmt.Errorf("list server commands: %w", err)
	}
	defer r.Close()
	tok, err := r.Token()
	if err != nil {
		return nil, fmt.Errorf("list server commands: %w", err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return nil, errors.New("list server commands: reply is not an IQ")
	}
	if _, err := stanza.UnmarshalIQError(r, start); err != nil {
		return nil, fmt.Errorf("list server commands: %w", err)
	}
	var reply struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
		Items   []struct {
			Node string `xml:"node,attr"`
		} `xml:"item"`
	}
	if err := xml.NewTokenDecoder(r).Decode(&reply); err != nil {
		return nil, fmt.Errorf("list server commands: %w", err)
	}
	nodes := make([]string, 0, len(reply.Items))
	for _, it := range reply.Items {
		nodes = append(nodes, it.Node)
	}
	return nodes, nil
}
