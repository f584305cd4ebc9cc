package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/store"
)

// seedStore writes one pending and one used invite, a grant and their
// audit entries.
func seedStore(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tok := range []string{"pendingtoken", "usedtoken"} {
		inv, err := st.AddInvite(ctx, store.Invite{Token: tok, URI: "xmpp:example.org?register;preauth=" + tok, Domain: "example.org",
			Inviter: "carol@elsewhere.org", Created: now, Expires: now.Add(7 * 24 * time.Hour)},
			store.AuditEntry{Time: now, Actor: "carol@elsewhere.org", Action: "invite.create"})
		if err != nil {
			t.Fatal(err)
		}
		if tok == "usedtoken" {
			if _, err := st.SetInviteState(ctx, inv.ID, store.StateUsed, "newbie@example.org",
				store.AuditEntry{Time: now, Actor: "newbie@example.org", Action: "invite.use"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.PutGrant(ctx, store.Grant{JID: "carol@elsewhere.org", GrantedBy: "admin@example.org", GrantedAt: now, Note: "volunteer"},
		store.AuditEntry{Time: now, Actor: "admin@example.org", Action: "grant", Subject: "carol@elsewhere.org"}); err != nil {
		t.Fatal(err)
	}
}

func TestExport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "invitebot.db")
	seedStore(t, path)
	for _, withTokens := range []bool{false, true} {
		args := []string{"export", path}
		if withTokens {
			args = []string{"export", "-with-tokens", path}
		}
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("export: exit %d: %s", code, errOut.String())
		}
		counts := map[string]int{}
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
			}
			counts[rec["type"].(string)]++
			if rec["type"] == "invite" && rec["state"] == "pending" {
				_, has := rec["token"]
				if has != withTokens || strings.Contains(sc.Text(), "pendingtoken") != withTokens {
					t.Errorf("with-tokens=%v: pending invite exported as %s", withTokens, sc.Text())
				}
			}
			if rec["type"] == "invite" && rec["state"] == "used" && rec["used_by"] != "newbie@example.org" {
				t.Errorf("used invite: %s", sc.Text())
			}
		}
		if counts["invite"] != 2 || counts["grant"] != 1 || counts["audit"] != 4 {
			t.Errorf("exported %v, want 2 invites, 1 grant, 4 audit entries", counts)
		}
	}
}

// TestExportRefusesARunningBotsDatabase: a database held open fails at
// once with a message saying what to do, never hangs.
func TestExportRefusesARunningBotsDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "invitebot.db")
	seedStore(t, path)
	st, err := store.Open(context.Background(), path) // the "running bot"
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out, errOut bytes.Buffer
	start := time.Now()
	code := run([]string{"export", path}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "locked by another process: stop the bot, or read a backup") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("export waited %s for the lock", d)
	}
}

// TestExportEventLinks: event links are exported, and each invite and
// grant says which link handed it out and what links it allows.
func TestExportEventLinks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "invitebot.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	ev, err := st.AddEvent(ctx, store.EventLink{Creator: "carol@elsewhere.org", Created: now, Expires: now.Add(3 * time.Hour), MaxUses: 20, Note: "workshop"},
		store.AuditEntry{Time: now, Actor: "carol@elsewhere.org", Action: "event.create"})
	if err == nil {
		_, err = st.AddInvite(ctx, store.Invite{Token: "t", URI: "xmpp:example.org?register;preauth=t", Domain: "example.org",
			Inviter: "carol@elsewhere.org", Created: now, Expires: now.Add(time.Hour), Event: ev.ID},
			store.AuditEntry{Time: now, Actor: "carol@elsewhere.org", Action: "invite.create"})
	}
	if err == nil {
		err = st.PutGrant(ctx, store.Grant{JID: "carol@elsewhere.org", GrantedBy: "admin@example.org", GrantedAt: now, Events: 20},
			store.AuditEntry{Time: now, Actor: "admin@example.org", Action: "grant"})
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"export", path}, &out, &errOut); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		`"type":"event","id":"` + ev.ID + `","creator":"carol@elsewhere.org"`, `"max_uses":20,"uses":0,"note":"workshop"`,
		`"event":"` + ev.ID + `"`, `"events":20`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("export lacks %s:\n%s", want, out.String())
		}
	}
}
