package prosodytest_test

// Tests that mod_invitebot gives the component no more than the bot needs:
// it deletes, hears about and introduces only what the bot's own invites
// made, it talks to a component of this server only, refusals cannot flood
// the log, and acknowledging a report rewrites no other record.

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
)

// componentIssuer mints the way the bot does when the component itself
// runs the server's commands (it is an admin of Domain in these tests).
func componentIssuer(c *componentSession) prosody.Issuer {
	return prosody.NewIssuer(jid.MustParse(c.srv.Domain), jid.MustParse(c.srv.Component), c.sess)
}

func isItemNotFound(err error) bool {
	var se stanza.Error
	return errors.As(err, &se) && se.Condition == stanza.ItemNotFound
}

// TestModuleDeletesBotTokensOnly: the component deletes the tokens the bot
// minted, as the component or as the minter account, password reset links
// included (Prosody 13), and nothing an admin minted at the console.
func TestModuleDeletesBotTokensOnly(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule())
	comp := connectModuleComponent(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	stillValid := func(what, token string) {
		t.Helper()
		if err := ibr.CheckToken(ctx, srv.IBRConfig(), token); err != nil {
			t.Errorf("%s no longer valid after the component's refused delete: %v", what, err)
		}
	}
	refused := func(what, token string) {
		t.Helper()
		if err := comp.iq(stanza.SetIQ, "delete", "token", token); !isForbidden(err) {
			t.Errorf("the component deleting %s: %v, want forbidden", what, err)
		}
		stillValid(what, token)
	}
	deleted := func(what, token string) {
		t.Helper()
		if err := comp.iq(stanza.SetIQ, "delete", "token", token); err != nil {
			t.Errorf("the component deleting %s: %v", what, err)
		}
		if err := ibr.CheckToken(ctx, srv.IBRConfig(), token); !errors.Is(err, ibr.ErrTokenRejected) {
			t.Errorf("%s after the component deleted it: %v, want rejected", what, err)
		}
	}

	refused("an invite an admin minted with prosodyctl", srv.MintAdminToken(t))
	minted, err := componentIssuer(comp).Mint(ctx)
	if err != nil {
		t.Fatalf("mint as the component: %v", err)
	}
	deleted("an invite the component minted", minted.Token)
	deleted("an invite the minter account minted", srv.MintToken(t))

	if !strings.HasPrefix(srv.Version, "13") {
		return // 0.12 has no password reset links
	}
	owner := srv.AddUser(t, "owner", srv.Domain, modulePass)
	adminReset, err := srv.MintResetToken(owner)
	if err != nil {
		t.Fatalf("reset link at the console: %v", err)
	}
	refused("a reset link an admin made at the console", adminReset)
	botReset, err := componentIssuer(comp).MintReset(ctx, owner)
	if err != nil {
		t.Fatalf("reset link as the component: %v", err)
	}
	deleted("a reset link the component made", botReset.Token)
}

// TestModuleServesBotRegistrationsOnly: an account registered with an
// invite an admin minted is neither reported to the component nor
// introducible by it; one registered with the bot's invite is both.
func TestModuleServesBotRegistrationsOnly(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule())
	comp := connectModuleComponent(t, srv)
	inviter := srv.AddUser(t, "carol", srv.OtherDomain, modulePass)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stranger, err := ibr.Register(ctx, srv.IBRConfig(), srv.MintAdminToken(t), "stranger", modulePass)
	if err != nil {
		t.Fatalf("register with an admin's invite: %v", err)
	}
	token := srv.MintToken(t)
	newbie, err := ibr.Register(ctx, srv.IBRConfig(), token, "newbie", modulePass)
	if err != nil {
		t.Fatalf("register with the bot's invite: %v", err)
	}
	// Reports go out in the order of the registrations: the first one the
	// component gets must be the bot's.
	if r := comp.awaitReport(t); r.jid != newbie.String() || r.token != token {
		t.Errorf("first report = %+v, want %s: a registration with an admin's invite was reported", r, newbie)
	}
	if err := comp.iq(stanza.SetIQ, "introduce", "jid", stranger.String(), "contact", inviter.String()); !isItemNotFound(err) {
		t.Errorf("introducing an account registered with an admin's invite: %v, want item-not-found", err)
	}
	if err := comp.iq(stanza.SetIQ, "introduce", "jid", newbie.String(), "contact", inviter.String()); err != nil {
		t.Errorf("introducing an account registered with the bot's invite: %v", err)
	}
}

// logLines returns the lines of srv's log that contain every one of subs.
func logLines(t *testing.T, srv *prosodytest.Server, subs ...string) []string {
	t.Helper()
	b, err := os.ReadFile(srv.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestModuleRefusesComponentElsewhere: an invitebot_component that names
// no Component of this server (a typo, a host elsewhere, a VirtualHost) is
// refused with an error in the log, and no report is sent to it.
func TestModuleRefusesComponentElsewhere(t *testing.T) {
	for _, name := range []string{"invites.elsewhere.invalid", prosodytest.DefaultOtherDomain} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := prosodytest.Start(t, prosodytest.WithInvitebotComponent(name))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// The report would go out before the registration is answered.
			if _, err := ibr.Register(ctx, srv.IBRConfig(), srv.MintToken(t), "newbie", modulePass); err != nil {
				t.Fatalf("register: %v", err)
			}
			if l := logLines(t, srv, "Sending usage report"); len(l) > 0 {
				t.Errorf("a usage report was sent to %s: %q", name, l)
			}
			testwait.For(t, 10*time.Second, "the module logs that "+name+" is no component of this server", func() bool {
				return len(logLines(t, srv, "\terror\t", `invitebot_component = "`+name+`" is not a Component of this server`)) > 0
			})
		})
	}
}

