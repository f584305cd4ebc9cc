package adhoc

import (
	"durare.org/invitebot/invites"

	"encoding/xml"
	"strings"
	"testing"
)

// FuzzResultForm feeds the decoder and the parser of the server's
// create-account answer whatever a server (or something pretending to be
// one) might send. Whatever it is, parsing must not panic, a result must
// carry the token of its own URI, and an error must not quote the URI's
// token (errors end up in logs).
func FuzzResultForm(f *testing.F) {
	seeds := []string{
		// Prosody 0.12: type="form".
		`<command xmlns='http://jabber.org/protocol/commands' status='completed' sessionid='s'><x xmlns='jabber:x:data' type='form'><field var='uri'><value>xmpp:example.org?register;preauth=TOKEN1234</value></field><field var='landing-url'><value/></field><field var='expire'><value>2026-12-01T10:00:00Z</value></field></x></command>`,
		// Prosody 13: type="result".
		`<command xmlns='http://jabber.org/protocol/commands' status='completed'><x xmlns='jabber:x:data' type='result'><field var='uri'><value>xmpp:example.org?register;preauth=abc</value></field><field var='expiry'><value>2026-12-01T10:00:00+01:00</value></field></x></command>`,
		`<command xmlns='http://jabber.org/protocol/commands' status='completed'><x xmlns='jabber:x:data' type='result'><field var='uri'><value>xmpp:example.org?register;preauth=SECRETTOKEN</value></field><field var='expire'><value>not a time SECRETTOKEN</value></field></x></command>`,
		`<command xmlns='http://jabber.org/protocol/commands' status='completed'/>`,
		`<command xmlns='http://jabber.org/protocol/commands'><x xmlns='jabber:x:data'><field var='uri'/></x></command>`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var resp commandResponse
		if err := xml.Unmarshal([]byte(raw), &resp); err != nil {
			return
		}
		m, err := mintedFromForm(resp.Form)
		if err != nil {
			if resp.Form != nil {
				if u, perr := invites.ParseURI(resp.Form.Value("uri")); perr == nil && len(u.Token) >= 8 && strings.Contains(err.Error(), u.Token) {
					t.Fatalf("error quotes the token: %v", err)
				}
			}
			return
		}
		u, err := invites.ParseURI(m.URI)
		if err != nil || m.Token == "" || u.Token != m.Token {
			t.Fatalf("minted %+v from a URI that does not carry its token (%v)", m, err)
		}
	})
}
