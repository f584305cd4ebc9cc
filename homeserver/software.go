package homeserver

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

	"durare.org/invitebot/homeserver/adhoc"
)

// identifyTimeout bounds each of the two questions Identify asks: a server
// that does not answer a disco query within it is not one to wait for.
const identifyTimeout = 10 * time.Second

// Server programs Identify tells apart, by the lower-cased name they give.
const (
	Prosody  = "prosody"
	Ejabberd = "ejabberd"
)

// Software is the server program on the other end, as it names itself.
type Software struct {
	// Name is the program's name as the server gives it, e.g. "Prosody"
	// or "ejabberd".
	Name string
	// Version is the version it reports (XEP-0092), empty when the
	// server does not answer version queries (mod_version not loaded).
	Version string
}

// Kind is Prosody, Ejabberd, or the lower-cased name of another program.
func (s Software) Kind() string { return strings.ToLower(s.Name) }

// String is "Prosody 13.0.8", or the name alone without a version.
func (s Software) String() string {
	if s.Version == "" {
		return s.Name
	}
	return s.Name + " " + s.Version
}

// Identify asks server which program it runs: the name of its "server"
// identity (XEP-0030), which every server answers, and the XEP-0092
// version, which needs the server's version module. A server that gives
// no name is an error; a missing version is not.
func Identify(ctx context.Context, link adhoc.IQSender, from, server jid.JID) (Software, error) {
	var info struct {
		XMLName    xml.Name `xml:"http://jabber.org/protocol/disco#info query"`
		Identities []struct {
			Category string `xml:"category,attr"`
			Name     string `xml:"name,attr"`
		} `xml:"identity"`
	}
	if err := ask(ctx, link, from, server, xml.Name{Space: "http://jabber.org/protocol/disco#info", Local: "query"}, &info); err != nil {
		return Software{}, fmt.Errorf("identify the server: %w", err)
	}
	var sw Software
	for _, id := range info.Identities {
		if id.Category == "server" && id.Name != "" {
			sw.Name = id.Name
			break
		}
	}
	if sw.Name == "" {
		return Software{}, errors.New("identify the server: its disco#info names no server identity")
	}
	var version struct {
		XMLName xml.Name `xml:"jabber:iq:version query"`
		Name    string   `xml:"name"`
		Version string   `xml:"version"`
	}
	if err := ask(ctx, link, from, server, xml.Name{Space: "jabber:iq:version", Local: "query"}, &version); err == nil {
		sw.Version = strings.TrimSpace(version.Version)
	}
	return sw, nil
}

// ask sends an empty get query named name to server and decodes the answer
// into v.
func ask(ctx context.Context, link adhoc.IQSender, from, server jid.JID, name xml.Name, v any) error {
	ctx, cancel := context.WithTimeout(ctx, identifyTimeout)
	defer cancel()
	payload := xmlstream.Wrap(nil, xml.StartElement{Name: name})
	r, err := link.SendIQElement(ctx, payload, stanza.IQ{Type: stanza.GetIQ, To: server, From: from})
	if err != nil {
		return err
	}
	defer r.Close()
	tok, err := r.Token()
	if err != nil {
		return err
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return errors.New("reply is not an IQ")
	}
	if _, err := stanza.UnmarshalIQError(r, start); err != nil {
		return err
	}
	return xml.NewTokenDecoder(r).Decode(v)
}
