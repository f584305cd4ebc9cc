package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/bot"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
)

// e2eTimeout bounds waits for the bot in these tests.
const e2eTimeout = 20 * time.Second

// world is a Prosody with accounts and a running bot.
type world struct {
	srv       *prosodytest.Server
	component jid.JID
	dbPath    string
	bot       *runningBot
	logs      *syncBuffer
	// checkInterval overrides invites.check_interval when not zero.
	checkInterval time.Duration
	// httpListen turns the web server on when not empty.
	httpListen string
	// backupDir sets store.backup_dir when not empty.
	backupDir string
	// tune, when set, adjusts the configuration last, past validation
	// (tests may go below the limits an admin must keep).
	tune func(*config.Config)
}

const password = "correct horse battery"

func newWorld(t *testing.T, opts ...prosodytest.Option) *world {
	t.Helper()
	return newWorldTracking(t, 0, opts...)
}

// newWorldTracking is newWorld with usage tracking every interval (0: the
// default, a minute, which keeps tracking out of the other tests' way).
func newWorldTracking(t *testing.T, interval time.Duration, opts ...prosodytest.Option) *world {
	t.Helper()
	srv := prosodytest.Start(t, opts...)
	w := &world{
		srv:           srv,
		component:     jid.MustParse(srv.Component),
		dbPath:        filepath.Join(t.TempDir(), "invitebot.db"),
		logs:          &syncBuffer{},
		checkInterval: interval,
	}
	w.bot = w.startBot(t)
	return w
}

// user creates an account on host and logs it in.
func (w *world) user(t *testing.T, local, host string) *prosodytest.Client {
	t.Helper()
	j := w.srv.AddUser(t, local, host, password)
	return prosodytest.Login(t, w.srv, j, password)
}

func (w *world) config(t *testing.T) *config.Config {
	t.Helper()
	cfg := new(config.Config)
	*cfg = config.Defaults()
	cfg.XMPP.Component = w.srv.Component
	cfg.XMPP.Server = w.srv.ComponentAddr
	cfg.XMPP.Secret = w.srv.ComponentSecret
	cfg.XMPP.Domain = w.srv.Domain
	cfg.XMPP.C2S = w.srv.C2SAddr
	cfg.XMPP.C2STLS.CAFile = w.caFile(t)
	cfg.Admins = []string{"admin@" + w.srv.Domain}
	cfg.Store.Path = w.dbPath
	cfg.Log.Level = "debug"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	cfg.Store.BackupDir = w.backupDir
	if w.httpListen != "" {
		cfg.HTTP.Listen = w.httpListen
		cfg.HTTP.PublicURL = "http://" + w.httpListen
	}
	if w.checkInterval != 0 {
		// Faster than an admin may configure, so usage tracking shows
		// within a test's patience.
		cfg.Invites.CheckInterval = w.checkInterval
	}
	if w.tune != nil {
		w.tune(cfg)
	}
	return cfg
}

