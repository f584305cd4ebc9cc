package prosody_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// componentLink connects to srv as its component and serves the session,
// so that IQs sent on it get their answers.
func componentLink(t testing.TB, srv *prosodytest.Server) *xmpp.Session {
	t.Helper()
	return componentLinkWith(t, srv, nil)
}

// componentLinkWith is componentLink with h serving what the server sends.
func componentLinkWith(t testing.TB, srv *prosodytest.Server, h xmpp.Handler) *xmpp.Session {
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
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(h)
	}()
	t.Cleanup(func() {
		s.Close()
		conn.Close()
		<-done
	})
	return s
}

// topLevelKey matches a token's entry in Prosody's internal token file,
// one tab in: the entries nested in an invite are indented further.
var topLevelKey = regexp.MustCompile(`(?m)^\t\["`)

// heldTokens counts the tokens Prosody's internal storage holds for srv's
// domain, expired ones included: what makes its minting slower.
func heldTokens(t *testing.T, srv *prosodytest.Server) int {
	t.Helper()
	host := strings.ReplaceAll(url.PathEscape(srv.Domain), ".", "%2e")
	raw, err := os.ReadFile(filepath.Join(srv.DataDir, host, "invite_token.dat"))
	if errors.Is(err, os.ErrNotExist) {
		return 0 // Prosody removes the file with its last token
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(topLevelKey.FindAll(raw, -1))
}

// TestModuleDeletesExpiredTokens: Prosody keeps an expired token in its
// storage, and mod_invitebot deletes it all the same, one (delete, what the
// bot asks when an invite expires) or all of the bot's at once (purge, what
// the bot asks once after an upgrade). Tokens the bot did not mint stay.
func TestModuleDeletesExpiredTokens(t *testing.T) {
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule(), prosodytest.WithInviteExpiry(1))
	mod := prosody.NewModule(jid.MustParse(srv.Domain), jid.MustParse(srv.Component), componentLink(t, srv),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	var bots []string
	for range 3 {
		bots = append(bots, srv.MintToken(t))
	}
	srv.MintAdminToken(t)
	if got := heldTokens(t, srv); got != 4 {
		t.Fatalf("the server holds %d tokens after four mints, want 4", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testwait.For(t, 10*time.Second, "the tokens to expire", func() bool {
		return errors.Is(ibr.CheckToken(ctx, srv.IBRConfig(), bots[2]), ibr.ErrTokenRejected)
	})
	if got := heldTokens(t, srv); got != 4 {
		t.Fatalf("the server holds %d tokens once they expired, want all 4 still (Prosody never purges them)", got)
	}

	if err := mod.Delete(ctx, bots[0]); err != nil {
		t.Fatalf("delete an expired token: %v", err)
	}
	if got := heldTokens(t, srv); got != 3 {
		t.Errorf("after deleting an expired token the server holds %d, want 3", got)
	}
	n, err := mod.PurgeExpired(ctx)
	if err != nil {
		t.Fatalf("purge: %v", err)
	}
	if n != 2 {
		t.Errorf("purge deleted %d tokens, want the bot's other 2", n)
	}
	if got := heldTokens(t, srv); got != 1 {
		t.Errorf("after the purge the server holds %d tokens, want 1 (the admin's)", got)
	}
	if n, err := mod.PurgeExpired(ctx); err != nil || n != 0 {
		t.Errorf("a second purge: %d, %v; want 0, nil", n, err)
	}
}

// dayIssuer mints at the server and says the token expires three days
// after the test's clock: a simulated year passes in a minute, and the
// server's own expiry (a week of real time) is never reached.
type dayIssuer struct {
	prosody.Issuer
	now func() time.Time
}

func (d dayIssuer) Mint(ctx context.Context) (invites.Minted, error) {
	m, err := d.Issuer.Mint(ctx)
	m.Expires = d.now().Add(72 * time.Hour)
	return m, err
}

// acceptingRegistrar is the server's client port, except that its token
// checks accept every token without asking: the year below is about what
// the server holds, and a real check a day (a TLS stream each) would make
// it take a minute. A used invite then stays pending until it expires.
type acceptingRegistrar struct{ homeserver.Registrar }

func (acceptingRegistrar) DialChecker(context.Context) (invites.TokenChecker, error) {
	return acceptAll{}, nil
}

type acceptAll struct{}

func (acceptAll) Check(context.Context, string) error { return nil }
func (acceptAll) Close() error                        { return nil }

// TestYearOfExpiringTokens: a simulated year in which an invite is made
// every day, one in seven is used and the rest expire three days later. With
// mod_invitebot the tokens held at the server never outnumber the invites
// really pending: each expired one is deleted when the bot settles it, so
// Prosody's minting does not slow down over the year.
func TestYearOfExpiringTokens(t *testing.T) {
	days := 365
	if testing.Short() {
		days = 30
	}
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule())
	link := componentLink(t, srv)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mod := prosody.NewModule(jid.MustParse(srv.Domain), jid.MustParse(srv.Component), link, log)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if st, err := mod.Detect(ctx); err != nil || st != invites.ModulePresent {
		t.Fatalf("module: %v, %v", st, err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	now := time.Now().UTC()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	const admin = "admin@" + prosodytest.DefaultDomain
	svc := invites.NewService(invites.Options{
		Store: st, Domain: srv.Domain, Admins: map[string]bool{admin: true},
		Issuer:    dayIssuer{prosody.NewIssuer(jid.MustParse(srv.Domain), jid.MustParse(srv.Component), link), clock},
		Module:    mod,
		Registrar: acceptingRegistrar{homeserver.Registrar{C2S: srv.IBRConfig()}},
		Now:       clock, Log: log,
	})
	actor, err := svc.Actor(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	most, used := 0, 0
	for day := range days {
		inv, err := svc.Create(ctx, actor)
		if err != nil {
			t.Fatalf("day %d: create: %v", day, err)
		}
		if day%7 == 0 {
			_, token, _ := strings.Cut(inv.URI, "preauth=")
			token, _, _ = strings.Cut(token, ";")
			if _, err := ibr.Register(ctx, srv.IBRConfig(), token, fmt.Sprintf("day%d", day), "correct horse battery"); err != nil {
				t.Fatalf("day %d: register: %v", day, err)
			}
			used++
		}
		mu.Lock()
		now = now.Add(24 * time.Hour)
		mu.Unlock()
		if err := svc.CheckPending(ctx); err != nil {
			t.Fatalf("day %d: sweep: %v", day, err)
		}
		pending, err := st.PendingPage(ctx, store.PendingRef{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		held := heldTokens(t, srv)
		if held > len(pending) {
			t.Fatalf("day %d: the server holds %d tokens for %d pending invites", day, held, len(pending))
		}
		most = max(most, held)
	}
	t.Logf("%d days, %d invites made, %d used: the server never held more than %d tokens", days, days, used, most)
}

// losingIssuer mints at the server, but for the mint named by lose it
// reports the answer lost, as when the link drops while the server mints.
type losingIssuer struct {
	prosody.Issuer
	mu   sync.Mutex
	n    int
	lose int
	lost []string
}

func (l *losingIssuer) Mint(ctx context.Context) (invites.Minted, error) {
	m, err := l.Issuer.Mint(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if err == nil && l.n == l.lose {
		l.lost = append(l.lost, m.Token)
		return invites.Minted{}, fmt.Errorf("mint: %w: the link dropped before the answer came", invites.ErrServerUnreachable)
	}
	return m, err
}

// TestLostMintTokenDeleted: the server minted a token whose answer never
// reached the bot. With mod_invitebot the next sweep finds it among the
// bot's recent tokens, does not know it, and deletes it at the server; the
// token of the invite the bot did hand out stays valid.
func TestLostMintTokenDeleted(t *testing.T) {
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule())
	link := componentLink(t, srv)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	mod := prosody.NewModule(jid.MustParse(srv.Domain), jid.MustParse(srv.Component), link, log)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if st, err := mod.Detect(ctx); err != nil || st != invites.ModulePresent {
		t.Fatalf("module: %v, %v", st, err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The bot's clock runs ahead of the server's by what a sweep waits
	// before it judges a token (clock skew), so the test need not wait.
	var mu sync.Mutex
	offset := time.Duration(0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(offset)
	}
	issuer := &losingIssuer{Issuer: prosody.NewIssuer(jid.MustParse(srv.Domain), jid.MustParse(srv.Component), link), lose: 2}
	const admin = "admin@" + prosodytest.DefaultDomain
	svc := invites.NewService(invites.Options{
		Store: st, Domain: srv.Domain, Admins: map[string]bool{admin: true}, Issuer: issuer, Module: mod,
		Registrar: acceptingRegistrar{homeserver.Registrar{C2S: srv.IBRConfig()}}, Now: clock, Log: log,
	})
	actor, err := svc.Actor(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	handed, err := svc.Create(ctx, actor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, actor); err == nil {
		t.Fatal("the mint whose answer was lost succeeded")
	}
	lost := issuer.lost[0]
	if err := ibr.CheckToken(ctx, srv.IBRConfig(), lost); err != nil {
		t.Fatalf("the lost token is not valid at the server to begin with: %v", err)
	}
	mu.Lock()
	offset = time.Minute
	mu.Unlock()
	if err := svc.CheckPending(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ibr.CheckToken(ctx, srv.IBRConfig(), lost); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Errorf("the token nobody was handed is still valid at the server after a sweep: %v", err)
	}
	_, token, _ := strings.Cut(handed.URI, "preauth=")
	if err := ibr.CheckToken(ctx, srv.IBRConfig(), token); err != nil {
		t.Errorf("the token handed out no longer works: %v", err)
	}
}

// sqlTokens counts the invite tokens in srv's SQLite storage.
func sqlTokens(t *testing.T, srv *prosodytest.Server) int {
	t.Helper()
	out, err := exec.Command("sqlite3", filepath.Join(srv.DataDir, "prosody.sqlite"),
		"SELECT count(*) FROM prosody WHERE store='invite_token';").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("sqlite3 said %q", out)
	}
	return n
}

// TestModuleWithSQLTokens: with the tokens in SQL (storage = {
// invite_token = "sql" }) the module finds, lists and purges the bot's
// tokens as with the internal files: its reads and writes go through
// Prosody's storage API, whose keyval and map views differ by driver.
func TestModuleWithSQLTokens(t *testing.T) {
	srv := prosodytest.Start(t, prosodytest.WithInvitebotModule(), prosodytest.WithSQLTokens(), prosodytest.WithInviteExpiry(2))
	mod := prosody.NewModule(jid.MustParse(srv.Domain), jid.MustParse(srv.Component), componentLink(t, srv),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := time.Now().Add(-time.Minute)
	bots := []string{srv.MintToken(t), srv.MintToken(t)}
	srv.MintAdminToken(t)
	if n := sqlTokens(t, srv); n != 3 {
		t.Fatalf("SQLite holds %d tokens after three mints, want 3 (is the storage SQL?)", n)
	}
	listed, err := mod.MintedSince(ctx, before)
	if err != nil {
		t.Fatalf("minted: %v", err)
	}
	var got []string
	for _, tok := range listed {
		got = append(got, tok.Token)
	}
	slices.Sort(got)
	slices.Sort(bots)
	if !slices.Equal(got, bots) {
		t.Errorf("the module lists %q as the bot's, want %q", got, bots)
	}
	testwait.For(t, 10*time.Second, "the tokens to expire", func() bool {
		return errors.Is(ibr.CheckToken(ctx, srv.IBRConfig(), bots[1]), ibr.ErrTokenRejected)
	})
	if err := mod.Delete(ctx, bots[0]); err != nil {
		t.Fatalf("delete an expired token: %v", err)
	}
	if n := sqlTokens(t, srv); n != 2 {
		t.Errorf("after deleting an expired token SQLite holds %d, want 2", n)
	}
	if n, err := mod.PurgeExpired(ctx); err != nil || n != 1 {
		t.Errorf("purge: %d, %v; want 1, nil", n, err)
	}
	if n := sqlTokens(t, srv); n != 1 {
		t.Errorf("after the purge SQLite holds %d tokens, want 1 (the admin's)", n)
	}
}
