package store

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// Tunables of Generate.
const (
	// genBatch is how many records Generate writes per transaction. A
	// server writes one invite per transaction, so its file has a short
	// freelist; large batches rewrite most of the file per commit and
	// leave a long one, which bbolt writes out on every later commit
	// (100 k per batch left 220 k free pages in a 1 M file, and the
	// store's writes on it took 2.5 times as long as on the same data
	// compacted). 500 leaves 2 k to 4 k free pages at 100 k and 1 M, and
	// is faster at 100 k (10 s against 38 s: bbolt splits nodes only at
	// commit, so a large transaction inserts into ever larger nodes);
	// 1 M takes about three minutes.
	genBatch = 500
	// genSampleSize is how many inviters, accounts and invite ids Sample
	// lists, spread evenly over the history.
	genSampleSize = 64
	// genTokenLen matches the tokens Prosody mints (18 random bytes in
	// unpadded base64url).
	genTokenLen = 24
)

// Shares of the fates of invites that are not pending, and of the events
// around them, as a community server sees them: most invites get used, some
// expire unused, a few are cancelled.
const (
	genShareCancelled = 0.05
	genShareExpired   = 0.15
	// genShareBrowser is the share of used invites whose account is known
	// (registered through the landing page rather than detected by a token
	// check).
	genShareBrowser = 0.5
	// genShareUnrevoked is the share of cancelled invites whose token could
	// not be revoked at the server (it was unreachable).
	genShareUnrevoked = 0.02
	// genShareRefused is how many refused requests come per created invite.
	genShareRefused = 0.1
	// genShareAdmin is the share of invites created by admins.
	genShareAdmin = 0.02
	// genPauses is how many pause/resume pairs the history holds.
	genPauses = 4
)

// Profile describes the database Generate writes: the history of a
// community server that has run invitebot for a while. Zero fields take the
// values issue 14 measured with: 1,000 inviters, about 10 % pending, a year
// of history.
type Profile struct {
	// Invites is how many invites the history holds. Required.
	Invites int
	// Inviters is how many people hold a grant and create the invites.
	Inviters int
	// History is how far back the first invite was created.
	History time.Duration
	// PendingFraction is the share of invites still pending: the newest
	// ones, which have neither been used nor expired yet.
	PendingFraction float64
	// Expiry is how long after creation an invite expires (the server's
	// invite_expiry). The default, 45 days, keeps the newest 10 % of a
	// year from having expired unnoticed, as they could not on a server
	// that runs usage tracking.
	Expiry time.Duration
	// Now is the end of the history; invites expire after it.
	Now time.Time
	// Seed makes the history reproducible: one seed, one file content.
	Seed uint64
	// Domain is the server the invites are for (default durare.org).
	Domain string
	// InviterNames names the first inviters (bare JIDs), so that a load
	// test's own accounts hold grants and a history like everyone else's;
	// the rest are made up. Inviters is raised to their number if lower.
	InviterNames []string
}

// Defaults of Profile.
var (
	genDefaultNow     = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	genDefaultHistory = 365 * 24 * time.Hour
	genDefaultExpiry  = 45 * 24 * time.Hour
)