// caFile writes the test server's certificate where xmpp.c2s_tls.ca_file
// can point.
func (w *world) caFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(w.srv.Dir, "ca.pem")
	if err := os.WriteFile(path, w.srv.CACert, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runningBot is serve() in a goroutine.
type runningBot struct {
	cancel context.CancelFunc
	done   chan error
	ups    chan struct{}
}

func (w *world) startBot(t *testing.T) *runningBot {
	t.Helper()
	return launchBot(t, w.config(t), w.logs)
}

// launchBot runs the bot with cfg, logging to logs and t, until the test
// ends, and returns once its link is up.
func launchBot(t *testing.T, cfg *config.Config, logs *syncBuffer) *runningBot {
	t.Helper()
	log := slog.New(slog.NewTextHandler(&teeWriter{t: t, buf: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	rb := &runningBot{cancel: cancel, done: make(chan error, 1), ups: make(chan struct{}, 16)}
	tune := func(c *bot.LinkConfig) {
		c.PingInterval = time.Second
		c.PingTimeout = 2 * time.Second
		c.MinBackoff = 100 * time.Millisecond
		c.MaxBackoff = time.Second
		c.OnUp = func() { rb.ups <- struct{}{} }
	}
	go func() { rb.done <- serve(ctx, cfg, log, tune) }()
	rb.awaitUp(t)
	t.Cleanup(func() { rb.stop(t) })
	return rb
}

func (rb *runningBot) awaitUp(t *testing.T) {
	t.Helper()
	select {
	case <-rb.ups:
	case err := <-rb.done:
		t.Fatalf("bot stopped before the link came up: %v", err)
	case <-time.After(e2eTimeout):
		t.Fatal("component link did not come up")
	}
}

func (rb *runningBot) stop(t *testing.T) {
	t.Helper()
	if rb.cancel == nil {
		return
	}
	rb.cancel()
	rb.cancel = nil
	select {
	case err := <-rb.done:
		if err != nil {
			t.Errorf("bot shutdown: %v", err)
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Error("bot did not shut down in time")
	}
}

// teeWriter sends logs to t.Log and keeps them for assertions.
type teeWriter struct {
	t   *testing.T
	buf *syncBuffer
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// inviteURI returns the XEP-0401 URI line of an invite reply.
func inviteURI(t *testing.T, reply string) invites.InviteURI {
	t.Helper()
	for _, line := range strings.Split(reply, "\n") {
		if strings.HasPrefix(line, "xmpp:") {
			u, err := invites.ParseURI(line)
			if err != nil {
				t.Fatalf("URI line %q: %v", line, err)
			}
			return u
		}
	}
	t.Fatalf("reply has no xmpp: URI line:\n%s", reply)
	return invites.InviteURI{}
}

// expectNotice reads c's next message, which must be an unsolicited
// notice from the bot containing want (grants and revocations are
// announced to the person concerned).
func expectNotice(t *testing.T, c *prosodytest.Client, want string) {
	t.Helper()
	if m := c.Next(t); !strings.Contains(m.Body, want) {
		t.Fatalf("expected a notice containing %q, got %q", want, m.Body)
	}
}

func expectContains(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("reply lacks %q:\n%s", want, got)
		}
	}
}

// TestInviteAcrossDomainsAndRegister is the foundation's promise: a person on
// another server, once granted, gets a token with which a brand-new client
// registers and logs in; nobody else gets one.
func TestInviteAcrossDomainsAndRegister(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	carol := w.user(t, "carol", w.srv.OtherDomain)
	mallory := w.user(t, "mallory", w.srv.OtherDomain)

	// Before a grant: a refusal, no token, and only one refusal per hour.
	reply := carol.Chat(t, w.component, "invite")
	expectContains(t, reply, "may not use invite")
	if strings.Contains(reply, "preauth") {
		t.Fatalf("ungranted inviter got a token: %s", reply)
	}
	if err := carol.Send(context.Background(), w.component, stanza.ChatMessage, "invite"); err != nil {
		t.Fatal(err)
	}
	carol.NoMessage(t, 2*time.Second)

	// A non-admin cannot grant.
	expectContains(t, mallory.Chat(t, w.component, "grant mallory@"+w.srv.OtherDomain), "may not use grant")
	expectContains(t, admin.Chat(t, w.component, "inviters"), "Nobody holds a grant")

	expectContains(t, admin.Chat(t, w.component, "Grant CAROL@"+w.srv.OtherDomain+" volunteer"), "carol@"+w.srv.OtherDomain+" may now create invites")
	expectNotice(t, carol, "You may now create account invites for "+w.srv.Domain)
	reply = carol.Chat(t, w.component, " INVITE ")
	uri := inviteURI(t, reply)
	if uri.Domain != w.srv.Domain {
		t.Errorf("invite for domain %q, want %q", uri.Domain, w.srv.Domain)
	}
	expectContains(t, reply, "expires", "UTC", "cancel ")

	// A fresh client registers with the token and logs in with SCRAM.
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	newJID, err := ibr.Register(ctx, w.srv.IBRConfig(), uri.Token, "newbie", "newbie's password")
	if err != nil {
		t.Fatalf("register with the bot's token: %v", err)
	}
	if newJID.String() != "newbie@"+w.srv.Domain {
		t.Errorf("registered %s", newJID)
	}
	prosodytest.Login(t, w.srv, newJID, "newbie's password")

	// Single use: the same token is refused, and so is a made-up one.
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), uri.Token, "second", "another password"); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("second registration with the same token: %v, want ErrTokenRejected", err)
	}
	if _, err := ibr.Register(ctx, w.srv.IBRConfig(), "bogus-token-123", "third", "another password"); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("registration with a bogus token: %v, want ErrTokenRejected", err)
	}

	// The inviter sees the invite; the admin sees the grant.
	expectContains(t, carol.Chat(t, w.component, "invites"), "pending")
	expectContains(t, admin.Chat(t, w.component, "inviters"), "carol@"+w.srv.OtherDomain, "granted by admin@"+w.srv.Domain, "volunteer")

	// Revoke stops further invites. Before cancelling, it checks the
	// pending invite at the server, finds it used and tells carol.
	expectContains(t, admin.Chat(t, w.component, "revoke carol@"+w.srv.OtherDomain),
		"may no longer create invites. None of their invites was still pending.")
	expectNotice(t, carol, "was used.")
	expectNotice(t, carol, "Your right to create invites for "+w.srv.Domain+" was revoked; none of your invites was still pending")
	expectContains(t, admin.Chat(t, w.component, "invites carol@"+w.srv.OtherDomain), "  used  ")
	if err := carol.Send(ctx, w.component, stanza.ChatMessage, "invite"); err != nil {
		t.Fatal(err)
	}
	// carol's refusal for this hour was used before the grant: silence now.
	carol.NoMessage(t, 2*time.Second)
}

