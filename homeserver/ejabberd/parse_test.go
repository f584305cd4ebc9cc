package ejabberd

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/invites"
)

func TestParseInvite(t *testing.T) {
	tests := []struct {
		name, v string
		want    invites.TokenUsage
		wantErr bool
	}{
		{
			name: "unused, landing page lost its space",
			v:    "sekrit1 : true : 2026-12-07T22:22:02Z : 2026-12-12T22:22:02Z : account_only : m@d.test :  :  : xmpp:d.test?register;preauth=sekrit1 :",
			want: invites.TokenUsage{Token: "sekrit1", Valid: true},
		},
		{
			name: "used",
			v:    "sekrit2 : false : 2026-12-07T22:22:02Z : 2026-12-12T22:22:02Z : account_only : m@d.test : erin@d.test :  : xmpp:d.test?register;preauth=sekrit2 : https://d.test/i/sekrit2",
			want: invites.TokenUsage{Token: "sekrit2", Account: jid.MustParse("erin@d.test")},
		},
		{
			name: "roster invite that created an account",
			v:    "sekrit3 : false : 2026-12-07T22:22:02Z : 2026-12-12T22:22:02Z : roster_only : alice@d.test :  : mallory : xmpp:alice@d.test?roster;preauth=sekrit3 : ",
			want: invites.TokenUsage{Token: "sekrit3", Account: jid.MustParse("mallory@d.test")},
		},
		{name: "too few columns", v: "sekrit4 : true", wantErr: true},
		{name: "bad invitee", v: "sekrit5 : false : a : b : account_only : m@d.test : @@ :  : u : ", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseInvite(tt.v, "d.test")
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v", tt.name, err)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), "sekrit") {
				t.Errorf("%s: error quotes the token: %v", tt.name, err)
			}
			continue
		}
		if got.Token != tt.want.Token || got.Valid != tt.want.Valid || !got.Account.Equal(tt.want.Account) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestMintedFromInvite(t *testing.T) {
	for _, tt := range []struct{ v, landing string }{
		{"xmpp:bob@d.test?register;preauth=abc :", ""},
		{"xmpp:bob@d.test?register;preauth=abc : ", ""},
		{"xmpp:bob@d.test?register;preauth=abc : https://d.test/i/abc", "https://d.test/i/abc"},
	} {
		m, err := mintedFromInvite(tt.v)
		if err != nil || m.Token != "abc" || m.URI != "xmpp:bob@d.test?register;preauth=abc" || m.LandingURL != tt.landing {
			t.Errorf("%q: got %+v, %v", tt.v, m, err)
		}
	}
	if _, err := mintedFromInvite("Error: nothing"); err == nil {
		t.Error("no URI: no error")
	}
}

// fakeServer answers every IQ with reply (an IQ's inner XML, or an error).
type fakeServer struct{ reply func(n int) string }

func (f *fakeServer) SendIQElement(_ context.Context, _ xml.TokenReader, _ stanza.IQ) (xmlstream.TokenReadCloser, error) {
	d := xml.NewDecoder(strings.NewReader(f.reply(0)))
	return struct {
		xml.TokenReader
		io.Closer
	}{d, nopCloser{}}, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func completed(fields string) string {
	return `<iq xmlns="jabber:client" type="result"><command xmlns="http://jabber.org/protocol/commands" status="completed" node="n"><x xmlns="jabber:x:data" type="result">` + fields + `</x></command></iq>`
}

// TestErrorMapping checks how ejabberd's answers become the service's
// errors: an API 403 is a refusal with a fix, other API errors are
// APIErrors, a mint over the invite limit is ErrTooManyInvites, and an
// unknown token deletes without error.
func TestErrorMapping(t *testing.T) {
	minter := jid.MustParse("minter@d.test")
	ctx := context.Background()
	apiErr := func(code, msg string) *fakeServer {
		return &fakeServer{func(int) string {
			return completed(`<field var="error" type="text-single" label="Error ` + code + `"><value>` + msg + `</value></field>`)
		}}
	}

	_, err := NewIssuer(minter, apiErr("403", "AccessRules: Account does not have the right to perform the operation.")).ListUsage(ctx)
	var re *invites.RefusedError
	if !errors.As(err, &re) || !errors.Is(err, invites.ErrIssuerForbidden) || re.Fix.Message == "" || !re.As.Equal(minter) {
		t.Errorf("403: got %v, want a RefusedError with a fix", err)
	}

	_, err = NewIssuer(minter, apiErr("400", "User does not exist")).MintReset(ctx, jid.MustParse("nobody@d.test"))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "400" || errors.Is(err, invites.ErrIssuerForbidden) {
		t.Errorf("400: got %v, want an APIError 400", err)
	}

	if err := NewIssuer(minter, apiErr("404", "not_found")).Delete(ctx, "tok"); err != nil {
		t.Errorf("delete unknown token: %v", err)
	}
	if err := NewIssuer(minter, apiErr("500", "boom")).Delete(ctx, "secrettoken"); err == nil || strings.Contains(err.Error(), "secrettoken") {
		t.Errorf("delete failing: got %v, want an error without the token", err)
	}

	limit := &fakeServer{func(int) string {
		return `<iq xmlns="jabber:client" type="error"><error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">Maximum number of invites reached</text></error></iq>`
	}}
	if _, err := NewIssuer(minter, limit).Mint(ctx); !errors.Is(err, ErrTooManyInvites) {
		t.Errorf("invite limit: got %v, want ErrTooManyInvites", err)
	}

	forbidden := &fakeServer{func(int) string {
		return `<iq xmlns="jabber:client" type="error"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">Access forbidden</text></error></iq>`
	}}
	_, err = NewIssuer(minter, forbidden).Mint(ctx)
	if !errors.As(err, &re) || re.Fix.Message == "" || re.Node != invites.NodeCreateAccount {
		t.Errorf("mint forbidden: got %v, want a RefusedError with a fix", err)
	}

	odd := &fakeServer{func(int) string { return completed(`<field var="res"><value>7</value></field>`) }}
	if _, err := NewIssuer(minter, odd).AccountExists(ctx, jid.MustParse("bob@d.test")); err == nil {
		t.Error("check_account answering 7: no error")
	}
	if _, err := NewIssuer(minter, odd).AccountExists(ctx, jid.MustParse("bob@elsewhere.test")); err == nil {
		t.Error("account of another domain: no error")
	}
}

func TestTakenText(t *testing.T) {
	for text, want := range map[string]bool{
		"Unexpected error condition: {stanza_error,cancel,undefined,conflict,[],undefined,[]}": true,
		"Unexpected error condition: exists":                                                   true,
		"Unexpected error condition: db_failure":                                               false,
		"conflict":                                                                             false,
	} {
		se := stanza.Error{Condition: stanza.InternalServerError, Text: map[string]string{"": text}}
		if got := takenText(se); got != want {
			t.Errorf("%q: got %v, want %v", text, got, want)
		}
	}
}
