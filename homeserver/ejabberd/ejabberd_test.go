package ejabberd_test

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/homeserver/ejabberd"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/minter"
	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/internal/ejabberdtest"
	"durare.org/invitebot/invites"
)

// testTimeout bounds each test's exchanges with the server.
const testTimeout = 60 * time.Second

// setup starts an ejabberd, logs the minter account in the way the bot
// does (minter.Session) and returns an Issuer over that session.
func setup(t *testing.T, opts ...ejabberdtest.Option) (*ejabberdtest.Server, *ejabberd.Issuer, context.Context) {
	t.Helper()
	s := ejabberdtest.Start(t, opts...)
	return s, login(t, s, s.Minter, s.MinterPassword), testContext(t)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// login keeps account logged in for the test and returns an Issuer
// running commands as it.
func login(t *testing.T, s *ejabberdtest.Server, account jid.JID, pass string) *ejabberd.Issuer {
	t.Helper()
	up := make(chan struct{}, 1)
	down := make(chan error, 1)
	m := minter.New(minter.Config{
		Account: account, Password: pass, Addr: s.C2SAddr, TLS: s.TLSConfig(s.Domain),
		OnUp:        func() { up <- struct{}{} },
		OnDown:      func(err error) { down <- err },
		CheckRights: func(context.Context, *slog.Logger, jid.JID, adhoc.IQSender) {},
	}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-up:
	case err := <-down:
		t.Fatalf("log in as %s: %v", account, err)
	case <-time.After(testTimeout):
		t.Fatalf("log in as %s: no session after %v", account, testTimeout)
	}
	return ejabberd.NewIssuer(account, m)
}

func registrar(s *ejabberdtest.Server) ejabberd.Registrar {
	return ejabberd.Registrar{Registrar: homeserver.Registrar{C2S: s.IBRConfig()}}
}

// TestMintedTokenCreatesOneAccount mints as the minter and registers with
// the token: one account, and a second registration is refused.
func TestMintedTokenCreatesOneAccount(t *testing.T) {
	s, iss, ctx := setup(t)
	m, err := iss.Mint(ctx)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	if m.Token == "" || !strings.HasPrefix(m.URI, "xmpp:"+s.Domain+"?register;preauth=") || m.Expires.Before(time.Now()) {
		t.Fatalf("mint: unexpected invitation %q, expires %v", invites.RedactToken(m.URI), m.Expires)
	}
	reg := registrar(s)
	carol, err := reg.Register(ctx, m.Token, "carol", "carol-secret")
	if err != nil {
		t.Fatalf("register with the token: %v", err)
	}
	if _, err := reg.BoundJID(ctx, carol, "carol-secret"); err != nil {
		t.Fatalf("log in as the new account %s: %v", carol, err)
	}
	if _, err := reg.Register(ctx, m.Token, "dave", "dave-secret"); !errors.Is(err, invites.ErrTokenRejected) {
		t.Fatalf("second account with the same token: got %v, want ErrTokenRejected", err)
	}
}

// TestListUsageReportsAccount checks that list_invites says which account
// used a token, and that an unused token is valid and used by nobody.
func TestListUsageReportsAccount(t *testing.T) {
	s, iss, ctx := setup(t)
	used, err := iss.Mint(ctx)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	unused, err := iss.Mint(ctx)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	erin, err := registrar(s).Register(ctx, used.Token, "erin", "erin-secret")
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	list, err := iss.ListUsage(ctx)
	if err != nil {
		t.Fatalf("list usage: %v", err)
	}
	got := map[string]invites.TokenUsage{}
	for _, u := range list {
		got[u.Token] = u
	}
	if u, ok := got[used.Token]; !ok || u.Valid || !u.Account.Equal(erin) {
		t.Errorf("used token: got %+v (listed %v), want invalid and used by %s", u, ok, erin)
	}
	if u, ok := got[unused.Token]; !ok || !u.Valid || !u.Account.Equal(jid.JID{}) {
		t.Errorf("unused token: got %+v (listed %v), want valid and unused", u, ok)
	}
}

// TestResetLink checks the account check and reset links: an existing
// account gets a link that sets its new password, an unknown one is
// refused by both.
func TestResetLink(t *testing.T) {
	s, iss, ctx := setup(t)
	bob := s.AddUser(t, "bob", s.Domain, "old-secret")
	nobody := jid.MustParse("nobody@" + s.Domain)
	if ok, err := iss.AccountExists(ctx, bob); err != nil || !ok {
		t.Fatalf("does %s exist: %v, %v; want true", bob, ok, err)
	}
	if ok, err := iss.AccountExists(ctx, nobody); err != nil || ok {
		t.Fatalf("does %s exist: %v, %v; want false", nobody, ok, err)
	}
	if ok, err := iss.OffersResets(ctx); err != nil || !ok {
		t.Fatalf("offers resets: %v, %v; want true", ok, err)
	}
	link, err := iss.MintReset(ctx, bob)
	if err != nil {
		t.Fatalf("reset link for %s: %v", bob, err)
	}
	if !strings.HasPrefix(link.URI, "xmpp:"+bob.String()+"?register;preauth=") {
		t.Fatalf("reset link %q is not for %s", invites.RedactToken(link.URI), bob)
	}
	reg := registrar(s)
	if _, err := reg.Register(ctx, link.Token, "bob", "new-secret"); err != nil {
		t.Fatalf("set a new password with the reset link: %v", err)
	}
	if _, err := reg.BoundJID(ctx, bob, "new-secret"); err != nil {
		t.Fatalf("log in with the new password: %v", err)
	}
	if _, err := reg.BoundJID(ctx, bob, "old-secret"); !errors.Is(err, ibr.ErrAuthFailed) {
		t.Fatalf("log in with the old password: got %v, want ErrAuthFailed", err)
	}
	_, err = iss.MintReset(ctx, nobody)
	var apiErr *ejabberd.APIError
	if !errors.As(err, &apiErr) || errors.Is(err, invites.ErrIssuerForbidden) {
		t.Fatalf("reset link for %s: got %v, want ejabberd's refusal", nobody, err)
	}
}

// TestDeleteStopsToken checks that a deleted token no longer passes
// preauth, and that deleting an unknown token is no error.
func TestDeleteStopsToken(t *testing.T) {
	s, iss, ctx := setup(t)
	m, err := iss.Mint(ctx)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	reg := registrar(s)
	c, err := reg.DialChecker(ctx)
	if err != nil {
		t.Fatalf("dial checker: %v", err)
	}
	defer c.Close()
	check := func() error { return c.Check(ctx, m.Token) }
	if err := check(); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	if got := iss.Revocation(); got != invites.RevokeByDeletion {
		t.Fatalf("revocation: got %v, want deletion", got)
	}
	if err := iss.Delete(ctx, m.Token); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := check(); !errors.Is(err, invites.ErrTokenRejected) {
		t.Fatalf("deleted token: got %v, want ErrTokenRejected", err)
	}
	if _, err := reg.Register(ctx, m.Token, "frank", "frank-secret"); !errors.Is(err, invites.ErrTokenRejected) {
		t.Fatalf("register with a deleted token: got %v, want ErrTokenRejected", err)
	}
	if err := iss.Delete(ctx, m.Token); err != nil {
		t.Fatalf("delete again: %v", err)
	}
}

// TestTakenNameIsUsernameTaken checks that ejabberd's answer to a taken
// name (internal-server-error) reaches the service as ErrUsernameTaken,
// and that the token survives for another name.
func TestTakenNameIsUsernameTaken(t *testing.T) {
	s, iss, ctx := setup(t)
	s.AddUser(t, "grace", s.Domain, "grace-secret")
	m, err := iss.Mint(ctx)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	reg := registrar(s)
	if _, err := reg.Register(ctx, m.Token, "grace", "other-secret"); !errors.Is(err, invites.ErrUsernameTaken) {
		t.Fatalf("register a taken name: got %v, want ErrUsernameTaken", err)
	}
	if _, err := reg.Register(ctx, m.Token, "grace2", "grace2-secret"); err != nil {
		t.Fatalf("the token after a taken name: %v", err)
	}
}

// TestCapabilities checks what Detect finds with the fragment as given,
// and without its api_permissions entry: minting still works, the API
// commands are refused with what to fix, and tokens are consumed instead
// of deleted.
func TestCapabilities(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		_, iss, ctx := setup(t)
		c, err := iss.Detect(ctx)
		if err != nil {
			t.Fatalf("detect: %v", err)
		}
		if want := (ejabberd.Capabilities{Mint: true, Resets: true, List: true, Delete: true, Check: true}); c != want {
			t.Fatalf("capabilities: got %+v, want %+v", c, want)
		}
	})
	t.Run("without api_permissions", func(t *testing.T) {
		_, iss, ctx := setup(t, ejabberdtest.WithoutAPIPermissions())
		c, err := iss.Detect(ctx)
		if err != nil {
			t.Fatalf("detect: %v", err)
		}
		if want := (ejabberd.Capabilities{Mint: true}); c != want {
			t.Fatalf("capabilities: got %+v, want %+v", c, want)
		}
		if _, err := iss.Mint(ctx); err != nil {
			t.Fatalf("mint: %v", err)
		}
		if ok, err := iss.OffersResets(ctx); err != nil || ok {
			t.Fatalf("offers resets: %v, %v; want false", ok, err)
		}
		if got := iss.Revocation(); got != invites.RevokeByConsumption {
			t.Fatalf("revocation: got %v, want consumption", got)
		}
		_, err = iss.ListUsage(ctx)
		var re *invites.RefusedError
		if !errors.As(err, &re) || re.Fix.Message == "" || re.Node != ejabberd.NodeAPIPrefix+ejabberd.CmdListInvites {
			t.Fatalf("list usage: got %v, want a refusal with a fix", err)
		}
	})
}

