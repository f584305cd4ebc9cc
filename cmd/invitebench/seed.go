package main

import (
	"context"
	"encoding/json"
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

// seedPerInviter is how many invites each seeded inviter has on average: a
// community's long-time volunteers, each with a history.
const seedPerInviter = 100

// prepareDB creates the bot's database at path: grants for the benchmark's
// inviters and, when n > 0, n invites of history written by
// store.Generate (a year of it, ending now: 10 % still pending, the rest
// used, expired or cancelled, each with its audit entries and indexes, as
// the bot's own write path leaves them). The benchmark's inviters are
// among the generated ones, so their per-inviter reads are not the
// trivially short ones. Generate batches its writes and syncs once, which
// takes a 1 M history from half an hour of one fsync per invite to
// minutes; the bot then runs on the file on disk, where its own writes pay
// the fsync as in a deployment. The file starts out cached as written;
// -cold evicts it.
func prepareDB(ctx context.Context, path string, n int, domain string, boss jid.JID, inviters []jid.JID, cache string, logf func(string, ...any)) (store.Sample, error) {
	if n == 0 {
		return store.Sample{}, writeGrants(ctx, path, boss, inviters)
	}
	if cache != "" {
		return cachedDB(ctx, path, n, domain, boss, inviters, cache, logf)
	}
	names := make([]string, len(inviters))
	for i, inv := range inviters {
		names[i] = inv.String()
	}
	start := time.Now()
	smp, err := store.Generate(ctx, path, store.Profile{
		Invites: n, Inviters: max(1, n/seedPerInviter), InviterNames: names,
		Domain: domain, Now: time.Now().UTC(),
	})
	if err != nil {
		return smp, err
	}
	logf("seeded %d invites in %.1f s", n, time.Since(start).Seconds())
	return smp, nil
}

// cachedDB is prepareDB through a cache directory (-seed-cache): a history
// generated once is copied for later runs, since a 1 M history takes
// minutes to write. The sample is kept beside it as JSON.
func cachedDB(ctx context.Context, path string, n int, domain string, boss jid.JID, inviters []jid.JID, cache string, logf func(string, ...any)) (store.Sample, error) {
	base := filepath.Join(cache, fmt.Sprintf("seed-%d-%s-%d", n, domain, len(inviters)))
	var smp store.Sample
	if raw, err := os.ReadFile(base + ".json"); err == nil && json.Unmarshal(raw, &smp) == nil {
		if err := copyFile(base+".db", path); err == nil {
			logf("seeded database copied from %s.db", base)
			return smp, nil
		}
	}
	os.Remove(base + ".db")
	smp, err := prepareDB(ctx, base+".db", n, domain, boss, inviters, "", logf)
	if err != nil {
		return smp, err
	}
	raw, err := json.Marshal(smp)
	if err == nil {
		err = os.WriteFile(base+".json", raw, 0o600)
	}
	if err != nil {
		return smp, err
	}
	return smp, copyFile(base+".db", path)
}

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

// writeGrants creates a database at path holding only the grants of the
// benchmark's inviters.
func writeGrants(ctx context.Context, path string, boss jid.JID, inviters []jid.JID) error {
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
	return nil
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
