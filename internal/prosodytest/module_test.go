package prosodytest_test

// Tests of prosody/mod_invitebot.lua against the real Prosody, without the
// bot: raw client streams and a raw component session, so that what the
// module promises is pinned at the wire. The same tests without the module
// show the server's own behaviour, the known limits docs/security.md names.

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
)

// nsModule is mod_invitebot's namespace; prosody.NSModule on the bot's side.
const nsModule = "https://durare.org/ns/invitebot/0"

// reportWait is how long a usage report may take to reach the component.
// The promise is "within a second"; the rest is slack for -race.
const reportWait = 3 * time.Second

const modulePass = "correct horse battery"

// withAndWithout runs f once against a Prosody without the module and once
// with it.
func withAndWithout(t *testing.T, f func(t *testing.T, srv *prosodytest.Server, module bool)) {
	for _, module := range []bool{false, true} {
		name := "without module"
		var opts []prosodytest.Option
		if module {
			name = "with module"
			opts = append(opts, prosodytest.WithInvitebotModule())
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, prosodytest.Start(t, opts...), module)
		})
	}
}

func isForbidden(err error) bool { return isStanzaCondition(err, stanza.Forbidden) }

func isStanzaCondition(err error, cond stanza.Condition) bool {
	var se stanza.Error
	return errors.As(err, &se) && se.Condition == cond
}

// TestOneTokenOneStream: after one preauth, Prosody lets the stream
// register account after account, and still does once the token was used
// on another stream (a known limit without the module). With the module
// the token creates exactly one account, whatever the client does.
func TestOneTokenOneStream(t *testing.T) {
	withAndWithout(t, func(t *testing.T, srv *prosodytest.Server, module bool) {
		// Who refuses the extra accounts: the module, or the server itself.
		closed := module || srv.OneAccountPerToken()
		token := srv.MintToken(t)
		early := prosodytest.OpenRegistration(t, srv) // passes preauth before the token is used
		if err := early.Preauth(token); err != nil {
			t.Fatalf("preauth on the early stream: %v", err)
		}
		s := prosodytest.OpenRegistration(t, srv)
		if err := s.Preauth(token); err != nil {
			t.Fatalf("preauth: %v", err)
		}
		if err := s.Register("first", modulePass); err != nil {
			t.Fatalf("first registration: %v", err)
		}
		created := 1
		for _, name := range []string{"second", "third"} {
			err := s.Register(name, modulePass)
			switch {
			case err == nil:
				created++
			case module && isForbidden(err), !module && closed:
			default:
				t.Errorf("registration of %s on the same stream: %v", name, err)
			}
		}
		err := early.Register("fourth", modulePass)
		switch {
		case err == nil:
			created++
		case module && isForbidden(err), !module && closed:
		default:
			t.Errorf("registration on the stream that passed preauth before the token was used: %v", err)
		}
		// A fresh stream is refused by both: the server's own check.
		if err := prosodytest.OpenRegistration(t, srv).Preauth(token); !isForbidden(err) {
			t.Errorf("preauth with the used token on a new stream: %v, want forbidden", err)
		}
		want := 4 // the hole: one token, four accounts
		if closed {
			want = 1
		}
		if created != want {
			t.Errorf("one token created %d accounts, want %d", created, want)
		}
	})
}

// componentSession is a raw XEP-0114 session as srv.Component that records
// the usage reports it gets and acknowledges them.
type componentSession struct {
	srv     *prosodytest.Server
	sess    *xmpp.Session
	reports chan report
}

type report struct {
	from, token, jid, at string
}

func connectModuleComponent(t *testing.T, srv *prosodytest.Server) *componentSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", srv.ComponentAddr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := component.NewSession(ctx, jid.MustParse(srv.Component), []byte(srv.ComponentSecret), conn)
	if err != nil {
		conn.Close()
		t.Fatalf("component handshake: %v", err)
	}
	c := &componentSession{srv: srv, sess: s, reports: make(chan report, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(xmpp.HandlerFunc(c.handle))
	}()
	t.Cleanup(func() {
		s.Close()
		conn.Close()
		<-done
	})
	return c
}

// handle acknowledges <registered/> IQs and records them; anything else is
// ignored.
func (c *componentSession) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local != "iq" {
		return nil
	}
	iq, err := stanza.NewIQ(*start)
	if err != nil || iq.Type != stanza.SetIQ {
		return nil
	}
	for {
		tok, err := t.Token()
		if err != nil {
			return nil
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if el.Name != (xml.Name{Space: nsModule, Local: "registered"}) {
			return nil
		}
		r := report{from: iq.From.String()}
		for _, a := range el.Attr {
			switch a.Name.Local {
			case "token":
				r.token = a.Value
			case "jid":
				r.jid = a.Value
			case "at":
				r.at = a.Value
			}
		}
		c.reports <- r
		_, err = xmlstream.Copy(t, iq.Result(nil))
		return err
	}
}