// TestDiscoPingAndMessageTypes checks what a client sees of the component
// and that only chat and normal messages are commands.
func TestDiscoPingAndMessageTypes(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()

	info, err := disco.GetInfo(ctx, "", w.component, admin.Session())
	if err != nil {
		t.Fatalf("disco#info: %v", err)
	}
	if len(info.Identity) != 1 || info.Identity[0].Category != "component" {
		t.Errorf("identities %+v", info.Identity)
	}
	var feats []string
	for _, f := range info.Features {
		feats = append(feats, f.Var)
	}
	expectContains(t, strings.Join(feats, " "), "http://jabber.org/protocol/disco#info", "urn:xmpp:ping")
	if _, err := disco.GetInfo(ctx, "no-such-node", w.component, admin.Session()); !isCondition(err, stanza.ItemNotFound) {
		t.Errorf("disco#info on an unknown node: %v, want item-not-found", err)
	}
	if err := ping.Send(ctx, admin.Session(), w.component); err != nil {
		t.Errorf("ping the component: %v", err)
	}

	for _, typ := range []stanza.MessageType{stanza.HeadlineMessage, stanza.GroupChatMessage, stanza.ErrorMessage} {
		if err := admin.Send(ctx, w.component, typ, "help"); err != nil {
			t.Fatal(err)
		}
	}
	admin.NoMessage(t, 2*time.Second)

	if err := admin.Send(ctx, w.component, stanza.NormalMessage, "help"); err != nil {
		t.Fatal(err)
	}
	m := admin.Next(t)
	if m.Type != stanza.NormalMessage && m.Type != "" {
		t.Errorf("reply to a normal message has type %q", m.Type)
	}
	expectContains(t, m.Body, "grant <jid>")
	expectContains(t, admin.Chat(t, w.component, strings.Repeat("x", 5000)), "Too long: a command is at most 4096 bytes.")
	expectContains(t, admin.Chat(t, w.component, "frobnicate"), `Unknown command "frobnicate"`)
}

func isCondition(err error, cond stanza.Condition) bool {
	var se stanza.Error
	return errors.As(err, &se) && se.Condition == cond
}