// rosterPreauth finds the token in a roster invite URI
// (xmpp:user@host?roster;preauth=T;ibr=y).
var rosterPreauth = regexp.MustCompile(`[?;]preauth=([^;&\s]+)`)

// TestLocalRosterInviteCreatesAccount pins the risk docs/ejabberd-setup.md
// describes: any local account may run urn:xmpp:invite#invite, which the
// fragment cannot close, and its token registers an account although the
// account may not create account invites. Should ejabberd close it, this
// test fails and the page must change.
func TestLocalRosterInviteCreatesAccount(t *testing.T) {
	s, _, ctx := setup(t)
	alice := s.AddUser(t, "alice", s.Domain, "alice-secret")
	as := login(t, s, alice, "alice-secret")
	res, err := as.Complete(ctx, "urn:xmpp:invite#invite", func(*dataform.Form) {})
	if err != nil {
		t.Fatalf("roster invite as %s: %v", alice, err)
	}
	m := rosterPreauth.FindStringSubmatch(res.Form.Value("uri"))
	if m == nil {
		t.Fatalf("roster invite: no token in the result")
	}
	if _, err := as.Mint(ctx); !errors.Is(err, invites.ErrIssuerForbidden) {
		t.Fatalf("account invite as %s: got %v, want a refusal", alice, err)
	}
	if _, err := registrar(s).Register(ctx, m[1], "mallory", "mallory-secret"); err != nil {
		t.Fatalf("register with %s's roster invite: %v (if ejabberd now refuses, update docs/ejabberd-setup.md)", alice, err)
	}
}