func (p Profile) withDefaults() Profile {
	if p.Inviters <= 0 {
		p.Inviters = 1000
	}
	p.Inviters = max(p.Inviters, len(p.InviterNames))
	if p.Domain == "" {
		p.Domain = "durare.org"
	}
	if p.History <= 0 {
		p.History = genDefaultHistory
	}
	if p.PendingFraction == 0 {
		p.PendingFraction = 0.10
	}
	if p.Expiry <= 0 {
		p.Expiry = genDefaultExpiry
	}
	if p.Now.IsZero() {
		p.Now = genDefaultNow
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	return p
}

// Sample names records of a generated database, for benchmarks and load
// tests to ask about.
type Sample struct {
	// Now is the end of the history (Profile.Now).
	Now time.Time
	// Admins created some of the invites; they are not granted.
	Admins []string
	// Inviters lists every inviter, all of them granted.
	Inviters []string
	// UsedBy lists accounts recorded as created with an invite.
	UsedBy []string
	// InviteIDs lists invites spread over the history, oldest first.
	InviteIDs []string
}

// Generate writes a new database at path holding the history p describes,
// and returns records to ask about. It is for benchmarks and load tests:
// the data are made up, but they go through the store's own write path
// (records, indexes and audit entries alike), so the file is what a
// server with that history would hold. Writes are batched and not synced
// (the file is not worth protecting against a crash until Generate
// returns), which makes a million invites take a few minutes. The file at
// path must not exist.
func Generate(ctx context.Context, path string, p Profile) (Sample, error) {
	p = p.withDefaults()
	if p.Invites <= 0 || p.PendingFraction < 0 || p.PendingFraction > 1 {
		return Sample{}, fmt.Errorf("generate: profile %+v: %w", p, ErrInvalid)
	}
	if _, err := os.Stat(path); err == nil {
		return Sample{}, fmt.Errorf("generate %s: %w", path, os.ErrExist)
	} else if !errors.Is(err, os.ErrNotExist) {
		return Sample{}, fmt.Errorf("generate %s: %w", path, err)
	}
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{
		Timeout: lockTimeout, NoSync: true, FreelistType: bbolt.FreelistMapType,
	})
	if err != nil {
		return Sample{}, fmt.Errorf("generate %s: %w", path, err)
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0x696e7669746562))
	g := &generator{p: p, rng: rng}
	g.s = newStore(db, g.newID, func() time.Time { return p.Now })
	_, err = g.s.migrate(ctx)
	if err == nil {
		// The layout Open makes, so that opening the file writes nothing,
		// and the check schedule, which the write path keeps.
		err = ensureMailBuckets(db)
	}
	if err == nil {
		err = g.s.makeSchedule(ctx)
	}
	if err == nil {
		err = g.run(ctx)
	}
	if err == nil {
		_, err = g.s.FillSchedule(ctx)
	}
	if err == nil {
		// One sync at the end, so the file is whole when Generate returns.
		err = db.Sync()
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Sample{}, fmt.Errorf("generate %s: %w", path, err)
	}
	return g.sample, nil
}

// generator holds the state of one Generate run.
type generator struct {
	p      Profile
	rng    *rand.Rand
	s      *Store
	tx     *bbolt.Tx
	writes int
	events eventHeap
	sample Sample
}

// genEventKind is what happens to an invite after its creation.
type genEventKind uint8

const (
	genUse genEventKind = iota
	genExpire
	genCancel
	genPause
)

// genEvent is one thing that happens at a point of the history.
type genEvent struct {
	at      time.Time
	kind    genEventKind
	id      string
	inviter string
	account string // genUse: the account created, when known
	revoked bool   // genCancel: whether the token could be revoked
	sampled bool   // genUse: list the account in Sample
}

// eventHeap orders events by time (container/heap).
type eventHeap []genEvent

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(genEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// newID draws invite IDs from the seeded source, so a profile always
// yields the same file.
func (g *generator) newID() string {
	var b [idBytes]byte
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return idEncoding.EncodeToString(b[:])
}

const genTokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func (g *generator) token() string {
	b := make([]byte, genTokenLen)
	for i := range b {
		b[i] = genTokenAlphabet[g.rng.IntN(len(genTokenAlphabet))]
	}
	return string(b)
}

// genDomains are the inviters' home servers: invitebot serves people from
// anywhere.
var genDomains = []string{"durare.org", "example.org", "jabber.example", "chat.example.net", "xmpp.example.com"}

// write runs fn in the current batch transaction, committing the batch
// once it is full.
func (g *generator) write(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if g.tx == nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		tx, err := g.s.db.Begin(true)
		if err != nil {
			return err
		}
		g.tx = tx
	}
	if err := fn(g.tx); err != nil {
		return err
	}
	g.writes++
	if g.writes >= genBatch {
		return g.commit()
	}
	return nil
}

