package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/store"
)

// TestBackupTakenUnderLoadRestores: an admin asks for a backup while
// invites are being created; a new bot started on that backup serves the
// same grants and invites, and a pending invite from it still registers an
// account.
func TestBackupTakenUnderLoadRestores(t *testing.T) {
	w := newWorld(t)
	w.bot.stop(t)
	w.backupDir = filepath.Join(t.TempDir(), "backups")
	w.bot = w.startBot(t)
	admin := w.user(t, "admin", w.srv.Domain)
	carol := w.user(t, "carol", w.srv.OtherDomain)
	carolJID := "carol@" + w.srv.OtherDomain
	expectContains(t, admin.Chat(t, w.component, "grant "+carolJID+" per-day 50 pending 50"), "may now create invites")
	expectNotice(t, carol, "You may now create account invites")

	// Load: carol fires invite requests while the admin asks for a backup.
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	const burst = 20
	var wg sync.WaitGroup
	wg.Go(func() {
		for range burst {
			if err := carol.Send(ctx, w.component, stanza.ChatMessage, "invite"); err != nil {
				t.Error(err)
				return
			}
		}
	})
	reply := admin.Chat(t, w.component, "backup")
	wg.Wait()
	for range burst {
		expectContains(t, carol.Next(t).Body, "preauth=")
	}
	m := regexp.MustCompile(`Backup written: (\S+)`).FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("backup reply: %q", reply)
	}
	backup := m[1]
	if filepath.Dir(backup) != w.backupDir {
		t.Errorf("backup %s is not in %s", backup, w.backupDir)
	}

	// What the backup holds, read the way an admin would check it.
	st, err := store.OpenReadOnly(ctx, backup)
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	saved, err := st.InvitesByInviter(ctx, carolJID)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	// Restore: a new bot on a copy of the backup.
	w.bot.stop(t)
	w.dbPath = backup
	w.bot = w.startBot(t)
	expectContains(t, admin.Chat(t, w.component, "inviters"), carolJID, "per-day 50")
	list := carol.Chat(t, w.component, "invites")
	for _, inv := range saved {
		if !strings.Contains(list, inv.ID) && len(saved) <= 25 {
			t.Errorf("restored bot does not list invite %s:\n%s", inv.ID, list)
		}
	}
	if len(saved) > 0 {
		account, err := ibr.Register(ctx, w.srv.IBRConfig(), saved[0].Token, "restored", password)
		if err != nil {
			t.Fatalf("a pending invite from the backup does not register: %v", err)
		}
		t.Logf("registered %s with an invite restored from the backup (%d invites in it)", account, len(saved))
	}
}
