package web_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/bot"
	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// liveAdmin administers the live services of the browser tests.
const liveAdmin = "carol@" + prosodytest.DefaultOtherDomain

// live is the real service the browser tests drive, wired to a real
// Prosody the way cmd/invitebot wires it: its own store, a component link
// that mints, the client port for registration.
type live struct {
	st   *store.Store
	link *bot.Link
	svc  *invites.Service
}

// startLive opens a store, brings the component link up and makes the
// service, with liveAdmin as its admin; adjust changes the service's
// options (account requests, event pages). Everything stops when the test
// ends.
func startLive(t *testing.T, ctx context.Context, srv *prosodytest.Server, log *slog.Logger, adjust func(*invites.Options)) live {
	t.Helper()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	component, domain := jid.MustParse(srv.Component), jid.MustParse(srv.Domain)
	link := bot.NewLink(bot.LinkConfig{Component: component, Server: srv.ComponentAddr,
		Secret: []byte(srv.ComponentSecret), PingTarget: domain}, log.With(slog.String("room", "link")))
	linkCtx, stopLink := context.WithCancel(ctx)
	linkDone := make(chan error, 1)
	go func() { linkDone <- link.Run(linkCtx, xmpp.HandlerFunc(ignoreStanzas)) }()
	t.Cleanup(func() {
		stopLink()
		if err := <-linkDone; err != nil {
			t.Errorf("link: %v", err)
		}
	})
	waitFor(t, linkUpTimeout, link.Up, "component link up")
	o := invites.Options{Store: st, Issuer: prosody.NewIssuer(domain, component, link),
		Domain: srv.Domain, Admins: map[string]bool{liveAdmin: true}, Registrar: homeserver.Registrar{C2S: srv.IBRConfig()},
		Log: log.With(slog.String("room", "invites"))}
	if adjust != nil {
		adjust(&o)
	}
	return live{st: st, link: link, svc: invites.NewService(o)}
}
