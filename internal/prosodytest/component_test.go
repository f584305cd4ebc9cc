package prosodytest_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"regexp"
	"testing"
	"time"

	"durare.org/invitebot/internal/prosodytest"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// connectComponent attaches to srv's component port as srv.Component.
func connectComponent(t *testing.T, srv *prosodytest.Server, secret string) (*xmpp.Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", srv.ComponentAddr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := component.NewSession(ctx, jid.MustParse(srv.Component), []byte(secret), conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	go s.Serve(nil)
	t.Cleanup(func() {
		s.Close()
		conn.Close()
	})
	return s, nil
}

// createAccountInvite runs Prosody's XEP-0401 create-account command as the
// component and returns the raw response payload.
func createAccountInvite(t *testing.T, srv *prosodytest.Server, s *xmpp.Session) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: "http://jabber.org/protocol/commands", Local: "command"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "node"}, Value: "urn:xmpp:invite#create-account"},
			{Name: xml.Name{Local: "action"}, Value: "execute"},
		},
	})
	// Components must set from themselves.
	iq := stanza.IQ{Type: stanza.SetIQ, To: jid.MustParse(srv.Domain), From: jid.MustParse(srv.Component)}
	resp, err := s.SendIQElement(ctx, cmd, iq)
	if err != nil {
		return "", err
	}
	defer resp.Close()
	tok, err := resp.Token()
	if err != nil {
		return "", err
	}
	start := tok.(xml.StartElement)
	if _, err := stanza.UnmarshalIQError(resp, start); err != nil {
		return "", err
	}
	var text []byte
	for {
		tok, err := resp.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if cd, ok := tok.(xml.CharData); ok {
			text = append(text, cd...)
			text = append(text, ' ')
		}
	}
	return string(text), nil
}

var uriRE = regexp.MustCompile(`xmpp:durare\.test\?register;preauth=\S+`)

func TestComponentIsAdmin(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithComponentSecret("s3cret"))
	if srv.ComponentSecret != "s3cret" {
		t.Fatalf("ComponentSecret = %q", srv.ComponentSecret)
	}
	if _, err := connectComponent(t, srv, "wrong"); err == nil {
		t.Fatal("component link with a wrong secret succeeded")
	}
	s, err := connectComponent(t, srv, srv.ComponentSecret)
	if err != nil {
		t.Fatal(err)
	}
	text, err := createAccountInvite(t, srv, s)
	if err != nil {
		t.Fatalf("create-account as admin component: %v", err)
	}
	if !uriRE.MatchString(text) {
		t.Fatalf("no invite URI in response text %q", text)
	}
}

func TestWithoutComponentAdmin(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithoutComponentAdmin())
	s, err := connectComponent(t, srv, srv.ComponentSecret)
	if err != nil {
		t.Fatal(err)
	}
	_, err = createAccountInvite(t, srv, s)
	if !errors.Is(err, stanza.Error{Condition: stanza.Forbidden}) {
		t.Fatalf("create-account as non-admin component = %v, want forbidden", err)
	}
}