// TestModuleRefusalsDoNotFloodTheLog: a local user who sends the
// component's requests over and over gets forbidden every time, but the
// log says so at warn level once, and counts the rest at debug.
func TestModuleRefusalsDoNotFloodTheLog(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule())
	user := srv.AddUser(t, "mallory", srv.Domain, modulePass)
	mallory := prosodytest.Login(t, srv, user, modulePass)
	const n = 20
	for i := 0; i < n; i++ {
		err := moduleIQ(mallory.Session(), mallory.JID(), jid.MustParse(srv.Domain), stanza.GetIQ, "status")
		if !isForbidden(err) {
			t.Fatalf("status from a local user: %v, want forbidden", err)
		}
	}
	// Each refusal is logged before it is answered.
	if l := logLines(t, srv, "Refused invitebot request"); len(l) != n {
		t.Errorf("%d refusals logged at any level, want %d", len(l), n)
	}
	if l := logLines(t, srv, "\twarn\t", "Refused invitebot request"); len(l) > 1 {
		t.Errorf("%d refusals logged at warn level, want at most 1: %q", len(l), l[:2])
	}
}

// ackingComponent is a raw component session that acknowledges the usage
// reports for the accounts in ack only, and tells of every report it gets.
type ackingComponent struct {
	sess *xmpp.Session
	ack  map[string]bool
	got  chan string // the jid of each report
}

func (c *ackingComponent) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
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
		var account string
		for _, a := range el.Attr {
			if a.Name.Local == "jid" {
				account = a.Value
			}
		}
		if c.ack[account] {
			if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
				return err
			}
		}
		c.got <- account
		return nil
	}
}

func connectAckingComponent(t *testing.T, srv *prosodytest.Server, ack ...string) *ackingComponent {
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
	c := &ackingComponent{sess: s, ack: make(map[string]bool), got: make(chan string, 64)}
	for _, a := range ack {
		c.ack[a] = true
	}
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

// queued asks the module how many reports it holds.
func (c *ackingComponent) queued(t *testing.T, srv *prosodytest.Server) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var status struct {
		Queued string `xml:"queued,attr"`
	}
	payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsModule, Local: "status"}})
	iq := stanza.IQ{Type: stanza.GetIQ, From: jid.MustParse(srv.Component), To: jid.MustParse(srv.Domain)}
	if err := c.sess.UnmarshalIQElement(ctx, payload, iq, &status); err != nil {
		t.Fatalf("status: %v", err)
	}
	return status.Queued
}

// fileVersion identifies one version of a file: a rewrite (Prosody's
// internal storage writes a new file and renames it over the old one)
// changes the inode, and any change the size or the time.
type fileVersion struct {
	ino   uint64
	size  int64
	mtime time.Time
}

// filesHolding returns the files under dir whose contents contain s.
func filesHolding(t *testing.T, dir, s string) map[string]fileVersion {
	t.Helper()
	found := make(map[string]fileVersion)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // renamed away meanwhile
		}
		if err != nil || !bytes.Contains(b, []byte(s)) {
			return err
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		v := fileVersion{size: fi.Size(), mtime: fi.ModTime()}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			v.ino = uint64(sys.Ino)
		}
		found[path] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestModuleAckRewritesNoOtherReport: with reports queued while the
// component was away, acknowledging one removes its record and leaves the
// records of the others as they were: an acknowledgement costs one small
// write, not a rewrite of everything queued.
func TestModuleAckRewritesNoOtherReport(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := []string{"first", "second", "third"}
	accounts := make([]string, len(names))
	for i, name := range names {
		a, err := ibr.Register(ctx, srv.IBRConfig(), srv.MintToken(t), name, modulePass)
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		accounts[i] = a.String()
	}
	before := make(map[string]map[string]fileVersion)
	for _, a := range accounts {
		before[a] = filesHolding(t, srv.DataDir, a)
		if len(before[a]) == 0 {
			t.Fatalf("no file in %s holds the queued report for %s", srv.DataDir, a)
		}
	}

	acked := accounts[0]
	comp := connectAckingComponent(t, srv, acked)
	comp.queued(t, srv) // the module delivers what waited
	for range accounts {
		select {
		case <-comp.got:
		case <-time.After(reportWait):
			t.Fatalf("not every queued report arrived within %v", reportWait)
		}
	}
	// The acknowledgement went out before this question, on the same
	// stream, so the answer counts it.
	if q := comp.queued(t, srv); q != "2" {
		t.Fatalf("after one acknowledgement the module holds %s reports, want 2", q)
	}
	if f := filesHolding(t, srv.DataDir, acked); len(f) > 0 {
		t.Errorf("the acknowledged report for %s is still stored in %v", acked, f)
	}
	for _, a := range accounts[1:] {
		after := filesHolding(t, srv.DataDir, a)
		for path, v := range before[a] {
			if after[path] != v {
				t.Errorf("acknowledging the report for %s rewrote %s, which holds the report for %s (%+v, now %+v)",
					acked, path, a, v, after[path])
			}
		}
	}
}
