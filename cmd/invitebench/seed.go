package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// Seeding tunables.
const (
	// seedPerInviter is how many invites each seeded inviter has: a
	// community's long-time volunteers, each with a history.
	seedPerInviter = 100
	// seedSpan is how far back the seeded invites reach; none is younger
	// than seedNewest, so they are history and count against no rolling
	// 24-hour quota (the checks still read them all).
	seedSpan   = 2 * 365 * 24 * time.Hour
	seedNewest = 48 * time.Hour
	// seedExpiry is Prosody's default invite expiry.
	seedExpiry = 7 * 24 * time.Hour
)

// prepareDB creates the bot's database at path: grants for the benchmark's
// inviters and, when n > 0, n invites of history. The invites go through
// store.AddInvite, each with its audit entry, exactly as the bot writes
// them; they are in final states (used, expired, cancelled), because a
// long-running bot's database is mostly history and usage tracking would
// otherwise check their tokens at the server, which never minted them.
//
// Seeding writes to a scratch file in memory (/dev/shm) when there is one,
// then copies it into place: every AddInvite is a transaction with an
// fsync, which on a disk makes 100 k of them take minutes; the bot then
// runs on the copy, on disk, where its own writes pay the fsync as in a
// deployment.
func prepareDB(ctx context.Context, path string, n int, domain string, boss jid.JID, inviters []jid.JID, logf func(string, ...any)) error {
	if n == 0 {
		return writeDB(ctx, path, n, domain, boss, inviters, logf)
	}
	scratch, err := os.MkdirTemp(scratchDir, "invitebench-seed")
	if err != nil {
		return writeDB(ctx, path, n, domain, boss, inviters, logf)
	}
	defer os.RemoveAll(scratch)
	tmp := filepath.Join(scratch, "seed.db")
	if err := writeDB(ctx, tmp, n, domain, boss, inviters, logf); err != nil {
		return err
	}
	return copyFile(tmp, path)
}

// scratchDir is a memory file system on Linux; where it is missing,
// MkdirTemp fails and seeding happens in place.
const scratchDir = "/dev/shm"

// copyFile copies src to a new file dst and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeDB writes prepareDB's database at path.
func writeDB(ctx context.Context, path string, n int, domain string, boss jid.JID, inviters []jid.JID, logf func(string, ...any)) error {
	st, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now().UTC()
	for _, inv := range inviters {
		g := store.Grant{JID: inv.String(), GrantedBy: boss.String(), GrantedAt: now, Note: "invitebench"}
		err := st.PutGrant(ctx, g, store.AuditEntry{Time: now, Actor: boss.String(), Action: invites.ActionGrant})
		if err != nil {
			return err
		}
	}
	if n == 0 {
		return nil
	}
	// The benchmark's own inviters have a history like everyone else's,
	// so that their per-inviter reads are not the trivially short ones.
	seeded := make([]string, 0, n/seedPerInviter+len(inviters))
	for _, inv := range inviters {
		seeded = append(seeded, inv.String())
	}
	for i := len(seeded); i < max(1, n/seedPerInviter); i++ {
		seeded = append(seeded, fmt.Sprintf("volunteer%04d@%s", i, inviters[0].Domainpart()))
	}
	start := time.Now()
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		inv := seedInvite(i, n, domain, seeded[i%len(seeded)], now)
		entry := store.AuditEntry{Time: inv.Created, Actor: inv.Inviter, Action: invites.ActionInviteCreate}
		if _, err := st.AddInvite(ctx, inv, entry); err != nil {
			return fmt.Errorf("seed invite %d: %w", i, err)
		}
		if (i+1)%20000 == 0 {
			logf("seeded %d of %d invites (%.0f/s)", i+1, n, float64(i+1)/time.Since(start).Seconds())
		}
	}
	return nil
}

// seedInvite returns the i-th of n history invites: created evenly over
// seedSpan, six in ten used, three expired, one cancelled (and revoked at
// the server, so nothing retries it).
func seedInvite(i, n int, domain, inviter string, now time.Time) store.Invite {
	newest := now.Add(-seedNewest)
	created := newest.Add(-time.Duration(float64(seedSpan) * float64(n-i) / float64(n)))
	token := randomToken()
	inv := store.Invite{
		Token:   token,
		URI:     "xmpp:" + domain + "?register;preauth=" + token,
		Domain:  domain,
		Inviter: inviter,
		Created: created,
		Expires: created.Add(seedExpiry),
	}
	switch i % 10 {
	case 0, 1, 2, 3, 4, 5:
		inv.State = store.StateUsed
		inv.UsedBy = fmt.Sprintf("newcomer%06d@%s", i, domain)
		inv.Changed = created.Add(time.Duration(i%72) * time.Hour)
	case 6, 7, 8:
		inv.State = store.StateExpired
		inv.Changed = inv.Expires
	default:
		inv.State = store.StateCancelled
		inv.Revoked = true
		inv.Changed = created.Add(time.Hour)
	}
	return inv
}

// randomToken returns a token shaped like Prosody's (id.medium: 16
// characters) but hex, unique in practice.
func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// evict drops the file at path from the page cache (-cold). Seeding leaves
// the whole file cached as it was written, in large folios, and the kernel
// maps a whole cached folio into the bot on a read fault in it, so a warm
// start measures that state: the file as after a restore or a read by a
// backup tool. An evicted file is the state after a reboot: every page the
// bot maps is one it read, or a cached neighbour of one.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
