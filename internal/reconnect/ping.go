package reconnect

import (
	"context"
	"encoding/xml"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"
)

// IQSender sends an IQ and waits for its answer: the component link and
// the minter's session both do.
type IQSender interface {
	SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error)
}

// Ping sends an XEP-0199 ping as iq (its type set to get) through s and
// waits at most timeout for the answer. Any answer counts, an error too:
// it proves the session carries stanzas both ways.
func Ping(ctx context.Context, s IQSender, iq stanza.IQ, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	iq.Type = stanza.GetIQ
	payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:ping", Local: "ping"}})
	resp, err := s.SendIQElement(ctx, payload, iq)
	if err != nil {
		return err
	}
	return resp.Close()
}