// TestStateSurvivesBotRestart: grants and invites are on disk, not in
// memory.
func TestStateSurvivesBotRestart(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	carol := w.user(t, "carol", w.srv.OtherDomain)
	expectContains(t, admin.Chat(t, w.component, "grant carol@"+w.srv.OtherDomain), "may now create invites")
	expectNotice(t, carol, "You may now create account invites")
	reply := carol.Chat(t, w.component, "invite")
	uri := inviteURI(t, reply)

	w.bot.stop(t)
	w.bot = w.startBot(t)

	list := carol.Chat(t, w.component, "invites")
	expectContains(t, list, "pending")
	second := inviteURI(t, carol.Chat(t, w.component, "invite"))
	if second.Token == uri.Token {
		t.Error("second invite reused the first token")
	}
	expectContains(t, admin.Chat(t, w.component, "inviters"), "carol@"+w.srv.OtherDomain)
}

// TestReconnectsAfterServerRestart: Prosody dies and comes back; the bot
// reconnects by itself and serves the next invite.
func TestReconnectsAfterServerRestart(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	inviteURI(t, admin.Chat(t, w.component, "invite"))
	admin.Close()

	w.srv.Kill(t)
	w.srv.Restart(t)
	w.bot.awaitUp(t)

	admin = prosodytest.Login(t, w.srv, jid.MustParse("admin@"+w.srv.Domain), password)
	uri := inviteURI(t, admin.Chat(t, w.component, "invite"))
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if err := ibr.CheckToken(ctx, w.srv.IBRConfig(), uri.Token); err != nil {
		t.Errorf("token minted after the reconnect is not valid at the server: %v", err)
	}
	expectContains(t, w.logs.String(), "component link down", "component link up")
}

// TestServerRefusesToMint: without the component in the VirtualHost's
// admins, the inviter gets an apology and the log says what to configure.
func TestServerRefusesToMint(t *testing.T) {
	w := newWorld(t, prosodytest.WithoutComponentAdmin())
	admin := w.user(t, "admin", w.srv.Domain)
	reply := admin.Chat(t, w.component, "invite")
	expectContains(t, reply, "server refused to create the invite")
	if strings.Contains(reply, "preauth") {
		t.Errorf("got a token anyway: %s", reply)
	}
	expectContains(t, w.logs.String(), `admins = { \"`+w.srv.Component+`\" }`)
	expectContains(t, admin.Chat(t, w.component, "invites"), "no invites")
}

// TestSecretNeverLogged: the component secret appears nowhere in the logs,
// and tokens only shortened.
func TestSecretNeverLogged(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)
	uri := inviteURI(t, admin.Chat(t, w.component, "invite"))
	w.bot.stop(t)
	logs := w.logs.String()
	if strings.Contains(logs, w.srv.ComponentSecret) {
		t.Error("component secret in the logs")
	}
	if strings.Contains(logs, uri.Token) {
		t.Error("full token in the logs")
	}
}

// TestSecondInstanceGetsConflict: a second bot connecting as the same
// component is refused and keeps retrying with backoff; the first one keeps
// serving.
func TestSecondInstanceGetsConflict(t *testing.T) {
	w := newWorld(t)
	admin := w.user(t, "admin", w.srv.Domain)

	second := &world{srv: w.srv, component: w.component, dbPath: filepath.Join(t.TempDir(), "second.db"), logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(&teeWriter{t: t, buf: second.logs}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, second.config(t), log, func(c *bot.LinkConfig) {
			c.MinBackoff, c.MaxBackoff = 100*time.Millisecond, 400*time.Millisecond
		})
	}()
	testwait.ForNil(t, e2eTimeout, "the second instance to report conflict twice", func() error {
		if logs := second.logs.String(); strings.Count(logs, "conflict") < 2 {
			return fmt.Errorf("its logs:\n%s", logs)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("second instance shutdown: %v", err)
	}
	expectContains(t, second.logs.String(), "another process is connected as this component")
	inviteURI(t, admin.Chat(t, w.component, "invite"))
}
