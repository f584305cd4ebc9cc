package minter

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
	"durare.org/invitebot/invites"
)

// Test tunables.
const (
	// upTimeout bounds waiting for a login, a drop or an answer.
	upTimeout = 15 * time.Second
	// encodeTimeout is each sender's context: generous, because the point
	// is that it is cancelled right after the IQ goes out, not that it
	// expires.
	encodeTimeout = 20 * time.Second
)

// minterPassword is distinctive so a leak into the log is easy to spot.
const minterPassword = "m1nter-pass-quux"

// minterRole is prosody.MinterRoleLua as the harness writes it
// (TestMinterRoleLuaMatchesHarness keeps the two alike).
var minterRole = prosodytest.Role{
	Name:     prosody.MinterRole,
	Inherits: []string{"prosody:registered"},
	Allow:    []string{"adhoc:" + invites.NodeCreateAccount, "adhoc:" + prosody.NodePasswordReset, "adhoc:" + prosody.NodeUserStats},
}

// deleteUserNode is XEP-0133's delete-user: an admin command outside the
// minter role.
const deleteUserNode = "http://jabber.org/protocol/admin#delete-user"

// syncLog keeps a test's log lines for assertions and passes them to t.Log.
type syncLog struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// await polls until the log holds want or d passed.
func (l *syncLog) await(t *testing.T, want string, d time.Duration) {
	t.Helper()
	testwait.For(t, d, fmt.Sprintf("the log to hold %q", want), func() bool { return strings.Contains(l.String(), want) })
}

// minterServer starts a Prosody whose component is not an admin, with the
// minter role defined (13) or the account in admins (0.12), and creates
// the minter account accordingly. privileged false creates the account
// without either.
func minterServer(t *testing.T, privileged bool) (*prosodytest.Server, jid.JID) {
	t.Helper()
	opts := []prosodytest.Option{prosodytest.WithoutComponentAdmin(), prosodytest.WithCustomRoles(minterRole)}
	if privileged {
		opts = append(opts, prosodytest.WithAdminsWithoutRoles("minter@"+prosodytest.DefaultDomain))
	}
	srv := prosodytest.Start(t, opts...)
	if privileged && srv.HasRoles() {
		return srv, srv.AddUserWithRole(t, "minter", srv.Domain, minterPassword, prosody.MinterRole)
	}
	return srv, srv.AddUser(t, "minter", srv.Domain, minterPassword)
}

// startMinter runs a Minter for account until the test ends and, when
// waitUp, waits for its login. It returns the Minter, its log and a
// channel signalled on every login.
func startMinter(t *testing.T, srv *prosodytest.Server, account jid.JID, password string, waitUp bool) (*Session, *syncLog, chan struct{}) {
	t.Helper()
	logs := &syncLog{t: t}
	ups := make(chan struct{}, 16)
	m := New(Config{
		Account: account, Password: password, Addr: srv.C2SAddr, TLS: srv.TLSConfig(srv.Domain),
		PingInterval: time.Second, PingTimeout: 2 * time.Second,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		OnUp:        func() { ups <- struct{}{} },
		CheckRights: prosody.CheckRights,
	}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	// Run must have returned before the test ends: it logs through t.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("minter.Run: %v", err)
		}
	})
	if waitUp {
		select {
		case <-ups:
		case <-time.After(upTimeout):
			t.Fatalf("Prosody %s: minter not logged in after %v", srv.Version, upTimeout)
		}
	}
	return m, logs, ups
}

// runCommand executes node at the domain through sender and returns the
// server's stanza error, nil when it accepted the command.
func runCommand(t *testing.T, sender adhoc.IQSender, domain jid.JID, node string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	payload := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: "http://jabber.org/protocol/commands", Local: "command"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}, {Name: xml.Name{Local: "action"}, Value: "execute"}},
	})
	r, err := sender.SendIQElement(ctx, payload, stanza.IQ{Type: stanza.SetIQ, To: domain})
	if err != nil {
		t.Fatalf("run %s: %v", node, err)
	}
	defer r.Close()
	tok, err := r.Token()
	if err != nil {
		t.Fatalf("run %s: %v", node, err)
	}
	_, err = stanza.UnmarshalIQError(r, tok.(xml.StartElement))
	return err
}