func (g *generator) commit() error {
	if g.tx == nil {
		return nil
	}
	tx := g.tx
	g.tx, g.writes = nil, 0
	return tx.Commit()
}

func (g *generator) run(ctx context.Context) error {
	err := g.history(ctx)
	if err == nil {
		return g.commit()
	}
	if g.tx != nil {
		_ = g.tx.Rollback() // the error that stopped the run matters more
	}
	return err
}

func (g *generator) history(ctx context.Context) error {
	p := g.p
	start := p.Now.Add(-p.History)
	admins := []string{"admin@" + p.Domain, "ops@" + p.Domain}
	g.sample.Now, g.sample.Admins = p.Now, admins

	inviters := make([]string, p.Inviters)
	for i := range inviters {
		inviters[i] = fmt.Sprintf("inviter%04d@%s", i, genDomains[i%len(genDomains)])
		if i < len(p.InviterNames) {
			inviters[i] = p.InviterNames[i]
		}
		granted := start.Add(-time.Duration(g.rng.Int64N(int64(30 * 24 * time.Hour))))
		grant := Grant{JID: inviters[i], GrantedBy: admins[0], GrantedAt: granted}
		entry := AuditEntry{Time: granted, Actor: admins[0], Action: "grant", Detail: "per-day default, pending default"}
		if err := g.write(ctx, func(tx *bbolt.Tx) error { return g.s.putGrant(tx, grant, entry) }); err != nil {
			return err
		}
	}
	g.sample.Inviters = sampleOf(inviters)

	created := make([]time.Time, p.Invites)
	for i := range created {
		created[i] = start.Add(time.Duration(g.rng.Int64N(int64(p.History))))
	}
	slices.SortFunc(created, func(a, b time.Time) int { return a.Compare(b) })
	for range genPauses {
		at := start.Add(time.Duration(g.rng.Int64N(int64(p.History))))
		heap.Push(&g.events, genEvent{at: at, kind: genPause})
	}

	pendingFrom := p.Invites - int(math.Round(float64(p.Invites)*p.PendingFraction))
	step := max(1, p.Invites/genSampleSize)
	for i, at := range created {
		if err := g.until(ctx, at); err != nil {
			return err
		}
		inviter := inviters[g.rng.IntN(len(inviters))]
		if g.rng.Float64() < genShareAdmin {
			inviter = admins[g.rng.IntN(len(admins))]
		}
		if g.rng.Float64() < genShareRefused {
			entry := AuditEntry{Time: at.Add(-time.Second), Actor: inviter, Action: "invite.refuse", Subject: inviter, Detail: "quota per-day"}
			if err := g.write(ctx, func(tx *bbolt.Tx) error { _, err := g.s.appendAudit(tx, entry); return err }); err != nil {
				return err
			}
		}
		tok := g.token()
		inv := Invite{
			Token: tok, URI: "xmpp:" + p.Domain + "?register;preauth=" + tok, Domain: p.Domain,
			Inviter: inviter, Created: at, Expires: at.Add(p.Expiry), State: StatePending,
		}
		entry := AuditEntry{Time: at, Actor: inviter, Action: "invite.create"}
		if err := g.write(ctx, func(tx *bbolt.Tx) error {
			var err error
			inv, err = g.s.addInviteTx(tx, inv, entry)
			return err
		}); err != nil {
			return err
		}
		if i%step == 0 {
			g.sample.InviteIDs = append(g.sample.InviteIDs, inv.ID)
		}
		if i < pendingFrom {
			g.schedule(i, inv, i%step == 0)
		}
	}
	return g.until(ctx, p.Now)
}

