package ibr_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/prosodytest"
	"mellium.im/xmpp/jid"
)

// testTimeout bounds each ibr call in these tests; generous for -race.
const testTimeout = 15 * time.Second

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

func TestRegisterConsumesToken(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	cfg := srv.IBRConfig()
	token := srv.MintToken(t)

	if err := ibr.CheckToken(ctx(t), cfg, token); err != nil {
		t.Fatalf("CheckToken(fresh) = %v, want nil", err)
	}
	// Checking does not consume.
	if err := ibr.CheckToken(ctx(t), cfg, token); err != nil {
		t.Fatalf("second CheckToken(fresh) = %v, want nil", err)
	}

	account, err := ibr.Register(ctx(t), cfg, token, "Newbie", "correct horse")
	if err != nil {
		t.Fatalf("Register = %v", err)
	}
	if want := jid.MustParse("newbie@" + srv.Domain); !account.Equal(want) {
		t.Errorf("Register returned %s, want %s", account, want)
	}

	c := prosodytest.Login(t, srv, account, "correct horse")
	if !c.JID().Bare().Equal(account) {
		t.Errorf("logged in as %s, want %s", c.JID(), account)
	}

	err = ibr.CheckToken(ctx(t), cfg, token)
	if !errors.Is(err, ibr.ErrTokenRejected) {
		t.Fatalf("CheckToken(used) = %v, want ErrTokenRejected", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error %q reveals the token", err)
	}

	_, err = ibr.Register(ctx(t), cfg, token, "second", "another pass")
	if !errors.Is(err, ibr.ErrTokenRejected) {
		t.Fatalf("Register(used token) = %v, want ErrTokenRejected", err)
	}
	// The refused registration must not have created the account.
	assertNoLogin(t, srv, jid.MustParse("second@"+srv.Domain), "another pass")
}

func TestBogusTokenRejected(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	cfg := srv.IBRConfig()
	const bogus = "NotARealToken123"

	for name, fn := range map[string]func() error{
		"CheckToken": func() error { return ibr.CheckToken(ctx(t), cfg, bogus) },
		"Register": func() error {
			_, err := ibr.Register(ctx(t), cfg, bogus, "mallory", "pw123456")
			return err
		},
		"CheckToken empty": func() error { return ibr.CheckToken(ctx(t), cfg, "") },
		"Register empty": func() error {
			_, err := ibr.Register(ctx(t), cfg, "", "mallory", "pw123456")
			return err
		},
	} {
		err := fn()
		if !errors.Is(err, ibr.ErrTokenRejected) {
			t.Errorf("%s: err = %v, want ErrTokenRejected", name, err)
			continue
		}
		if strings.Contains(err.Error(), bogus) {
			t.Errorf("%s: error %q reveals the token", name, err)
		}
	}
	assertNoLogin(t, srv, jid.MustParse("mallory@"+srv.Domain), "pw123456")
}

// TestConflictKeepsToken documents Prosody's behaviour (0.12 and 13): the
// username check comes after the invite check, and the token is only consumed
// when an account is actually created, so a user who picked a taken name can
// retry with the same invite.
func TestConflictKeepsToken(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	cfg := srv.IBRConfig()
	srv.AddUser(t, "taken", srv.Domain, "original")
	token := srv.MintToken(t)

	_, err := ibr.Register(ctx(t), cfg, token, "taken", "hijack")
	if !errors.Is(err, ibr.ErrConflict) {
		t.Fatalf("Register(taken) = %v, want ErrConflict", err)
	}
	// The existing account is untouched.
	prosodytest.Login(t, srv, jid.MustParse("taken@"+srv.Domain), "original")

	if err := ibr.CheckToken(ctx(t), cfg, token); err != nil {
		t.Fatalf("CheckToken after conflict = %v, want nil (token kept)", err)
	}
	if _, err := ibr.Register(ctx(t), cfg, token, "free", "pw123456"); err != nil {
		t.Fatalf("Register(free) with the same token = %v", err)
	}
	if err := ibr.CheckToken(ctx(t), cfg, token); !errors.Is(err, ibr.ErrTokenRejected) {
		t.Fatalf("CheckToken after success = %v, want ErrTokenRejected", err)
	}
}

// TestBoundJIDNamesTheCreatedAccount: Register reports the address it asked
// for (the JID library keeps ß), but Prosody creates the nodeprep'd
// "strasse"; logging in tells which.
func TestBoundJIDNamesTheCreatedAccount(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	cfg := srv.IBRConfig()
	requested, err := ibr.Register(ctx(t), cfg, srv.MintToken(t), "straße", "pw123456")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ibr.BoundJID(ctx(t), cfg, requested, "pw123456")
	if err != nil {
		t.Fatalf("BoundJID(%s) = %v", requested, err)
	}
	if want := jid.MustParse("strasse@" + srv.Domain); !got.Equal(want) {
		t.Errorf("BoundJID(%s) = %s, want %s", requested, got, want)
	}
	if _, err := ibr.BoundJID(ctx(t), cfg, requested, "wrong"); !errors.Is(err, ibr.ErrAuthFailed) {
		t.Errorf("BoundJID with a wrong password = %v, want ErrAuthFailed", err)
	}
}

// TestStorageRefusalNotAcceptable: a username Prosody cannot store (its
// file name would be too long) is answered with feature-not-implemented
// and "Error saving to storage". That is a refusal of this name, which the
// user can fix, not a server failure; the token stays valid.
func TestStorageRefusalNotAcceptable(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	cfg := srv.IBRConfig()
	token := srv.MintToken(t)

	_, err := ibr.Register(ctx(t), cfg, token, strings.Repeat("a", 1000), "pw123456")
	if !errors.Is(err, ibr.ErrNotAcceptable) {
		t.Fatalf("Register(1000 letters) = %v, want ErrNotAcceptable", err)
	}
	if err := ibr.CheckToken(ctx(t), cfg, token); err != nil {
		t.Fatalf("CheckToken after the refusal = %v, want nil (token kept)", err)
	}
}

func TestRegisterRejectsBadInputLocally(t *testing.T) {
	t.Parallel()
	// No server: these must be refused before any network traffic, so an
	// unreachable address proves nothing was dialled.
	cfg := ibr.Config{Addr: "127.0.0.1:1", Domain: "durare.test"}
	for _, tc := range []struct{ name, user, pass string }{
		{"empty username", "", "pw"},
		{"at sign", "a@b", "pw"},
		{"slash", "a/b", "pw"},
		{"space", "a b", "pw"},
		{"empty password", "alice", ""},
	} {
		_, err := ibr.Register(ctx(t), cfg, "sometoken", tc.user, tc.pass)
		if !errors.Is(err, ibr.ErrNotAcceptable) {
			t.Errorf("%s: err = %v, want ErrNotAcceptable", tc.name, err)
		}
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	cfg := srv.IBRConfig()
	account, err := ibr.Register(ctx(t), cfg, srv.MintToken(t), "shortlived", "pw123456")
	if err != nil {
		t.Fatal(err)
	}

	if err := ibr.Remove(ctx(t), cfg, account, "wrong"); !errors.Is(err, ibr.ErrAuthFailed) {
		t.Fatalf("Remove(wrong password) = %v, want ErrAuthFailed", err)
	}
	if err := ibr.Remove(ctx(t), cfg, account, "pw123456"); err != nil {
		t.Fatalf("Remove = %v", err)
	}
	assertNoLogin(t, srv, account, "pw123456")
	if err := ibr.Remove(ctx(t), cfg, account, "pw123456"); !errors.Is(err, ibr.ErrAuthFailed) {
		t.Fatalf("Remove(already removed) = %v, want ErrAuthFailed", err)
	}

	other := jid.MustParse("x@" + srv.OtherDomain)
	if err := ibr.Remove(ctx(t), cfg, other, "pw"); err == nil {
		t.Fatal("Remove of an account on another domain succeeded")
	}
}

func TestCheckerOneStream(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	used := srv.MintToken(t)
	if _, err := ibr.Register(ctx(t), srv.IBRConfig(), used, "early", "pw123456"); err != nil {
		t.Fatal(err)
	}
	valid1, valid2 := srv.MintToken(t), srv.MintToken(t)

	// Count TCP connections through a proxy to prove the checks share one.
	proxy := newCountingProxy(t, srv.C2SAddr)
	cfg := srv.IBRConfig()
	cfg.Addr = proxy.addr

	c, err := ibr.DialChecker(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	want := map[string]error{valid1: nil, used: ibr.ErrTokenRejected, valid2: nil}
	var wg sync.WaitGroup
	errs := make(map[string]error)
	var mu sync.Mutex
	// Concurrently, since the bot's sweep may fan out.
	for token := range want {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Check(ctx(t), token)
			mu.Lock()
			errs[token] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	for token, w := range want {
		got := errs[token]
		if (w == nil && got != nil) || (w != nil && !errors.Is(got, w)) {
			t.Errorf("Check(%s…) = %v, want %v", token[:4], got, w)
		}
	}
	if n := proxy.accepted.Load(); n != 1 {
		t.Errorf("checker used %d connections, want 1", n)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	// The check consumed nothing.
	if _, err := ibr.Register(ctx(t), srv.IBRConfig(), valid1, "late", "pw123456"); err != nil {
		t.Fatalf("Register after checking = %v", err)
	}
}

func TestTLSRequired(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	token := srv.MintToken(t)

	t.Run("unknown CA", func(t *testing.T) {
		cfg := srv.IBRConfig()
		cfg.TLS = &tls.Config{RootCAs: x509.NewCertPool()}
		err := ibr.CheckToken(ctx(t), cfg, token)
		if !errors.Is(err, ibr.ErrTLS) {
			t.Fatalf("err = %v, want ErrTLS", err)
		}
		var uerr x509.UnknownAuthorityError
		if !errors.As(err, &uerr) {
			t.Errorf("err = %v, want it to wrap x509.UnknownAuthorityError", err)
		}
	})
	t.Run("wrong server name", func(t *testing.T) {
		cfg := srv.IBRConfig()
		cfg.TLS = srv.TLSConfig("not-the-server.test")
		_, err := ibr.Register(ctx(t), cfg, token, "victim", "secret-pass")
		if !errors.Is(err, ibr.ErrTLS) {
			t.Fatalf("err = %v, want ErrTLS", err)
		}
	})
	t.Run("default server name is the domain", func(t *testing.T) {
		cfg := srv.IBRConfig()
		cfg.TLS = &tls.Config{RootCAs: srv.RootCAs()}
		if err := ibr.CheckToken(ctx(t), cfg, token); err != nil {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("plaintext-only server", func(t *testing.T) {
		fake := newPlaintextServer(t)
		cfg := ibr.Config{Addr: fake.addr, Domain: srv.Domain, TLS: srv.TLSConfig(srv.Domain)}
		_, err := ibr.Register(ctx(t), cfg, token, "victim", "secret-pass")
		if !errors.Is(err, ibr.ErrTLS) {
			t.Fatalf("err = %v, want ErrTLS", err)
		}
		seen := fake.received()
		for _, secret := range []string{token, "secret-pass", "victim"} {
			if strings.Contains(seen, secret) {
				t.Errorf("plaintext server received %q: %s", secret, seen)
			}
		}
		if !strings.Contains(seen, "starttls") {
			t.Errorf("client did not try STARTTLS; server saw %s", seen)
		}
	})
	// The token survived all of that.
	if err := ibr.CheckToken(ctx(t), srv.IBRConfig(), token); err != nil {
		t.Fatalf("CheckToken = %v", err)
	}
	assertNoLogin(t, srv, jid.MustParse("victim@"+srv.Domain), "secret-pass")
}

func TestTimeoutBoundsSilentServer(t *testing.T) {
	t.Parallel()
	// Accepts and never says a word.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	cfg := ibr.Config{Addr: l.Addr().String(), Domain: "durare.test", Timeout: 300 * time.Millisecond}
	start := time.Now()
	err = ibr.CheckToken(context.Background(), cfg, "tok")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CheckToken against a silent server = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("CheckToken took %v despite a 300ms timeout", d)
	}
}

// assertNoLogin fails the test if user can log in with pass.
func assertNoLogin(t *testing.T, srv *prosodytest.Server, user jid.JID, pass string) {
	t.Helper()
	c, err := prosodytest.Dial(ctx(t), srv, user, pass)
	if err == nil {
		c.Close()
		t.Fatalf("%s can log in, want login to fail", user)
	}
}

// countingProxy forwards TCP connections to a target and counts them.
type countingProxy struct {
	addr     string
	accepted atomic.Int32
}

// serveLoopback accepts connections on a loopback port until the test
// ends, handing each to handle in a goroutine, and returns the address.
func serveLoopback(t *testing.T, handle func(net.Conn, *sync.WaitGroup)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c, &wg)
			}()
		}
	}()
	return l.Addr().String()
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	p := &countingProxy{}
	p.addr = serveLoopback(t, func(in net.Conn, wg *sync.WaitGroup) {
		p.accepted.Add(1)
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			return
		}
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(out, in); out.Close() }()
		io.Copy(in, out)
		in.Close()
	})
	return p
}

// plaintextServer speaks just enough XMPP to offer registration without
// STARTTLS, and records what the client sent.
type plaintextServer struct {
	addr string
	mu   sync.Mutex
	seen strings.Builder
}

func (p *plaintextServer) received() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen.String()
}

