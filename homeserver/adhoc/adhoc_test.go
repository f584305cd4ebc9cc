package adhoc

import (
	"durare.org/invitebot/internal/dataform"

	"durare.org/invitebot/invites"

	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// scriptedServer answers each IQ with the next canned reply and records
// what was sent.
type scriptedServer struct {
	replies []string
	sent    []string
	iqs     []stanza.IQ
}

func (s *scriptedServer) SendIQElement(_ context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(enc, payload); err != nil {
		return nil, err
	}
	enc.Flush()
	s.sent = append(s.sent, buf.String())
	s.iqs = append(s.iqs, iq)
	if len(s.replies) == 0 {
		return nil, errors.New("no more replies")
	}
	r := s.replies[0]
	s.replies = s.replies[1:]
	return xmlstream.NopCloser(xml.NewDecoder(strings.NewReader(r))), nil
}

const prosodyResult = `<iq type='result' id='1' from='durare.test' to='invites.durare.test'>
<command xmlns='http://jabber.org/protocol/commands' node='urn:xmpp:invite#create-account' status='completed' sessionid='s1'>
<x xmlns='jabber:x:data' type='result'>
<field var='uri' label='Invite URI' type='text-single'><value>xmpp:durare.test?register;preauth=TOKEN123</value></field>
<field var='landing-url'><value/></field>
<field var='expire' type='text-single'><value>2026-12-01T19:00:00Z</value></field>
</x></command></iq>`

func TestIssuerMint(t *testing.T) {
	srv := &scriptedServer{replies: []string{prosodyResult}}
	iss := Issuer{Server: jid.MustParse("durare.test"), From: jid.MustParse("invites.durare.test"), Link: srv}
	m, err := iss.Mint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := invites.Minted{
		URI:     "xmpp:durare.test?register;preauth=TOKEN123",
		Token:   "TOKEN123",
		Expires: time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC),
	}
	if m != want {
		t.Errorf("Mint = %+v, want %+v", m, want)
	}
	if got := srv.iqs[0]; got.From.String() != "invites.durare.test" || got.To.String() != "durare.test" || got.Type != stanza.SetIQ {
		t.Errorf("sent IQ header %+v", got)
	}
	if !strings.Contains(srv.sent[0], `node="urn:xmpp:invite#create-account"`) || !strings.Contains(srv.sent[0], `action="execute"`) ||
		strings.Count(srv.sent[0], "xmlns=") != 1 {
		t.Errorf("sent payload %s", srv.sent[0])
	}
}

func TestIssuerMultiStage(t *testing.T) {
	stage := `<iq type='result' id='1'><command xmlns='http://jabber.org/protocol/commands' status='executing' sessionid='abc'>
<x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:invite#invite</value></field>
<field var='ttl' type='list-single'><value>86400</value></field><field type='fixed'><value>pick</value></field></x></command></iq>`
	done := `<iq type='result' id='2'><command xmlns='http://jabber.org/protocol/commands' status='completed'>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:invite#invitation</value></field>
<field var='uri'><value>xmpp:durare.test?register;preauth=T2</value></field>
<field var='landing-url'><value>https://durare.test/invite?T2</value></field>
<field var='expiry'><value>2026-12-01T19:00:00+01:00</value></field></x></command></iq>`
	srv := &scriptedServer{replies: []string{stage, done}}
	m, err := Issuer{Server: jid.MustParse("durare.test"), Link: srv}.Mint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m.Token != "T2" || m.LandingURL != "https://durare.test/invite?T2" || !m.Expires.Equal(time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)) {
		t.Errorf("Mint = %+v", m)
	}
	second := srv.sent[1]
	for _, want := range []string{`sessionid="abc"`, `action="complete"`, `type="submit"`, `var="ttl"`, "86400"} {
		if !strings.Contains(second, want) {
			t.Errorf("second stage lacks %s: %s", want, second)
		}
	}
	if strings.Contains(second, "pick") {
		t.Errorf("fixed field echoed: %s", second)
	}
}