// schedule decides what becomes of an invite that is not pending at Now.
// sample says whether an account it creates should be listed in Sample.
func (g *generator) schedule(i int, inv Invite, sample bool) {
	// Every event lands before Now, and expiry only where it has passed.
	latest := g.p.Now.Add(-time.Minute)
	within := func(d time.Duration) time.Time {
		at := inv.Created.Add(time.Duration(g.rng.Int64N(int64(d))))
		if at.After(latest) {
			at = latest
		}
		if at.Before(inv.Created) {
			at = inv.Created
		}
		return at
	}
	e := genEvent{id: inv.ID, inviter: inv.Inviter}
	r := g.rng.Float64()
	expiredBy := inv.Expires.Add(10 * time.Minute)
	switch {
	case r < genShareCancelled:
		e.kind, e.at = genCancel, within(2*24*time.Hour)
		e.revoked = g.rng.Float64() >= genShareUnrevoked
	case r < genShareCancelled+genShareExpired && !expiredBy.After(latest):
		e.kind, e.at = genExpire, expiredBy
	default:
		e.kind, e.at = genUse, within(3*24*time.Hour)
		if g.rng.Float64() < genShareBrowser || sample {
			e.account = fmt.Sprintf("new%07d@%s", i, g.p.Domain)
			e.sampled = sample
		}
	}
	heap.Push(&g.events, e)
}

// until applies every scheduled event up to t, in time order.
func (g *generator) until(ctx context.Context, t time.Time) error {
	for g.events.Len() > 0 && !g.events[0].at.After(t) {
		e := heap.Pop(&g.events).(genEvent)
		if err := g.apply(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

func (g *generator) apply(ctx context.Context, e genEvent) error {
	switch e.kind {
	case genPause:
		return g.write(ctx, func(tx *bbolt.Tx) error {
			if _, err := g.s.appendAudit(tx, AuditEntry{Time: e.at, Actor: g.sample.Admins[0], Action: "pause", Subject: "invites", Detail: "spam wave"}); err != nil {
				return err
			}
			_, err := g.s.appendAudit(tx, AuditEntry{Time: e.at.Add(time.Minute), Actor: g.sample.Admins[0], Action: "resume", Subject: "invites"})
			return err
		})
	case genUse:
		entry := AuditEntry{Time: e.at, Actor: "system", Action: "invite.use", Detail: "detected by token check"}
		if e.account != "" {
			entry = AuditEntry{Time: e.at, Actor: e.account, Action: "invite.use", Detail: "registered in the browser; invited by " + e.inviter}
			if e.sampled {
				g.sample.UsedBy = append(g.sample.UsedBy, e.account)
			}
		}
		return g.write(ctx, func(tx *bbolt.Tx) error {
			_, err := g.s.setInviteState(tx, e.id, StateUsed, e.account, entry)
			return err
		})
	case genExpire:
		entry := AuditEntry{Time: e.at, Actor: "system", Action: "invite.expire"}
		return g.write(ctx, func(tx *bbolt.Tx) error {
			_, err := g.s.setInviteState(tx, e.id, StateExpired, "", entry)
			return err
		})
	case genCancel:
		entry := AuditEntry{Time: e.at, Actor: e.inviter, Action: "invite.cancel"}
		return g.write(ctx, func(tx *bbolt.Tx) error {
			if _, err := g.s.setInviteState(tx, e.id, StateCancelled, "", entry); err != nil {
				return err
			}
			if !e.revoked {
				return nil
			}
			return g.s.markRevoked(tx, e.id, AuditEntry{Time: e.at.Add(time.Second), Actor: e.inviter, Action: "invite.token-revoked"})
		})
	}
	return fmt.Errorf("unknown event kind %d", e.kind)
}

// sampleOf picks up to genSampleSize elements spread evenly over all.
func sampleOf(all []string) []string {
	step := max(1, len(all)/genSampleSize)
	var out []string
	for i := 0; i < len(all) && len(out) < genSampleSize; i += step {
		out = append(out, all[i])
	}
	return out
}
