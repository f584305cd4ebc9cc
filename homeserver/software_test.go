package homeserver_test

import (
	"context"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/internal/prosodytest"
)

// TestIdentifyProsody asks a real Prosody who it is, as the bot does when
// its link comes up, and checks the answer against what prosodyctl says.
func TestIdentifyProsody(t *testing.T) {
	srv := prosodytest.Start(t)
	user := srv.AddUser(t, "asker", prosodytest.DefaultDomain, "asker password")
	c := prosodytest.Login(t, srv, user, "asker password")
	sw, err := homeserver.Identify(context.Background(), c.Session(), c.JID(), jid.MustParse(prosodytest.DefaultDomain))
	if err != nil {
		t.Fatalf("Prosody %s: %v", srv.Version, err)
	}
	if sw.Kind() != homeserver.Prosody {
		t.Errorf("Prosody %s: kind %q (name %q), want %q", srv.Version, sw.Kind(), sw.Name, homeserver.Prosody)
	}
	if !strings.HasPrefix(sw.Version, srv.Version) {
		t.Errorf("Prosody %s: version %q", srv.Version, sw.Version)
	}
	if got, want := sw.String(), "Prosody "+sw.Version; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestIdentifyUnknownHost: a host the server does not serve answers with
// an error, which Identify passes on instead of guessing.
func TestIdentifyUnknownHost(t *testing.T) {
	srv := prosodytest.Start(t)
	user := srv.AddUser(t, "asker", prosodytest.DefaultDomain, "asker password")
	c := prosodytest.Login(t, srv, user, "asker password")
	if sw, err := homeserver.Identify(context.Background(), c.Session(), c.JID(), jid.MustParse("nowhere.invalid")); err == nil {
		t.Errorf("Prosody %s: Identify of an unknown host = %+v, want an error", srv.Version, sw)
	}
}