func newPlaintextServer(t *testing.T) *plaintextServer {
	t.Helper()
	p := &plaintextServer{}
	p.addr = serveLoopback(t, func(c net.Conn, _ *sync.WaitGroup) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		r := bufio.NewReader(c)
		buf := make([]byte, 4096)
		wroteHeader := false
		for {
			n, err := r.Read(buf)
			p.mu.Lock()
			p.seen.Write(buf[:n])
			got := p.seen.String()
			p.mu.Unlock()
			if err != nil {
				return
			}
			switch {
			case !wroteHeader && strings.Contains(got, "<stream:stream"):
				wroteHeader = true
				io.WriteString(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' `+
					`xmlns:stream='http://etherx.jabber.org/streams' from='durare.test' id='plain1' version='1.0'>`+
					`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>`+
					`<register xmlns='http://jabber.org/features/iq-register'/><register xmlns='urn:xmpp:ibr-token:0'/></stream:features>`)
			case strings.Contains(got, "starttls"):
				io.WriteString(c, `<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>`)
				return
			}
		}
	})
	return p
}

// TestCheckerAfterServerCrash: a Checker whose stream died reports it as
// net.ErrClosed (redial), never as a rejected token.
func TestCheckerAfterServerCrash(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	token := srv.MintToken(t)
	c, err := ibr.DialChecker(ctx(t), srv.IBRConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Check(ctx(t), token); err != nil {
		t.Fatalf("Check before crash = %v", err)
	}

	srv.Kill(t)
	err = c.Check(ctx(t), token)
	if !errors.Is(err, net.ErrClosed) || errors.Is(err, ibr.ErrTokenRejected) {
		t.Fatalf("Check after crash = %v, want net.ErrClosed", err)
	}

	srv.Restart(t)
	c2, err := ibr.DialChecker(ctx(t), srv.IBRConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	// Tokens are stored on disk and survive the crash.
	if err := c2.Check(ctx(t), token); err != nil {
		t.Fatalf("Check after restart = %v", err)
	}
}

// TestResetTokenBound: a Prosody that binds a password reset token to its
// account (13.0.8) refuses another username with it, which Register
// reports as ErrTokenBound (still ErrNotAcceptable), and the token stays
// valid; one that does not (13.0.1) creates the other account. Prosody
// 0.12 has no password resets.
func TestResetTokenBound(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	cfg := srv.IBRConfig()
	owner := srv.AddUser(t, "owner", srv.Domain, "owner password")
	token, err := srv.MintResetToken(owner)
	if !srv.HasRoles() {
		if err == nil {
			t.Fatalf("Prosody %s made a reset link; this test expects that only 13 has them", srv.Version)
		}
		return
	}
	if err != nil {
		t.Fatalf("reset link: %v", err)
	}
	_, err = ibr.Register(ctx(t), cfg, token, "stranger", "stranger password")
	if !srv.BindsResetTokens() {
		if err != nil {
			t.Fatalf("Prosody %s lets a reset token create another account; Register = %v", srv.Version, err)
		}
		return
	}
	if !errors.Is(err, ibr.ErrTokenBound) || !errors.Is(err, ibr.ErrNotAcceptable) {
		t.Fatalf("Register(another name with a reset token) = %v, want ErrTokenBound wrapping ErrNotAcceptable", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error %q reveals the token", err)
	}
	if err := ibr.CheckToken(ctx(t), cfg, token); err != nil {
		t.Errorf("CheckToken after the refusal = %v, want the token still valid", err)
	}
	// A refusal of the name alone is not a bound token.
	plain := srv.MintToken(t)
	if _, err := ibr.Register(ctx(t), cfg, plain, "owner", "x"); errors.Is(err, ibr.ErrTokenBound) {
		t.Errorf("Register(taken name, plain invite) = %v, not a bound token", err)
	}
}
