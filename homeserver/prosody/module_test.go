package prosody_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/internal/testwait"
)

// componentLink connects to srv as its component and serves the session,
// so that IQs sent on it get their answers.
func componentLink(t *testing.T, srv *prosodytest.Server) *xmpp.Session {
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
		_ = s.Serve(nil)
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
