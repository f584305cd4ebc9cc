package invites_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// Browser registration against the real Prosody: what the service records
// must be what the server did, whatever else happens to the invite at the
// same moment.

const (
	// testTimeout bounds each test's conversation with the server.
	testTimeout = 60 * time.Second
	// testAdmin administers the bot in these tests.
	testAdmin = "admin@" + prosodytest.DefaultOtherDomain
	// testPass is every new account's password.
	testPass = "correct horse battery"
	// answerDelay is how late the server's answers reach a registration
	// through slowProxy: far longer than a cancel on loopback takes, so a
	// cancel started once the server created the account always lands
	// before the registration hears of it.
	answerDelay = 250 * time.Millisecond
)

// harness is a service with its own store in front of a real Prosody.
type harness struct {
	srv  *prosodytest.Server
	st   *store.Store
	svc  *invites.Service
	logs *syncBuffer
}

func newHarness(t *testing.T, srv *prosodytest.Server, c2s ibr.Config) *harness {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := invites.NewService(invites.Options{
		Store:     st,
		Domain:    srv.Domain,
		Admins:    map[string]bool{testAdmin: true},
		Registrar: homeserver.Registrar{C2S: c2s},
		Log:       log,
	})
	return &harness{srv: srv, st: st, svc: svc, logs: logs}
}

