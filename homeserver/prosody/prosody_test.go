package prosody_test

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
)

// c2sLink sends IQs on a client session without a from: the server stamps
// the session's own, as on the minter's link.
type c2sLink struct{ s adhoc.IQSender }

func (l c2sLink) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	iq.From = jid.JID{}
	return l.s.SendIQElement(ctx, payload, iq)
}

// minterAllows reads the permissions of MinterRoleLua.
func minterAllows(t *testing.T) []string {
	t.Helper()
	_, rest, ok := strings.Cut(prosody.MinterRoleLua, "allow = {")
	if !ok {
		t.Fatalf("no allow list in %s", prosody.MinterRoleLua)
	}
	rest, _, _ = strings.Cut(rest, "}")
	var allow []string
	for _, f := range strings.Split(rest, ";") {
		if f = strings.Trim(strings.TrimSpace(f), `"`); f != "" {
			allow = append(allow, f)
		}
	}
	return allow
}

// TestAccountExists asks a real Prosody whether accounts exist, as the
// component (an admin) and as the minter account with the role
// MinterRoleLua defines (Prosody 13; on 0.12 an admin account), and shows
// that a minter role without the user statistics command cannot tell and
// says what to add.
func TestAccountExists(t *testing.T) {
	role := prosodytest.Role{Name: prosody.MinterRole, Inherits: []string{"prosody:registered"}, Allow: minterAllows(t)}
	narrow := prosodytest.Role{Name: "invitebot:narrow", Inherits: []string{"prosody:registered"},
		Allow: []string{"adhoc:" + invites.NodeCreateAccount, "adhoc:" + prosody.NodePasswordReset}}
	srv := prosodytest.Start(t, prosodytest.WithCustomRoles(role, narrow),
		prosodytest.WithAdminsWithoutRoles("minter@"+prosodytest.DefaultDomain))
	domain := jid.MustParse(srv.Domain)
	alice := srv.AddUser(t, "alice", srv.Domain, "alice password")
	ghost := jid.MustParse("ghost@" + srv.Domain)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", srv.ComponentAddr)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := component.NewSession(ctx, jid.MustParse(srv.Component), []byte(srv.ComponentSecret), conn)
	if err != nil {
		t.Fatal(err)
	}
	go cs.Serve(nil)
	t.Cleanup(func() { cs.Close(); conn.Close() })

	var minter jid.JID
	if srv.HasRoles() {
		minter = srv.AddUserWithRole(t, "minter", srv.Domain, "minter password", prosody.MinterRole)
	} else {
		minter = srv.AddUser(t, "minter", srv.Domain, "minter password")
	}
	issuers := map[string]prosody.Issuer{
		"component": prosody.NewIssuer(domain, jid.MustParse(srv.Component), cs),
		"minter":    prosody.NewIssuer(domain, minter, c2sLink{prosodytest.Login(t, srv, minter, "minter password").Session()}),
	}
	for name, iss := range issuers {
		if ok, err := iss.AccountExists(ctx, alice); err != nil || !ok {
			t.Errorf("Prosody %s, %s: does alice exist = %v, %v; want true", srv.Version, name, ok, err)
		}
		if ok, err := iss.AccountExists(ctx, ghost); err != nil || ok {
			t.Errorf("Prosody %s, %s: does ghost exist = %v, %v; want false", srv.Version, name, ok, err)
		}
	}

	if !srv.HasRoles() {
		return
	}
	other := srv.AddUserWithRole(t, "narrow", srv.Domain, "narrow password", "invitebot:narrow")
	iss := prosody.NewIssuer(domain, other, c2sLink{prosodytest.Login(t, srv, other, "narrow password").Session()})
	ok, err := iss.AccountExists(ctx, alice)
	var re *invites.RefusedError
	if ok || !errors.As(err, &re) || re.Node != prosody.NodeUserStats || !strings.Contains(re.Fix.Message, "minter") {
		t.Errorf("Prosody %s: a role without user statistics: %v, %v (%+v); want refused, with the fix", srv.Version, ok, err, re)
	}
}