// TestMinterMintsWithLeastPrivilege: the component is no admin; the bot
// mints through the minter account. On Prosody 13 the account holds only
// the invitebot:minter role: it mints invites and password resets, the
// tokens are good at the server, and delete-user, outside the role, is
// refused. On 0.12, which has no roles, the account mints as an admin of
// the domain, and is one: delete-user is open to it, which is what the
// README warns about.
func TestMinterMintsWithLeastPrivilege(t *testing.T) {
	t.Parallel()
	srv, account := minterServer(t, true)
	m, logs, _ := startMinter(t, srv, account, minterPassword, true)
	domain := jid.MustParse(srv.Domain)
	iss := prosody.NewIssuer(domain, account, m)
	ctx, cancel := context.WithTimeout(context.Background(), 2*upTimeout)
	defer cancel()

	logs.await(t, "the minter account may create invites", upTimeout)
	minted, err := iss.Mint(ctx)
	if err != nil {
		t.Fatalf("Prosody %s: mint through the minter: %v", srv.Version, err)
	}
	if err := ibr.CheckToken(ctx, srv.IBRConfig(), minted.Token); err != nil {
		t.Errorf("Prosody %s: the minted token is not valid at the server: %v", srv.Version, err)
	}

	victim := srv.AddUser(t, "victim", srv.Domain, "victim-pass")
	refusal := runCommand(t, m, domain, deleteUserNode)
	if srv.HasRoles() {
		var se stanza.Error
		if !errors.As(refusal, &se) || se.Condition != stanza.Forbidden {
			t.Errorf("Prosody %s: delete-user as the minter = %v, want forbidden", srv.Version, refusal)
		}
		if _, err := iss.MintReset(ctx, victim); err != nil {
			t.Errorf("Prosody %s: password reset through the minter: %v", srv.Version, err)
		}
	} else if refusal != nil {
		t.Errorf("Prosody %s: delete-user as an admin account = %v; an account in admins has every admin right on 0.12", srv.Version, refusal)
	}
	// Nothing was deleted either way: the victim still logs in.
	prosodytest.Login(t, srv, victim, "victim-pass")
	if strings.Contains(logs.String(), minterPassword) {
		t.Error("the minter password is in the log")
	}
}