// TestCheckerSurvivesValidTokens checks tokens the way usage tracking
// does, many over one checker: ejabberd ends a stream at the second
// preauth after one passed, which the plain checker shows and the
// ejabberd Registrar's checker survives.
func TestCheckerSurvivesValidTokens(t *testing.T) {
	s, iss, ctx := setup(t)
	var tokens []string
	for range 2 {
		m, err := iss.Mint(ctx)
		if err != nil {
			t.Fatalf("mint: %v", err)
		}
		tokens = append(tokens, m.Token)
	}

	plain, err := ibr.DialChecker(ctx, s.IBRConfig())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer plain.Close()
	if err := plain.Check(ctx, tokens[0]); err != nil {
		t.Fatalf("plain checker, first token: %v", err)
	}
	if err := plain.Check(ctx, tokens[1]); err == nil {
		t.Fatalf("plain checker, second valid token on the same stream passed: ejabberd no longer ends the stream, and Registrar.DialChecker's new stream per valid token can go")
	}

	c, err := registrar(s).DialChecker(ctx)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	for i, step := range []struct {
		token string
		valid bool
	}{{tokens[0], true}, {"no-such-token", false}, {"another-one", false}, {tokens[1], true}, {tokens[0], true}} {
		err := c.Check(ctx, step.token)
		if step.valid && err != nil || !step.valid && !errors.Is(err, invites.ErrTokenRejected) {
			t.Fatalf("check %d (valid %v): %v", i, step.valid, err)
		}
	}
}

