package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// TestExportLeavesMailOutUnlessAsked: the mail addresses kept, and the one
// an automatic approval's audit entry names, appear in an export only with
// -with-mail.
func TestExportLeavesMailOutUnlessAsked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "invitebot.db")
	seedStore(t, path)
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)
	err = st.PutMailAddress(ctx, store.MailAddress{Key: "k1", Address: "frank@example.net", Domain: "example.net",
		Account: "frank@example.org", Confirmed: now, Recovery: true})
	if err == nil {
		err = st.AppendAudit(ctx, store.AuditEntry{Time: now, Actor: invites.SignupActor, Action: invites.ActionRequestAutoApprove,
			Subject: "request", Detail: "confirmed address frank@example.net"})
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, withMail := range []bool{false, true} {
		args := []string{"export", path}
		if withMail {
			args = []string{"export", "-with-mail", path}
		}
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("export: exit %d: %s", code, errOut.String())
		}
		has := strings.Contains(out.String(), "frank@example.net")
		if has != withMail {
			t.Errorf("export %v: the address appears: %v\n%s", args, has, out.String())
		}
		if withMail && !strings.Contains(out.String(), `"type":"mail"`) {
			t.Errorf("export -with-mail has no mail record:\n%s", out.String())
		}
	}
}
