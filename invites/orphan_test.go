package invites_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// componentSession attaches to srv's component port as the bot would, so
// the Prosody issuer mints on the real server.
func componentSession(t *testing.T, srv *prosodytest.Server) *xmpp.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", srv.ComponentAddr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := component.NewSession(ctx, jid.MustParse(srv.Component), []byte(srv.ComponentSecret), conn)
	if err != nil {
		conn.Close()
		t.Fatalf("component session: %v", err)
	}
	go s.Serve(nil)
	t.Cleanup(func() {
		s.Close()
		conn.Close()
	})
	return s
}

// hookIssuer mints on the real server, then runs after before handing
// the token back: the moment between minting and storing.
type hookIssuer struct {
	prosody.Issuer
	t      *testing.T
	cfg    ibr.Config
	after  func()
	minted []string
}

func (h *hookIssuer) Mint(ctx context.Context) (invites.Minted, error) {
	m, err := h.Issuer.Mint(ctx)
	if err != nil {
		return m, err
	}
	h.minted = append(h.minted, m.Token)
	// The token works at the server now: whatever kills it later is the
	// service's doing.
	if err := ibr.CheckToken(ctx, h.cfg, m.Token); err != nil {
		h.t.Errorf("freshly minted token not accepted: %v", err)
	}
	if h.after != nil {
		h.after()
	}
	return m, nil
}

// TestNoOrphanTokens makes each thing that can happen between the server
// minting a token and the inviter getting it happen, against the real
// Prosody, and checks that the token is then dead at the server, and
// recorded as cancelled and revoked wherever the ledger still works.
func TestNoOrphanTokens(t *testing.T) {
	srv := prosodytest.Start(t)
	sess := componentSession(t, srv)
	const (
		admin   = "root@" + prosodytest.DefaultDomain
		inviter = "helper@" + prosodytest.DefaultOtherDomain
	)
	setup := func(t *testing.T) (*invites.Service, *store.Store, *hookIssuer, invites.Actor) {
		st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "invitebot.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.PutGrant(t.Context(), store.Grant{JID: inviter, GrantedBy: admin, GrantedAt: time.Now()},
			store.AuditEntry{Actor: admin, Action: invites.ActionGrant}); err != nil {
			t.Fatal(err)
		}
		iss := &hookIssuer{
			Issuer: prosody.NewIssuer(jid.MustParse(srv.Domain), jid.MustParse(srv.Component), sess),
			t:      t, cfg: srv.IBRConfig(),
		}
		svc := invites.NewService(invites.Options{
			Store: st, Issuer: iss, Domain: srv.Domain, Admins: map[string]bool{admin: true},
			Registrar: homeserver.Registrar{C2S: srv.IBRConfig()}, Log: slog.New(slog.NewTextHandler(t.Output(), nil)),
		})
		a, err := svc.Actor(t.Context(), inviter)
		if err != nil {
			t.Fatal(err)
		}
		return svc, st, iss, a
	}
	// dead checks the token is refused at the server.
	dead := func(t *testing.T, token string) {
		t.Helper()
		if err := ibr.CheckToken(t.Context(), srv.IBRConfig(), token); !errors.Is(err, ibr.ErrTokenRejected) {
			t.Errorf("token still accepted at the server (check: %v)", err)
		}
	}
	// revokedInLedger checks the ledger holds the token as a cancelled,
	// revoked invite of the inviter, with the cancel's reason.
	revokedInLedger := func(t *testing.T, st *store.Store, token, reason string) {
		t.Helper()
		invs, err := st.InvitesByInviter(t.Context(), inviter)
		if err != nil || len(invs) != 1 {
			t.Fatalf("ledger holds %d invites of the inviter, %v; want the minted one", len(invs), err)
		}
		inv := invs[0]
		if inv.Token != token || inv.State != store.StateCancelled || !inv.Revoked {
			t.Errorf("ledger has %s state %s revoked %v; want the minted token cancelled and revoked", invites.RedactToken(inv.Token), inv.State, inv.Revoked)
		}
		log, _ := st.Audit(t.Context(), inv.ID, 10)
		var actions []string
		for _, e := range log {
			actions = append(actions, e.Action)
			if e.Action == invites.ActionInviteCancel && !strings.Contains(e.Detail, reason) {
				t.Errorf("cancel entry says %q, want it to mention %q", e.Detail, reason)
			}
		}
		if !strings.Contains(strings.Join(actions, " "), invites.ActionTokenRevoked+" "+invites.ActionInviteCancel) {
			t.Errorf("audit about the invite: %v; want the cancel followed by the revocation", actions)
		}
	}

	t.Run("handed out", func(t *testing.T) {
		svc, _, iss, a := setup(t)
		inv, err := svc.Create(t.Context(), a)
		if err != nil {
			t.Fatal(err)
		}
		if err := ibr.CheckToken(t.Context(), srv.IBRConfig(), iss.minted[0]); err != nil || inv.State != invites.StatePending {
			t.Errorf("delivered invite %s: token check %v; want pending and valid", inv.State, err)
		}
	})

	t.Run("deadline expires between minting and storing", func(t *testing.T) {
		svc, st, iss, a := setup(t)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		iss.after = func() { <-ctx.Done() }
		_, err := svc.Create(ctx, a)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Create = %v, want the deadline", err)
		}
		dead(t, iss.minted[0])
		revokedInLedger(t, st, iss.minted[0], "abandoned")
	})

	t.Run("paused between minting and storing", func(t *testing.T) {
		svc, st, iss, a := setup(t)
		root, _ := svc.Actor(t.Context(), admin)
		iss.after = func() {
			if _, err := svc.Pause(t.Context(), root, "spam wave"); err != nil {
				t.Error(err)
			}
		}
		if _, err := svc.Create(t.Context(), a); !errors.Is(err, invites.ErrPaused) {
			t.Fatalf("Create = %v, want invites.ErrPaused", err)
		}
		dead(t, iss.minted[0])
		revokedInLedger(t, st, iss.minted[0], "paused")
	})

	t.Run("store fails between minting and storing", func(t *testing.T) {
		svc, st, iss, a := setup(t)
		iss.after = func() { st.Close() }
		if _, err := svc.Create(t.Context(), a); err == nil || !strings.Contains(err.Error(), "store") {
			t.Fatalf("Create = %v, want a store error", err)
		}
		dead(t, iss.minted[0])
	})
}