// TestConsumptionRevokes checks the revocation the service falls back to
// when ejabberd refuses deletion: a throwaway account uses the token up
// and is removed again.
func TestConsumptionRevokes(t *testing.T) {
	s, iss, ctx := setup(t, ejabberdtest.WithoutAPIPermissions())
	m, err := iss.Mint(ctx)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	reg := registrar(s)
	throwaway, err := reg.Register(ctx, m.Token, "throwaway-1", "throwaway-secret")
	if err != nil {
		t.Fatalf("use the token up: %v", err)
	}
	if err := reg.Remove(ctx, throwaway, "throwaway-secret"); err != nil {
		t.Fatalf("remove the throwaway account: %v", err)
	}
	if _, err := reg.BoundJID(ctx, throwaway, "throwaway-secret"); !errors.Is(err, ibr.ErrAuthFailed) {
		t.Fatalf("log in as the removed account: got %v, want ErrAuthFailed", err)
	}
	if _, err := reg.Register(ctx, m.Token, "someone", "someone-secret"); !errors.Is(err, invites.ErrTokenRejected) {
		t.Fatalf("register with the used token: got %v, want ErrTokenRejected", err)
	}
}

// recorder is a slog handler that hands every record to a channel.
type recorder struct{ ch chan slog.Record }

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	select {
	case r.ch <- rec.Clone():
	default: // a test that stopped reading loses nothing it waits for
	}
	return nil
}
func (r recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r recorder) WithGroup(string) slog.Handler      { return r }

// TestCheckRightsAfterLogin runs the minter session the way the bot does,
// with ejabberd's rights check: with the fragment it reports everything
// allowed, without api_permissions a warning that names the fix.
func TestCheckRightsAfterLogin(t *testing.T) {
	for _, tt := range []struct {
		name  string
		opts  []ejabberdtest.Option
		level slog.Level
		msg   string
	}{
		{"full", nil, slog.LevelInfo, "the minter account may create invites"},
		{"without api_permissions", []ejabberdtest.Option{ejabberdtest.WithoutAPIPermissions()}, slog.LevelWarn, "ejabberd refuses the minter account some API commands"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := ejabberdtest.Start(t, tt.opts...)
			rec := recorder{ch: make(chan slog.Record, 64)}
			m := minter.New(minter.Config{
				Account: s.Minter, Password: s.MinterPassword, Addr: s.C2SAddr, TLS: s.TLSConfig(s.Domain),
				CheckRights: ejabberd.CheckRights,
			}, slog.New(rec))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = m.Run(ctx) }()
			defer func() { cancel(); <-done }()
			deadline := time.After(testTimeout)
			for {
				select {
				case r := <-rec.ch:
					if !strings.HasPrefix(r.Message, "the minter account may") && !strings.HasPrefix(r.Message, "ejabberd ") {
						continue
					}
					if r.Level != tt.level || !strings.HasPrefix(r.Message, tt.msg) {
						t.Fatalf("rights check logged %v %q, want %v %q", r.Level, r.Message, tt.level, tt.msg)
					}
					return
				case <-deadline:
					t.Fatalf("no rights check logged after %v", testTimeout)
				}
			}
		})
	}
}