// addInvite mints a token at the server the way an admin would and records
// it as a pending invite of inviter.
func (h *harness) addInvite(t *testing.T, inviter string) store.Invite {
	t.Helper()
	token := h.srv.MintToken(t)
	now := time.Now().UTC()
	inv, err := h.st.AddInvite(context.Background(), store.Invite{
		Token: token, URI: "xmpp:" + h.srv.Domain + "?register;preauth=" + token, Domain: h.srv.Domain,
		Inviter: inviter, Created: now, Expires: now.Add(24 * time.Hour), State: store.StatePending,
	}, store.AuditEntry{Time: now, Actor: inviter, Action: invites.ActionInviteCreate})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func (h *harness) admin(t *testing.T) invites.Actor {
	t.Helper()
	a, err := h.svc.Actor(context.Background(), testAdmin)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// assertUsedBy checks that the store records invite id as used by account
// and that whoinvited finds it.
func (h *harness) assertUsedBy(t *testing.T, id string, account jid.JID) {
	t.Helper()
	ctx := context.Background()
	got, err := h.st.Invite(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateUsed || got.UsedBy != account.String() {
		t.Errorf("invite is %s, used by %q; want used by %s", got.State, got.UsedBy, account)
	}
	invs, err := h.svc.WhoInvited(ctx, h.admin(t), account.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(invs) != 1 || invs[0].ID != id {
		t.Errorf("whoinvited %s = %+v, want invite %s", account, invs, id)
	}
}

type regResult struct {
	account jid.JID
	err     error
}

// TestRegistrationRacingCancel: an admin cancels the invite (or revokes its
// inviter) while a browser registration with it is under way. The account
// exists once the server created it, so the registration must win: the
// invite ends used by that account, whoinvited knows it, and the cancel
// reports it used instead of claiming its link no longer works.
func TestRegistrationRacingCancel(t *testing.T) {
	srv := prosodytest.Start(t)
	const inviter = "carol@" + prosodytest.DefaultOtherDomain
	for _, op := range []string{"cancel", "revoke"} {
		t.Run(op, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			// The registration is the proxy's first connection: its answers
			// come late, everything after it (the cancel's checks) on time.
			c2s := srv.IBRConfig()
			c2s.Addr = slowProxy(t, srv.C2SAddr, answerDelay)
			h := newHarness(t, srv, c2s)
			admin := h.admin(t)
			if _, _, err := h.svc.Grant(ctx, admin, inviter, invites.GrantOptions{}); err != nil {
				t.Fatal(err)
			}
			inv := h.addInvite(t, inviter)

			done := make(chan regResult, 1)
			go func() {
				j, err := h.svc.RegisterAccount(ctx, inv.ID, op+"-racer", testPass)
				done <- regResult{j, err}
			}()
			waitTokenSpent(t, ctx, srv, inv.Token, done)

			switch op {
			case "cancel":
				got, err := h.svc.Cancel(ctx, admin, inv.ID)
				if !errors.Is(err, invites.ErrNotPending) {
					t.Errorf("Cancel = %v, want ErrNotPending (the registration came first)", err)
				}
				if got.State != invites.StateUsed || got.UsedBy != op+"-racer@"+srv.Domain {
					t.Errorf("Cancel reports the invite %s, used by %q; want used by %s-racer@%s",
						got.State, got.UsedBy, op, srv.Domain)
				}
			case "revoke":
				res, err := h.svc.Revoke(ctx, admin, inviter)
				if err != nil {
					t.Fatalf("Revoke = %v", err)
				}
				if res.Cancelled != 0 {
					t.Errorf("Revoke cancelled %d invites, want 0 (the only one was being used)", res.Cancelled)
				}
			}

			var r regResult
			select {
			case r = <-done:
			case <-ctx.Done():
				t.Fatal("registration did not finish")
			}
			want := jid.MustParse(op + "-racer@" + srv.Domain)
			if r.err != nil || !r.account.Equal(want) {
				t.Fatalf("RegisterAccount = %v, %v; want %s", r.account, r.err, want)
			}
			h.assertUsedBy(t, inv.ID, want)
			prosodytest.Login(t, srv, want, testPass)
			if strings.Contains(h.logs.String(), "not marked used") {
				t.Error("the log says the registration was not recorded")
			}
		})
	}
}

// TestRegisterAccountRecordsServerJID: the server maps usernames with its
// own rules (Prosody 0.12: nodeprep, which folds ß to ss and a final sigma
// to σ). The account recorded, returned and shown is the one it created.
func TestRegisterAccountRecordsServerJID(t *testing.T) {
	srv := prosodytest.Start(t)
	h := newHarness(t, srv, srv.IBRConfig())
	for _, tt := range []struct{ typed, created string }{
		{"straße", "strasse"},
		{"Λόγος", "λόγοσ"},
		{"Alice", "alice"},
	} {
		t.Run(tt.typed, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			inv := h.addInvite(t, testAdmin)
			got, err := h.svc.RegisterAccount(ctx, inv.ID, tt.typed, testPass)
			if err != nil {
				t.Fatalf("RegisterAccount(%q) = %v", tt.typed, err)
			}
			want := jid.MustParse(tt.created + "@" + srv.Domain)
			if !got.Equal(want) {
				t.Errorf("RegisterAccount(%q) = %s, want %s", tt.typed, got, want)
			}
			h.assertUsedBy(t, inv.ID, want)
			c := prosodytest.Login(t, srv, want, testPass)
			if bound := c.JID().Bare(); !bound.Equal(want) {
				t.Errorf("logged in as %s, want %s", bound, want)
			}
		})
	}
}

// TestRegisterAccountRefusesUnusableUsernames: names the server cannot
// store, and names that imitate others, are refused as the user's to fix
// (ErrUsernameRefused, a form error), not as a failure on our side, and
// leave the invite usable.
func TestRegisterAccountRefusesUnusableUsernames(t *testing.T) {
	srv := prosodytest.Start(t)
	h := newHarness(t, srv, srv.IBRConfig())
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	inv := h.addInvite(t, testAdmin)
	for _, tt := range []struct{ name, username string }{
		{"50 Cyrillic letters", strings.Repeat("ж", 50)},
		{"1000 ASCII letters", strings.Repeat("a", 1000)},
		{"Cyrillic a in Latin name", "\u0430dmin"},
		{"all-Cyrillic look-alike", "\u0455\u0441\u043e\u0440\u0435"}, // "ѕсоре", not "scope"
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.svc.RegisterAccount(ctx, inv.ID, tt.username, testPass)
			if !errors.Is(err, invites.ErrUsernameRefused) {
				t.Errorf("RegisterAccount = %v, want ErrUsernameRefused", err)
			}
		})
	}
	// The invite still works for a good name.
	got, err := h.svc.RegisterAccount(ctx, inv.ID, "good-name", testPass)
	if err != nil {
		t.Fatalf("RegisterAccount(good-name) after the refusals = %v", err)
	}
	h.assertUsedBy(t, inv.ID, got)
}

// waitTokenSpent returns once the server refuses token, that is once a
// registration with it created its account, or fails the test.
func waitTokenSpent(t *testing.T, ctx context.Context, srv *prosodytest.Server, token string, done <-chan regResult) {
	t.Helper()
	checker, err := ibr.DialChecker(ctx, srv.IBRConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer checker.Close()
	for {
		err := checker.Check(ctx, token)
		switch {
		case errors.Is(err, ibr.ErrTokenRejected):
			return
		case err != nil:
			t.Fatalf("check token: %v", err)
		}
		select {
		case r := <-done:
			t.Fatalf("registration ended (%v, %v) before the server consumed the token", r.account, r.err)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// slowProxy forwards TCP connections to addr and returns its own address.
// The server's bytes on the first connection arrive delay late, chunk by
// chunk; every later connection passes untouched.
func slowProxy(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", addr)
			if err != nil {
				client.Close()
				continue
			}
			track(client)
			track(server)
			d := time.Duration(0)
			if n == 0 {
				d = delay
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(server, client)
				server.Close()
			}()
			go func() {
				defer wg.Done()
				defer client.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := server.Read(buf)
					if n > 0 {
						time.Sleep(d)
						if _, werr := client.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// syncBuffer collects logs written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