// iq sends a set or get with one empty element of the module's namespace to
// the host and returns the answer's error, if any.
func (c *componentSession) iq(typ stanza.IQType, local string, attrs ...string) error {
	return moduleIQ(c.sess, jid.MustParse(c.srv.Component), jid.MustParse(c.srv.Domain), typ, local, attrs...)
}

func moduleIQ(s *xmpp.Session, from, to jid.JID, typ stanza.IQType, local string, attrs ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := xml.StartElement{Name: xml.Name{Space: nsModule, Local: local}}
	for i := 0; i+1 < len(attrs); i += 2 {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
	}
	return s.UnmarshalIQElement(ctx, xmlstream.Wrap(nil, start), stanza.IQ{Type: typ, From: from, To: to}, nil)
}

func (c *componentSession) awaitReport(t *testing.T) report {
	t.Helper()
	select {
	case r := <-c.reports:
		return r
	case <-time.After(reportWait):
		t.Fatalf("no usage report within %v", reportWait)
		return report{}
	}
}

// TestModuleDeletesTokenForComponentOnly: the component deletes a token, and
// a stream that passed preauth with it before can no longer register;
// nobody else may delete, and the host advertises the module.
func TestModuleDeletesTokenForComponentOnly(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule())
	comp := connectModuleComponent(t, srv)
	user := srv.AddUser(t, "mallory", srv.Domain, modulePass)
	mallory := prosodytest.Login(t, srv, user, modulePass)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := disco.GetInfo(ctx, "", jid.MustParse(srv.Domain), mallory.Session())
	if err != nil {
		t.Fatalf("disco#info on the host: %v", err)
	}
	var feats []string
	for _, f := range info.Features {
		feats = append(feats, f.Var)
	}
	if !strings.Contains(strings.Join(feats, " "), nsModule) {
		t.Errorf("host features %q lack %s", feats, nsModule)
	}
	if err := comp.iq(stanza.GetIQ, "status"); err != nil {
		t.Errorf("status as the component: %v", err)
	}

	token := srv.MintToken(t)
	s := prosodytest.OpenRegistration(t, srv)
	if err := s.Preauth(token); err != nil {
		t.Fatalf("preauth: %v", err)
	}
	for _, local := range []string{"status", "delete", "introduce"} {
		typ := stanza.SetIQ
		if local == "status" {
			typ = stanza.GetIQ
		}
		err := moduleIQ(mallory.Session(), mallory.JID(), jid.MustParse(srv.Domain), typ, local,
			"token", token, "jid", mallory.JID().Bare().String(), "contact", "x@"+srv.OtherDomain)
		if !isForbidden(err) {
			t.Errorf("%s from a local user: %v, want forbidden", local, err)
		}
	}
	if err := ibr.CheckToken(ctx, srv.IBRConfig(), token); err != nil {
		t.Fatalf("token no longer valid after a forbidden delete: %v", err)
	}

	if err := comp.iq(stanza.SetIQ, "delete", "token", token); err != nil {
		t.Fatalf("delete as the component: %v", err)
	}
	if err := s.Register("afterdelete", modulePass); !isForbidden(err) {
		t.Errorf("registration on a stream that passed preauth before the deletion: %v, want forbidden", err)
	}
	if err := ibr.CheckToken(ctx, srv.IBRConfig(), token); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("preauth after the deletion: %v, want rejected", err)
	}
	if err := comp.iq(stanza.SetIQ, "delete", "token", token); err != nil {
		t.Errorf("deleting again: %v, want success (deletion is idempotent)", err)
	}
}

// TestModuleReportsRegistrations: every registration with an invite is
// reported to the component at once, naming the token and the account;
// one made while the component was away arrives once it asks for status.
func TestModuleReportsRegistrations(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Registered while no component is connected: queued.
	early := srv.MintToken(t)
	if _, err := ibr.Register(ctx, srv.IBRConfig(), early, "early", modulePass); err != nil {
		t.Fatalf("register: %v", err)
	}
	comp := connectModuleComponent(t, srv)
	if err := comp.iq(stanza.GetIQ, "status"); err != nil {
		t.Fatalf("status: %v", err)
	}
	if r := comp.awaitReport(t); r.token != early || r.jid != "early@"+srv.Domain || r.from != srv.Domain {
		t.Errorf("queued report = %+v", r)
	}

	token := srv.MintToken(t)
	start := time.Now()
	if _, err := ibr.Register(ctx, srv.IBRConfig(), token, "Newbie", modulePass); err != nil {
		t.Fatalf("register: %v", err)
	}
	r := comp.awaitReport(t)
	t.Logf("report after %v", time.Since(start))
	if r.token != token || r.jid != "newbie@"+srv.Domain || r.from != srv.Domain {
		t.Errorf("report = %+v, want token %s…, jid newbie@%s from %s", r, token[:4], srv.Domain, srv.Domain)
	}
	if _, err := time.Parse(time.RFC3339, r.at); err != nil {
		t.Errorf("report time %q: %v", r.at, err)
	}
	select {
	case r := <-comp.reports:
		t.Errorf("a second report for one registration: %+v", r)
	case <-time.After(500 * time.Millisecond):
	}
}

