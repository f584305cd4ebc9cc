package ejabberd_test

import (
	"context"
	"encoding/xml"
	"log/slog"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/homeserver/ejabberd"
	"durare.org/invitebot/homeserver/minter"
	"durare.org/invitebot/internal/ejabberdtest"
)

func TestProbeDump(t *testing.T) {
	s := ejabberdtest.Start(t)
	up := make(chan struct{}, 1)
	m := minter.New(minter.Config{Account: s.Minter, Password: s.MinterPassword, Addr: s.C2SAddr, TLS: s.TLSConfig(s.Domain),
		OnUp: func() { up <- struct{}{} }, CheckRights: func(context.Context, *slog.Logger, jid.JID, adhoc.IQSender) {}}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	<-up
	iss := ejabberd.NewIssuer(s.Minter, m)
	cmds, err := iss.Commands(ctx)
	t.Logf("commands %v %v", cmds, err)
	mint, err := iss.Mint(ctx)
	t.Logf("mint %+v %v", mint, err)
	s.AddUser(t, "bob", s.Domain, "pw")
	for _, c := range [][]string{{"generate_reset_token", "username", "bob"}, {"generate_reset_token", "username", "nobody"}, {"list_invites"}, {"check_account", "user", "bob"}, {"check_account", "user", "nobody"}, {"delete_invite_by_token", "token", "nope"}, {"delete_invite_by_token", "token", mint.Token}, {"generate_invite"}} {
		f, err := iss.API(ctx, c[0], c[1:]...)
		b, _ := xml.Marshal(f)
		t.Logf("%v: %s err=%v", c, b, err)
	}
	_ = time.Second
}
