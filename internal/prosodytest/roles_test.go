package prosodytest_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
)

// commandsOf lists the command nodes the server offers the logged-in c.
func commandsOf(t *testing.T, srv *prosodytest.Server, c *prosodytest.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), prosodytest.ReplyTimeout)
	defer cancel()
	nodes, err := adhoc.Issuer{Server: jid.MustParse(srv.Domain), Link: c.Session()}.Commands(ctx)
	if err != nil {
		t.Fatalf("Prosody %s: list commands as %s: %v", srv.Version, c.JID(), err)
	}
	return nodes
}

// TestRolesAndAdmins: WithCustomRoles and AddUserWithRole give an account
// exactly the commands of its role on Prosody 13; on 0.12, which has no
// roles, WithAdmins (or WithAdminsWithoutRoles, which only acts there) is
// what lets an account run the invite command, with every other admin
// command besides. Either way the component is left out of admins by
// WithoutComponentAdmin.
func TestRolesAndAdmins(t *testing.T) {
	t.Parallel()
	role := prosodytest.Role{Name: "test:minter", Inherits: []string{"prosody:registered"},
		Allow: []string{"adhoc:" + invites.NodeCreateAccount}}
	boss := "boss@" + prosodytest.DefaultDomain
	onlyOld := "old@" + prosodytest.DefaultDomain
	srv := prosodytest.Start(t, prosodytest.WithoutComponentAdmin(), prosodytest.WithCustomRoles(role),
		prosodytest.WithAdmins(boss), prosodytest.WithAdminsWithoutRoles(onlyOld))

	cfg, err := os.ReadFile(srv.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	wantAdmins := `admins = { "` + boss + `" }`
	if !srv.HasRoles() {
		wantAdmins = `admins = { "` + boss + `", "` + onlyOld + `" }`
	}
	for _, want := range []string{wantAdmins, `custom_roles = {`, `{ name = "test:minter";`,
		`inherits = { "prosody:registered"; };`, `allow = { "adhoc:urn:xmpp:invite#create-account"; };`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("configuration lacks %s:\n%s", want, cfg)
		}
	}
	if strings.Contains(string(cfg), `admins = { "`+srv.Component) {
		t.Errorf("component in admins despite WithoutComponentAdmin:\n%s", cfg)
	}

	plain := srv.AddUser(t, "plain", srv.Domain, "plain-pass")
	if nodes := commandsOf(t, srv, prosodytest.Login(t, srv, plain, "plain-pass")); slices.Contains(nodes, invites.NodeCreateAccount) {
		t.Errorf("Prosody %s offers a plain account create-account: %q", srv.Version, nodes)
	}

	if !srv.HasRoles() {
		if !strings.HasPrefix(srv.Version, "0.12") {
			t.Fatalf("HasRoles false on Prosody %s", srv.Version)
		}
		bossJID := srv.AddUser(t, "boss", srv.Domain, "boss-pass")
		nodes := commandsOf(t, srv, prosodytest.Login(t, srv, bossJID, "boss-pass"))
		if !slices.Contains(nodes, invites.NodeCreateAccount) || !slices.Contains(nodes, "http://jabber.org/protocol/admin#delete-user") {
			t.Errorf("Prosody %s: an account in admins is offered %q, want create-account and delete-user", srv.Version, nodes)
		}
		return
	}

	minter := srv.AddUserWithRole(t, "minter", srv.Domain, "minter-pass", role.Name)
	if got := srv.UserRole(t, minter); got != role.Name {
		t.Errorf("role of %s = %q, want %q", minter, got, role.Name)
	}
	if got := srv.UserRole(t, plain); got == role.Name {
		t.Errorf("plain account has the role %q", got)
	}
	nodes := commandsOf(t, srv, prosodytest.Login(t, srv, minter, "minter-pass"))
	if !slices.Contains(nodes, invites.NodeCreateAccount) {
		t.Errorf("Prosody %s does not offer the role's command: %q", srv.Version, nodes)
	}
	// The role lacks the reset permission, so the reset command is not
	// offered either: how the bot learns not to offer resets.
	if slices.Contains(nodes, prosody.NodePasswordReset) {
		t.Errorf("Prosody %s offers a reset command the role does not allow: %q", srv.Version, nodes)
	}
	for _, n := range nodes {
		if strings.Contains(n, "admin#") {
			t.Errorf("Prosody %s offers the minter role an admin command %s (all: %q)", srv.Version, n, nodes)
		}
	}
}