// TestMinterWithoutRightsSaysWhatToAdd: an account with neither the role
// nor admin rights logs in, and the log says at once, and again when a
// mint is refused, exactly what to add to Prosody, for 13 and for 0.12.
func TestMinterWithoutRightsSaysWhatToAdd(t *testing.T) {
	t.Parallel()
	srv, account := minterServer(t, false)
	m, logs, _ := startMinter(t, srv, account, minterPassword, true)
	wantFix := []string{
		`prosody_13="VirtualHost \"durare.test\": custom_roles = { { name = \"invitebot:minter\"; inherits = { \"prosody:registered\" }; allow = { \"adhoc:urn:xmpp:invite#create-account\"; \"adhoc:xmpp:prosody.im/mod_invites_adhoc#password-reset\"; \"adhoc:http://jabber.org/protocol/admin#user-stats\"; }; }; }"`,
		`prosody_13_account="prosodyctl shell user set_role minter@durare.test invitebot:minter"`,
		`prosody_0_12="VirtualHost \"durare.test\": admins = { \"minter@durare.test\" }"`,
	}
	logs.await(t, "the server does not let the minter account create invites", upTimeout)
	for _, w := range wantFix {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("start-up log lacks %s", w)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	_, err := prosody.NewIssuer(jid.MustParse(srv.Domain), account, m).Mint(ctx)
	var re *invites.RefusedError
	if !errors.As(err, &re) || !re.As.Equal(account) || re.Node != invites.NodeCreateAccount {
		t.Fatalf("Prosody %s: mint without rights = %v, want a RefusedError for %s", srv.Version, err, account)
	}
	// The refusal says what to add; the bot logs it as it is.
	refusalLog := &syncLog{t: t}
	slog.New(slog.NewTextHandler(refusalLog, nil)).LogAttrs(ctx, slog.LevelError, re.Fix.Message, re.Fix.Attrs...)
	for _, w := range append(wantFix, "the server refused the minter account its command", "command=urn:xmpp:invite#create-account") {
		if !strings.Contains(refusalLog.String(), w) {
			t.Errorf("refusal log lacks %s:\n%s", w, refusalLog.String())
		}
	}
}

// TestMinterReconnects: after Prosody restarts the minter logs in again by
// itself and mints; while it is down, sending fails at once with
// ErrDown, which the service reads as the server being unreachable.
func TestMinterReconnects(t *testing.T) {
	t.Parallel()
	srv, account := minterServer(t, true)
	m, _, ups := startMinter(t, srv, account, minterPassword, true)
	iss := prosody.NewIssuer(jid.MustParse(srv.Domain), account, m)

	srv.Kill(t)
	testwait.For(t, upTimeout, "the minter to notice Prosody was killed", func() bool { return !m.Up() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*upTimeout)
	defer cancel()
	if _, err := iss.Mint(ctx); !errors.Is(err, ErrDown) {
		t.Errorf("mint while down = %v, want ErrDown", err)
	}
	// The bot answers what is unreachable like a link that is down.
	if !errors.Is(fmt.Errorf("create invite: %w", ErrDown), invites.ErrServerUnreachable) {
		t.Errorf("ErrDown is not invites.ErrServerUnreachable")
	}

	srv.Restart(t)
	select {
	case <-ups:
	case <-time.After(upTimeout):
		t.Fatalf("Prosody %s: minter did not log in again after the restart", srv.Version)
	}
	if n := m.Reconnects(); n != 1 {
		t.Errorf("Reconnects = %d, want 1", n)
	}
	if _, err := iss.Mint(ctx); err != nil {
		t.Errorf("Prosody %s: mint after reconnecting: %v", srv.Version, err)
	}
}

// TestMinterWrongPassword: a refused login ends Run with ErrRefused
// and one line naming what to check, instead of a reconnect loop (as the
// Link does with a rejected secret), and never shows the password.
func TestMinterWrongPassword(t *testing.T) {
	t.Parallel()
	srv, account := minterServer(t, false)
	const wrong = "wr0ng-pass-xyzzy"
	logs := &syncLog{t: t}
	m := New(Config{Account: account, Password: wrong, Addr: srv.C2SAddr, TLS: srv.TLSConfig(srv.Domain),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
		slog.New(slog.NewTextHandler(logs, nil)))
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(upTimeout):
		t.Fatalf("Prosody %s: Run still retrying a wrong password after %v:\n%s", srv.Version, upTimeout, logs)
	}
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("Prosody %s: Run = %v, want ErrRefused", srv.Version, err)
	}
	for _, want := range []string{"(not-authorized)", "check xmpp.minter_password, and that the account exists: prosodyctl adduser minter@durare.test"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(logs.String(), "minter session down") {
		t.Errorf("the refused login was retried:\n%s", logs)
	}
	if m.Up() {
		t.Error("minter up with a wrong password")
	}
	if strings.Contains(err.Error()+logs.String(), wrong) {
		t.Error("the password is in the error or the log")
	}
}

// failure stands in for mellium's internal SASL failure type.
type failure struct{ Condition cond }

type cond string

func (c cond) String() string   { return string(c) }
func (f failure) Error() string { return "server text" }

func TestSASLCondition(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("dial: refused"), ""},
		{failure{"not-authorized"}, "not-authorized"},
		{failure{"temporary-auth-failure"}, "temporary-auth-failure"},
	} {
		if got := saslCondition(tc.err); got != tc.want {
			t.Errorf("saslCondition(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if !permanentSASL["not-authorized"] || permanentSASL["temporary-auth-failure"] {
		t.Error("permanentSASL: not-authorized must be permanent, temporary-auth-failure not")
	}
}

// TestMinterIQsUnderConcurrentLoad: many IQs at once, each with a context
// that ends right after (or, for some, before) its answer, leave the
// session intact: callers' contexts never reach the connection's write
// deadline.
func TestMinterIQsUnderConcurrentLoad(t *testing.T) {
	t.Parallel()
	const (
		senders   = 20
		perSender = 25
	)
	srv, account := minterServer(t, false)
	m, _, _ := startMinter(t, srv, account, minterPassword, true)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for j := range perSender {
				timeout := encodeTimeout
				if (i+j)%7 == 0 {
					// Gives up while the IQ is on its way.
					timeout = time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := m.ping(ctx)
				cancel()
				if err != nil && timeout == encodeTimeout {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d pings failed; first: %v", n, firstErr.Load())
	}
	if n := m.Reconnects(); n != 0 || !m.Up() {
		t.Fatalf("minter reconnected %d times under load (up: %v)", n, m.Up())
	}
	ctx, cancel := context.WithTimeout(context.Background(), encodeTimeout)
	defer cancel()
	if err := m.ping(ctx); err != nil {
		t.Fatalf("ping after the load: %v", err)
	}
}

// TestMinterDownAtOnce: before any login, an IQ fails at once with
// ErrDown instead of waiting for its context.
func TestMinterDownAtOnce(t *testing.T) {
	m := New(Config{Account: jid.MustParse("minter@example.org")}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if m.Up() {
		t.Fatal("up before Run")
	}
	_, err := m.SendIQElement(context.Background(), xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "x"}}),
		stanza.IQ{Type: stanza.GetIQ})
	if !errors.Is(err, ErrDown) {
		t.Errorf("SendIQElement = %v, want ErrDown", err)
	}
}

// TestMinterRoleLuaMatchesHarness: the role docs/prosody-setup.md and the log tell
// operators to add is the one the tests run against.
func TestMinterRoleLuaMatchesHarness(t *testing.T) {
	for _, want := range append([]string{minterRole.Name}, append(minterRole.Inherits, minterRole.Allow...)...) {
		if !strings.Contains(prosody.MinterRoleLua, `"`+want+`"`) {
			t.Errorf("MinterRoleLua lacks %q:\n%s", want, prosody.MinterRoleLua)
		}
	}
	if got := strings.Count(prosody.MinterRoleLua, `"adhoc:`); got != len(minterRole.Allow) {
		t.Errorf("MinterRoleLua allows %d commands, the harness role %d", got, len(minterRole.Allow))
	}
}
