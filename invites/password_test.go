package invites_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// passwordCases are passwords at the edges of what Prosody's SASLprep
// accepts, with what it answers (measured with util.encodings on 0.12.3,
// 13.0.1 and 13.0.8: the length is that of the prepared password, refused
// at 1024 bytes). Every one is legal in XML, so the server can be asked.
var passwordCases = []struct {
	name string
	pass string
	ok   bool
}{
	{"1023 bytes", strings.Repeat("a", 1023), true},
	{"1024 bytes", strings.Repeat("a", 1024), false},
	{"511 two-byte letters", strings.Repeat("é", 511), true},
	{"512 two-byte letters", strings.Repeat("é", 512), false},
	{"1023 bytes escaped in XML", strings.Repeat("<", 1023), true},
	{"grows to 1023 bytes", strings.Repeat("\u3300", 85) + "aaa", true},
	{"grows to 1024 bytes", strings.Repeat("\u3300", 85) + "aaaa", false},
	{"right-to-left growing to 1023 bytes", strings.Repeat("\uFDFA", 31), true},
	{"right-to-left growing past 1023 bytes", strings.Repeat("\uFDFA", 32), false},
	{"no-break space", "correct\u00a0horse", true},
	{"soft hyphen", "correct\u00adhorse", true},
	{"unassigned in Unicode 3.2", "correct\u0378horse", true},
	{"emoji", "correct horse \U0001F600", true},
	{"tab", "correct\thorse", false},
	{"delete", "correct\u007fhorse", false},
	{"private use", "correct\ue000horse", false},
	{"replacement character", "correct horse\ufffd", false},
	{"right-to-left only", "\u0627\u0628\u0627\u0628\u0627\u0628\u0627\u0628", true},
	{"right-to-left mixed with latin", "correct\u0627horse", false},
}

// TestCheckPassword: CheckPassword's verdicts, and the error a refusal
// carries.
func TestCheckPassword(t *testing.T) {
	for _, tc := range passwordCases {
		err := invites.CheckPassword(tc.pass)
		if (err == nil) != tc.ok {
			t.Errorf("%s: CheckPassword = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, invites.ErrUsernameRefused) {
			t.Errorf("%s: %v is not ErrUsernameRefused", tc.name, err)
		}
	}
	if err := invites.CheckPassword(strings.Repeat("a", 1024)); !errors.Is(err, invites.ErrPasswordTooLong) {
		t.Errorf("1024 bytes: %v, want ErrPasswordTooLong", err)
	}
	if err := invites.CheckPassword(strings.Repeat("\u3300", 86)); !errors.Is(err, invites.ErrPasswordTooLong) {
		t.Errorf("short, but 1032 bytes prepared: %v, want ErrPasswordTooLong", err)
	}
	if err := invites.CheckPassword("correct\thorse"); !errors.Is(err, invites.ErrPasswordInvalid) {
		t.Errorf("tab: %v, want ErrPasswordInvalid", err)
	}
	// Prosody would take an empty prepared password; the bot does not.
	if err := invites.CheckPassword(strings.Repeat("\u00ad", 8)); !errors.Is(err, invites.ErrPasswordInvalid) {
		t.Errorf("only soft hyphens: %v, want ErrPasswordInvalid", err)
	}
	if err := invites.CheckPassword("secret\ue000"); err != nil && strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q repeats the password", err)
	}
}

// TestCheckPasswordAgreesWithServer registers an account with each of
// passwordCases at the real Prosody: what CheckPassword accepts, the
// server accepts, and what it refuses, the server refuses too.
func TestCheckPasswordAgreesWithServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prosody")
	}
	srv := prosodytest.Start(t)
	cfg := srv.IBRConfig()
	for i, tc := range passwordCases {
		token := srv.MintToken(t)
		_, err := ibr.Register(t.Context(), cfg, token, fmt.Sprintf("pw%d", i), tc.pass)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: Prosody %s refused a password CheckPassword accepts: %v", tc.name, srv.Version, err)
		case !tc.ok && !errors.Is(err, ibr.ErrNotAcceptable):
			t.Errorf("%s: Prosody %s: %v, want the password refused as not acceptable", tc.name, srv.Version, err)
		}
	}
}

// countingRegistrar counts the registrations that reach the server.
type countingRegistrar struct {
	homeserver.Registrar
	registers atomic.Int32
}

func (c *countingRegistrar) Register(ctx context.Context, token, username, password string) (jid.JID, error) {
	c.registers.Add(1)
	return c.Registrar.Register(ctx, token, username, password)
}

// TestRegisterAccountRefusesServerPasswords: a password the server would
// refuse is refused by the service before anything reaches the server
// (ErrPasswordTooLong, ErrPasswordInvalid), and the invite stays usable.
func TestRegisterAccountRefusesServerPasswords(t *testing.T) {
	srv := prosodytest.Start(t)
	h := newHarness(t, srv, srv.IBRConfig())
	reg := &countingRegistrar{Registrar: homeserver.Registrar{C2S: srv.IBRConfig()}}
	svc := invites.NewService(invites.Options{Store: h.st, Domain: srv.Domain,
		Admins: map[string]bool{testAdmin: true}, Registrar: reg, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	inv := h.addInvite(t, testAdmin)
	for _, tc := range []struct {
		pass string
		want error
	}{
		{strings.Repeat("a", 1024), invites.ErrPasswordTooLong},
		{"correct\thorse battery", invites.ErrPasswordInvalid},
	} {
		if _, err := svc.RegisterAccount(ctx, inv.ID, "newbie", tc.pass); !errors.Is(err, tc.want) {
			t.Errorf("RegisterAccount(%.12q...) = %v, want %v", tc.pass, err, tc.want)
		}
	}
	if n := reg.registers.Load(); n != 0 {
		t.Errorf("%d registrations reached the server with passwords it refuses", n)
	}
	if rec, err := h.st.Invite(ctx, inv.ID); err != nil || rec.State != store.StatePending {
		t.Fatalf("invite after the refusals: %+v, %v; want pending", rec, err)
	}
	account, err := svc.RegisterAccount(ctx, inv.ID, "newbie", strings.Repeat("a", 1023))
	if err != nil {
		t.Fatalf("RegisterAccount with a 1023-byte password = %v", err)
	}
	h.assertUsedBy(t, inv.ID, account)
}