func TestIssuerErrors(t *testing.T) {
	errIQ := func(cond string) string {
		return `<iq type='error' id='1'><error type='cancel'><` + cond + ` xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`
	}
	tests := []struct {
		name  string
		reply string
		want  error
	}{
		{"forbidden", errIQ("forbidden"), invites.ErrIssuerForbidden},
		{"item-not-found", errIQ("item-not-found"), invites.ErrIssuerUnsupported},
		{"service-unavailable", errIQ("service-unavailable"), invites.ErrIssuerUnsupported},
		{"no uri", `<iq type='result' id='1'><command xmlns='http://jabber.org/protocol/commands' status='completed'><x xmlns='jabber:x:data' type='result'/></command></iq>`, nil},
		{"bad uri", `<iq type='result' id='1'><command xmlns='http://jabber.org/protocol/commands' status='completed'><x xmlns='jabber:x:data' type='result'><field var='uri'><value>https://x</value></field></x></command></iq>`, invites.ErrBadURI},
		{"canceled", `<iq type='result' id='1'><command xmlns='http://jabber.org/protocol/commands' status='canceled'><note type='error'>nope</note></command></iq>`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := &scriptedServer{replies: []string{tc.reply}}
			_, err := Issuer{Server: jid.MustParse("durare.test"), Link: srv}.Mint(context.Background())
			if err == nil {
				t.Fatal("Mint succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// passwordReset is Prosody 13's reset command: a second command with an
// invitation form.
const passwordReset = "xmpp:prosody.im/mod_invites_adhoc#password-reset"

// TestIssuerRefusalNamesWhoAndWhat: a refusal carries the command and
// who ran it, so the log can say what to grant to whom, and still matches
// invites.ErrIssuerForbidden for callers that only need to know it was refused.
func TestIssuerRefusalNamesWhoAndWhat(t *testing.T) {
	refused := `<iq type='error' id='1'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`
	minter := jid.MustParse("invitebot@durare.test")
	iss := Issuer{Server: jid.MustParse("durare.test"), From: minter}
	for _, tc := range []struct {
		name string
		run  func(Issuer) error
		node string
	}{
		{"create-account", func(a Issuer) error { _, err := a.Mint(context.Background()); return err }, invites.NodeCreateAccount},
		{"password-reset", func(a Issuer) error {
			_, err := a.Run(context.Background(), passwordReset, func(f *dataform.Form) { f.Set("accountjid", "someone@durare.test") })
			return err
		}, passwordReset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss.Link = &scriptedServer{replies: []string{refused}}
			err := tc.run(iss)
			var re *invites.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *invites.RefusedError", err)
			}
			if re.Node != tc.node || !re.As.Equal(minter) || re.Condition != string(stanza.Forbidden) {
				t.Errorf("RefusedError = %+v, want node %s as %s, forbidden", re, tc.node, minter)
			}
			if !errors.Is(err, invites.ErrIssuerForbidden) {
				t.Errorf("%v does not match invites.ErrIssuerForbidden", err)
			}
			if msg := err.Error(); !strings.Contains(msg, minter.String()) || !strings.Contains(msg, tc.node) {
				t.Errorf("message %q names neither %s nor %s", msg, minter, tc.node)
			}
		})
	}
}

// TestCompleteReadsNotes: a command that completes with an error note (as
// Prosody's admin commands do for a user that does not exist) hands the
// note back instead of failing, and a completed result form comes back as
// it is.
func TestCompleteReadsNotes(t *testing.T) {
	stage := `<iq type='result' id='1' from='durare.test'><command xmlns='http://jabber.org/protocol/commands' node='n' status='executing' sessionid='s1'>
<x xmlns='jabber:x:data' type='form'><field var='accountjid' type='jid-single'/></x></command></iq>`
	missing := `<iq type='result' id='2' from='durare.test'><command xmlns='http://jabber.org/protocol/commands' node='n' status='completed' sessionid='s1'>
<note type='error'> User does not exist </note></command></iq>`
	found := `<iq type='result' id='2' from='durare.test'><command xmlns='http://jabber.org/protocol/commands' node='n' status='completed' sessionid='s1'>
<x xmlns='jabber:x:data' type='result'><field var='rostersize'><value>3</value></field></x></command></iq>`
	srv := &scriptedServer{replies: []string{stage, missing, stage, found}}
	iss := Issuer{Server: jid.MustParse("durare.test"), From: jid.MustParse("invites.durare.test"), Link: srv}
	fill := func(f *dataform.Form) { f.Set("accountjid", "ghost@durare.test") }
	res, err := iss.Complete(context.Background(), "n", fill)
	if err != nil || res.ErrorNote() != "User does not exist" || res.Form != nil {
		t.Errorf("Complete = %+v, %v; want the error note and no form", res, err)
	}
	if !strings.Contains(srv.sent[1], "ghost@durare.test") {
		t.Errorf("second stage sent %s, want the account filled in", srv.sent[1])
	}
	res, err = iss.Complete(context.Background(), "n", fill)
	if err != nil || res.ErrorNote() != "" || res.Form.Value("rostersize") != "3" {
		t.Errorf("Complete = %+v, %v; want the result form", res, err)
	}
}
