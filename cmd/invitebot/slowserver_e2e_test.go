package main

// A server that takes 20 s to answer (issue 22 #2): Prosody busy on its
// one thread, as with many tokens held. A proxy between the bot's component
// link and Prosody holds back what the server sends.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/bot"
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/store"
)

// serverStall is how long the slow server takes to answer.
const serverStall = 20 * time.Second

// stallProxy forwards one TCP connection at a time to target; while
// stalled, what the server sends reaches the client only when the stall
// ends, in order, as from a server that is busy and then catches up.
type stallProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	until time.Time // server->client bytes wait until then
	// on, when set, stalls the server for stallFor once the client sends
	// bytes containing it; with drop, the connection is cut then too,
	// after dropAfter.
	on        []byte
	stallFor  time.Duration
	drop      bool
	dropAfter time.Duration
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

// stallOn makes the server take d to answer once the client sent what
// holds pattern: what the server sends from then on arrives d later.
func (p *stallProxy) stallOn(pattern string, d time.Duration) {
	p.mu.Lock()
	p.on, p.stallFor = []byte(pattern), d
	p.mu.Unlock()
}

// dropOn cuts the connection after after once the client sent what holds
// pattern, what the server answers meanwhile held back and lost: the link
// dropping while the server works on a request.
func (p *stallProxy) dropOn(pattern string, after time.Duration) {
	p.mu.Lock()
	p.on, p.stallFor, p.drop, p.dropAfter = []byte(pattern), time.Hour, true, after
	p.mu.Unlock()
}

// toServer copies the client's bytes to the server, arming the stall (and
// the drop) when they hold its pattern.
func (p *stallProxy) toServer(s, c net.Conn) {
	defer s.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.on != nil && bytes.Contains(buf[:n], p.on) {
				p.until, p.on = time.Now().Add(p.stallFor), nil
				if p.drop {
					p.drop = false
					time.AfterFunc(p.dropAfter, func() {
						c.Close()
						s.Close()
						p.mu.Lock()
						p.until = time.Time{}
						p.mu.Unlock()
					})
				}
			}
			p.mu.Unlock()
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		go p.toServer(s, c)
		go p.fromServer(c, s)
	}
}