// rosterItem is one jabber:iq:roster item.
type rosterItem struct {
	JID          string `xml:"jid,attr"`
	Subscription string `xml:"subscription,attr"`
	Ask          string `xml:"ask,attr"`
}

func roster(t *testing.T, c *prosodytest.Client) map[string]rosterItem {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var q struct {
		Items []rosterItem `xml:"item"`
	}
	payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "jabber:iq:roster", Local: "query"}})
	if err := c.Session().UnmarshalIQElement(ctx, payload, stanza.IQ{Type: stanza.GetIQ}, &q); err != nil {
		t.Fatalf("roster of %s: %v", c.JID(), err)
	}
	items := make(map[string]rosterItem)
	for _, it := range q.Items {
		items[it.JID] = it
	}
	return items
}

func sendPresence(t *testing.T, c *prosodytest.Client, to jid.JID, typ stanza.PresenceType) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Session().Send(ctx, stanza.Presence{To: to, Type: typ}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
}

// TestModuleIntroduces: the component introduces a new account to its
// inviter on another domain: the inviter gets the new account's request,
// and accepting it (with a request back, as clients do in one tap) makes
// both mutual contacts without the new person doing anything. Only recent
// invite registrations may be introduced.
func TestModuleIntroduces(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule())
	comp := connectModuleComponent(t, srv)
	inviterJID := srv.AddUser(t, "carol", srv.OtherDomain, modulePass)
	inviter := prosodytest.Login(t, srv, inviterJID, modulePass)
	old := srv.AddUser(t, "old", srv.Domain, modulePass)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	account, err := ibr.Register(ctx, srv.IBRConfig(), srv.MintToken(t), "dave", modulePass)
	if err != nil {
		t.Fatal(err)
	}
	comp.awaitReport(t)

	var se stanza.Error
	err = comp.iq(stanza.SetIQ, "introduce", "jid", old.String(), "contact", inviterJID.String())
	if !errors.As(err, &se) || se.Condition != stanza.ItemNotFound {
		t.Errorf("introducing an account that did not just register with an invite: %v, want item-not-found", err)
	}
	if err := comp.iq(stanza.SetIQ, "introduce", "jid", account.String(), "contact", inviterJID.String()); err != nil {
		t.Fatalf("introduce: %v", err)
	}

	newbie := prosodytest.Login(t, srv, account, modulePass)
	if it := roster(t, newbie)[inviterJID.String()]; it.Subscription != "none" || it.Ask != "subscribe" {
		t.Errorf("new account's roster item for the inviter = %+v, want none with a pending request", it)
	}
	// One tap on the inviter's side: approve, and ask back.
	sendPresence(t, inviter, account, stanza.SubscribedPresence)
	sendPresence(t, inviter, account, stanza.SubscribePresence)
	// Roster changes travel as presence between the two accounts, with
	// nothing to wait on.
	testwait.For(t, 10*time.Second, "both rosters to show a mutual subscription", func() bool {
		return roster(t, newbie)[inviterJID.String()].Subscription == "both" &&
			roster(t, inviter)[account.String()].Subscription == "both"
	})
}

// TestResetLinkResetsItsAccountOnly: Prosody 13.0.1's password reset token
// also creates any other account (a known limit without the module); with
// the module, or on 13.0.8, which binds it to its account, it sets the
// password of its own account and nothing else. Prosody 0.12 has no
// password resets.
func TestResetLinkResetsItsAccountOnly(t *testing.T) {
	withAndWithout(t, func(t *testing.T, srv *prosodytest.Server, module bool) {
		owner := srv.AddUser(t, "owner", srv.Domain, modulePass)
		token, err := srv.MintResetToken(owner)
		if !strings.HasPrefix(srv.Version, "13") {
			if err == nil {
				t.Fatalf("Prosody %s made a reset link; this test expects that only 13 has them", srv.Version)
			}
			return
		}
		if err != nil {
			t.Fatalf("reset link: %v", err)
		}
		s := prosodytest.OpenRegistration(t, srv)
		if err := s.Preauth(token); err != nil {
			t.Fatalf("preauth with the reset token: %v", err)
		}
		err = s.Register("stranger", modulePass)
		switch {
		case module && !isForbidden(err):
			t.Errorf("a new account with a reset link: %v, want forbidden", err)
		case !module && srv.BindsResetTokens() && !isStanzaCondition(err, stanza.NotAcceptable):
			t.Errorf("Prosody %s refuses another account with a reset link; got %v, want not-acceptable", srv.Version, err)
		case !module && !srv.BindsResetTokens() && err != nil:
			t.Errorf("without the module Prosody %s lets a reset link create an account; got %v", srv.Version, err)
		}
		if module || srv.BindsResetTokens() {
			if err := s.Register("owner", "new password"); err != nil {
				t.Fatalf("the reset itself: %v", err)
			}
			prosodytest.Login(t, srv, owner, "new password")
		}
	})
}
