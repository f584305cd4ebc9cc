package bot

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// fakeModuleLink plays the server for prosody.Module: it answers the
// module's IQs as a Prosody with (or without) mod_invitebot would, and
// records what it was asked.
type fakeModuleLink struct {
	mu     sync.Mutex
	loaded bool
	asked  []string // "local attr=value ..."
}

func (l *fakeModuleLink) SendIQElement(_ context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	var el struct {
		XMLName xml.Name
		Attrs   []xml.Attr `xml:",any,attr"`
	}
	if err := xml.NewTokenDecoder(payload).Decode(&el); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	call := el.XMLName.Local
	for _, a := range el.Attrs {
		call += " " + a.Name.Local + "=" + a.Value
	}
	l.asked = append(l.asked, call)
	reply := fmt.Sprintf(`<iq type='result' id='x' from=%q/>`, iq.To)
	switch {
	case !l.loaded:
		reply = fmt.Sprintf(`<iq type='error' id='x' from=%q><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, iq.To)
	case el.XMLName.Local == "status":
		reply = fmt.Sprintf(`<iq type='result' id='x' from=%q><status xmlns=%q version='1' queued='0'/></iq>`, iq.To, prosody.NSModule)
	}
	return xmlstream.NopCloser(xml.NewDecoder(strings.NewReader(reply))), nil
}

func (l *fakeModuleLink) calls() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.asked, "\n")
}

// recordingOut keeps the stanzas the bot sends through the link.
type recordingOut struct {
	mu   sync.Mutex
	sent []any
	got  chan struct{}
}

func (o *recordingOut) Encode(_ context.Context, v any) error {
	o.mu.Lock()
	o.sent = append(o.sent, v)
	o.mu.Unlock()
	o.got <- struct{}{}
	return nil
}

// inlineTRE is the read loop's view of one stanza: the tokens after its
// start element, and the stanzas answered inline.
type inlineTRE struct {
	xml.TokenReader
	enc  *xml.Encoder
	sent bytes.Buffer
}

func (t *inlineTRE) Encode(v any) error { return t.enc.Encode(v) }
func (t *inlineTRE) EncodeElement(v any, start xml.StartElement) error {
	return t.enc.EncodeElement(v, start)
}
func (t *inlineTRE) EncodeToken(tok xml.Token) error { return t.enc.EncodeToken(tok) }
func (t *inlineTRE) Flush() error                    { return t.enc.Flush() }

type moduleFixture struct {
	*fixture
	link *fakeModuleLink
	out  *recordingOut
}

func newModuleFixture(t *testing.T, loaded, introduce bool) *moduleFixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	link := &fakeModuleLink{loaded: loaded}
	mod := prosody.NewModule(jid.MustParse("durare.test"), jid.MustParse("invites.durare.test"), link, log)
	if _, err := mod.Detect(context.Background()); err != nil {
		t.Fatal(err)
	}
	iss := &fakeIssuer{}
	notes := &recordingNotifier{}
	svc := invites.NewService(invites.Options{Store: st, Issuer: iss, Domain: "durare.test",
		Admins: map[string]bool{admin: true}, Now: clock.now, Log: log, Notifier: notes,
		Module: mod, Introduce: introduce})
	out := &recordingOut{got: make(chan struct{}, 16)}
	b := New(Config{Service: svc, Component: jid.MustParse("invites.durare.test"), Log: log, Now: clock.now, Out: out, Reports: mod})
	return &moduleFixture{fixture: &fixture{bot: b, store: st, issuer: iss, clock: clock, notes: notes}, link: link, out: out}
}

// handle feeds one stanza to HandleXMPP and returns what was answered
// inline, or, when the bot answered from a worker, that reply.
func (f *moduleFixture) handle(t *testing.T, raw string) string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(raw))
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	start := tok.(xml.StartElement)
	tre := &inlineTRE{TokenReader: d}
	tre.enc = xml.NewEncoder(&tre.sent)
	if err := f.bot.HandleXMPP(tre, &start); err != nil {
		t.Fatalf("HandleXMPP = %v: it must never end the stream", err)
	}
	_ = tre.enc.Flush()
	if tre.sent.Len() > 0 {
		return tre.sent.String()
	}
	select {
	case <-f.out.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no reply")
	}
	f.out.mu.Lock()
	defer f.out.mu.Unlock()
	raw2, err := xml.Marshal(f.out.sent[len(f.out.sent)-1])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw2)
}

func reportIQ(from, token, account string) string {
	return fmt.Sprintf(`<iq type='set' id='r1' from=%q to='invites.durare.test'><registered xmlns=%q token=%q jid=%q at='2026-11-24T12:00:00Z'/></iq>`,
		from, prosody.NSModule, token, account)
}

// TestUsageReport: a report from the domain records exactly which account
// an invite created, tells the inviter at once and welcomes the new
// account; whoinvited then names the inviter. A repeated report changes
// nothing.
func TestUsageReport(t *testing.T) {
	tests := []struct {
		name              string
		loaded, introduce bool
		inviterWants      []string
		welcome           string // "" when no welcome is sent
		introduced        bool
	}{
		{name: "with module", loaded: true, introduce: true,
			inviterWants: []string{"newbie@durare.test joined.", "They have asked to add you as a contact", "xmpp:newbie@durare.test?roster"},
			welcome:      "Welcome to durare.test! carol@elsewhere.test invited you. They are in your contacts already", introduced: true},
		{name: "without introductions", loaded: true, introduce: false,
			inviterWants: []string{"newbie@durare.test joined."}},
		{name: "module gone, report late", loaded: false, introduce: true,
			inviterWants: []string{"newbie@durare.test joined. Add them as a contact: xmpp:newbie@durare.test?roster"},
			welcome:      "Welcome to durare.test! carol@elsewhere.test invited you. Add them as a contact: xmpp:carol@elsewhere.test?roster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newModuleFixture(t, tt.loaded, tt.introduce)
			f.mustSay(t, admin, "grant "+inviter)
			f.mustSay(t, inviter, "invite")
			invs, _ := f.store.InvitesByInviter(context.Background(), inviter)
			inv := invs[0]

			reply := f.handle(t, reportIQ("durare.test", inv.Token, "newbie@durare.test"))
			if !strings.Contains(reply, `type="result"`) || !strings.Contains(reply, `to="durare.test"`) || !strings.Contains(reply, `from="invites.durare.test"`) {
				t.Fatalf("reply to the report = %s", reply)
			}
			stored, _ := f.store.Invite(context.Background(), inv.ID)
			if stored.State != store.StateUsed || stored.UsedBy != "newbie@durare.test" {
				t.Errorf("invite after the report = %s by %q", stored.State, stored.UsedBy)
			}
			notes := f.notes.all()
			for _, want := range tt.inviterWants {
				if !strings.Contains(notes, inviter+": Your invite "+inv.ID) || !strings.Contains(notes, want) {
					t.Errorf("inviter's notice lacks %q:\n%s", want, notes)
				}
			}
			if tt.introduce && tt.loaded != strings.Contains(notes, "asked to add you") {
				t.Errorf("notice claims a contact request = %v, want %v:\n%s", !tt.loaded, tt.loaded, notes)
			}
			if got := strings.Contains(notes, "newbie@durare.test: Welcome"); got != (tt.welcome != "") || !strings.Contains(notes, tt.welcome) {
				t.Errorf("welcome sent = %v, want %q:\n%s", got, tt.welcome, notes)
			}
			if got := strings.Contains(f.link.calls(), "introduce jid=newbie@durare.test contact="+inviter); got != tt.introduced {
				t.Errorf("asked the server to introduce = %v, want %v; asked:\n%s", got, tt.introduced, f.link.calls())
			}
			if got := f.mustSay(t, admin, "whoinvited newbie"); !strings.Contains(got, "invited by "+inviter+" with invite "+inv.ID) {
				t.Errorf("whoinvited after an app registration: %q", got)
			}

			before := f.notes.all()
			if reply := f.handle(t, reportIQ("durare.test", inv.Token, "newbie@durare.test")); !strings.Contains(reply, `type="result"`) {
				t.Errorf("reply to a repeated report = %s", reply)
			}
			if f.notes.all() != before {
				t.Errorf("a repeated report notified again:\n%s", f.notes.all())
			}
		})
	}
}

// TestForgedReportsIgnored: only the domain itself may report; a report
// from anyone else, or about an account elsewhere, records nothing.
func TestForgedReportsIgnored(t *testing.T) {
	f := newModuleFixture(t, true, true)
	f.mustSay(t, admin, "grant "+inviter)
	f.mustSay(t, inviter, "invite")
	invs, _ := f.store.InvitesByInviter(context.Background(), inviter)
	inv := invs[0]
	for _, from := range []string{"mallory@durare.test/phone", "durare.test/x", "invites.durare.test", "elsewhere.test", "mallory@elsewhere.test"} {
		reply := f.handle(t, reportIQ(from, inv.Token, "mallory@durare.test"))
		if !strings.Contains(reply, "forbidden") {
			t.Errorf("report from %s answered %s, want forbidden", from, reply)
		}
	}
	if reply := f.handle(t, reportIQ("durare.test", inv.Token, "mallory@elsewhere.test")); !strings.Contains(reply, "bad-request") {
		t.Errorf("report of an account on another domain answered %s, want bad-request", reply)
	}
	if reply := f.handle(t, reportIQ("durare.test", "unknown-token", "mallory@durare.test")); !strings.Contains(reply, `type="result"`) {
		t.Errorf("report about a token the bot did not hand out answered %s, want result", reply)
	}
	stored, _ := f.store.Invite(context.Background(), inv.ID)
	if stored.State != store.StatePending || stored.UsedBy != "" {
		t.Errorf("forged reports changed the invite: %s by %q", stored.State, stored.UsedBy)
	}
	if notes := f.notes.all(); strings.Contains(notes, "mallory") || strings.Contains(notes, "was used") {
		t.Errorf("forged reports notified someone:\n%s", notes)
	}
}

// TestCancelDeletesThroughModule: with the module loaded, cancelling deletes
// the token through it instead of the issuer's own way; without it, the
// issuer's way applies.
func TestCancelDeletesThroughModule(t *testing.T) {
	for _, loaded := range []bool{true, false} {
		t.Run(fmt.Sprintf("loaded=%v", loaded), func(t *testing.T) {
			f := newModuleFixture(t, loaded, true)
			f.mustSay(t, admin, "invite")
			invs, _ := f.store.InvitesByInviter(context.Background(), admin)
			inv := invs[0]
			if got := f.mustSay(t, admin, "cancel "+inv.ID); !strings.Contains(got, "no longer works") {
				t.Fatalf("cancel: %q", got)
			}
			viaModule := strings.Contains(f.link.calls(), "delete token="+inv.Token)
			viaIssuer := len(f.issuer.deleted) == 1
			if viaModule != loaded || viaIssuer == loaded {
				t.Errorf("deleted through the module = %v, through the issuer = %v; module loaded = %v",
					viaModule, viaIssuer, loaded)
			}
		})
	}
}

func TestWelcomeAndIntroductionText(t *testing.T) {
	inv := invites.Invite{ID: "abcdefghijklmnop", Created: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	tests := []struct {
		ev   invites.Event
		want string
	}{
		{invites.InviteUsed{Invite: inv}, "Your invite abcdefghijklmnop from 2026-11-24 12:00 UTC was used."},
		{invites.InviteUsed{Invite: inv, Account: "new@durare.test"}, "Your invite abcdefghijklmnop from 2026-11-24 12:00 UTC was used: new@durare.test joined."},
		{invites.InviteUsed{Invite: inv, Account: "new@durare.test", Introduce: true},
			"Your invite abcdefghijklmnop from 2026-11-24 12:00 UTC was used: new@durare.test joined. Add them as a contact: xmpp:new@durare.test?roster"},
		{invites.Welcome{Domain: "durare.test", Inviter: "a#b@x.org"},
			"Welcome to durare.test! a#b@x.org invited you. Add them as a contact: xmpp:a%23b@x.org?roster"},
	}
	for _, tt := range tests {
		if got := eventText(tt.ev); got != tt.want {
			t.Errorf("eventText(%+v) =\n %q\nwant\n %q", tt.ev, got, tt.want)
		}
	}
}