// fromServer copies the server's bytes to the client, each read held until
// the stall in force when it was read is over.
func (p *stallProxy) fromServer(c, s net.Conn) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			p.mu.Lock()
			until := p.until
			p.mu.Unlock()
			for time.Now().Before(until) {
				// The server is busy: that is what is simulated. A drop
				// ends the stall, and the write below then fails.
				time.Sleep(10 * time.Millisecond)
				p.mu.Lock()
				until = p.until
				p.mu.Unlock()
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// topLevelToken matches a token's entry in Prosody's internal token file.
var topLevelToken = regexp.MustCompile(`(?m)^\t\["`)

// serverTokens counts the tokens Prosody holds for its domain.
func serverTokens(t *testing.T, srv *prosodytest.Server) int {
	t.Helper()
	host := strings.ReplaceAll(url.PathEscape(srv.Domain), ".", "%2e")
	raw, err := os.ReadFile(filepath.Join(srv.DataDir, host, "invite_token.dat"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(topLevelToken.FindAll(raw, -1))
}

// TestSlowServerLosesNothing: the server takes 20 s to answer the mint
// (and everything else it sends from the moment the mint reaches it, pings
// included). The bot keeps
// its link, the inviter gets the invite, and the one token the server
// minted is the one the database holds: no request lost, no token left
// unknown at the server. The link's keepalive runs with the defaults.
func TestSlowServerLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 20 s stall")
	}
	srv := prosodytest.Start(t)
	proxy := newStallProxy(t, srv.ComponentAddr)
	w := &world{srv: srv, component: jid.MustParse(srv.Component), dbPath: filepath.Join(t.TempDir(), "invitebot.db"),
		logs: &syncBuffer{}, tune: func(c *config.Config) { c.XMPP.Server = proxy.addr() }}
	rb := w.startBotDefaultKeepalive(t)
	admin := w.user(t, "admin", srv.Domain)

	proxy.stallOn("urn:xmpp:invite#create-account", serverStall)
	ctx, cancel := context.WithTimeout(context.Background(), serverStall+25*time.Second)
	defer cancel()
	if err := admin.Send(ctx, w.component, stanza.ChatMessage, "invite"); err != nil {
		t.Fatal(err)
	}
	reply, err := admin.Receive(ctx, func(m prosodytest.Message) bool { return strings.Contains(m.Body, "preauth=") })
	if err != nil {
		t.Fatalf("no invite within %s of a %s stall: %v\n%s", serverStall+25*time.Second, serverStall, err, w.logs.String())
	}
	select {
	case <-rb.ups:
		t.Errorf("the link was rebuilt during the stall: a slow server was taken for a dead one")
	default:
	}
	rb.stop(t)
	_, token, _ := strings.Cut(reply.Body, "preauth=")
	token = strings.FieldsFunc(token, func(r rune) bool { return r == ';' || r == '&' || r == ' ' || r == '\n' })[0]
	st, err := store.Open(context.Background(), w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	inv, err := st.InviteByToken(context.Background(), token)
	if err != nil || inv.State != store.StatePending {
		t.Errorf("the token handed out is not a pending invite in the database: %+v, %v", inv, err)
	}
	if held := serverTokens(t, srv); held != 1 {
		t.Errorf("the server holds %d tokens, want the 1 the database knows", held)
	}
}

// startBotDefaultKeepalive is startBot with the link's keepalive as
// deployed (30 s pings, 10 s timeout), which a server busy for 20 s must
// not cut.
func (w *world) startBotDefaultKeepalive(t *testing.T) *runningBot {
	t.Helper()
	log := slog.New(slog.NewTextHandler(&teeWriter{t: t, buf: w.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	rb := &runningBot{cancel: cancel, done: make(chan error, 1), ups: make(chan struct{}, 16)}
	tune := func(c *bot.LinkConfig) {
		c.MinBackoff = 100 * time.Millisecond
		c.MaxBackoff = time.Second
		c.OnUp = func() { rb.ups <- struct{}{} }
	}
	go func() { rb.done <- serve(ctx, w.config(t), log, tune) }()
	rb.awaitUp(t)
	t.Cleanup(func() { rb.stop(t) })
	return rb
}

// TestLinkDropMidMint: the link drops while the server mints (the IQ
// reached Prosody, its answer never comes back). The inviter still gets an
// answer, after the link is back: try again. The token the server minted
// for the lost answer is deleted at the server by the next sweeps
// (mod_invitebot lists the bot's recent tokens), so none is left valid that
// nobody knows of.
func TestLinkDropMidMint(t *testing.T) {
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule(), prosodytest.WithOfflineMessages())
	proxy := newStallProxy(t, srv.ComponentAddr)
	w := &world{srv: srv, component: jid.MustParse(srv.Component), dbPath: filepath.Join(t.TempDir(), "invitebot.db"),
		logs: &syncBuffer{}, tune: func(c *config.Config) {
			c.XMPP.Server = proxy.addr()
			c.Invites.CheckInterval = time.Second
		}}
	rb := w.startBot(t)
	w.awaitLog(t, "prosody module mod_invitebot loaded")
	admin := w.user(t, "admin", srv.Domain)

	proxy.dropOn("urn:xmpp:invite#create-account", 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := admin.Send(ctx, w.component, stanza.ChatMessage, "invite"); err != nil {
		t.Fatal(err)
	}
	reply, err := admin.Receive(ctx, func(m prosodytest.Message) bool { return m.Body != "" })
	if err != nil {
		t.Fatalf("no answer to a request whose link dropped: %v", err)
	}
	if !strings.Contains(reply.Body, "try again") {
		t.Errorf("answer after the drop = %q, want a try again", reply.Body)
	}
	select {
	case <-rb.ups:
	default:
		t.Error("the link did not drop: the test did not test anything")
	}
	if n := serverTokens(t, srv); n != 1 {
		t.Fatalf("the server holds %d tokens after the drop, want the 1 it minted for the lost answer", n)
	}
	// The server minted a token for the lost answer; the sweeps delete it.
	testwait.For(t, 30*time.Second, "the token of the lost mint to be deleted at the server", func() bool {
		return serverTokens(t, srv) == 0
	})
}
