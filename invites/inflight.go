package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"durare.org/invitebot/store"
)

// A mint whose answer is lost (the link dropped while the server minted,
// the server answered after the bot gave up, the bot stopped in between)
// may have left a token at the server that the ledger does not hold and
// nobody was handed: valid for a week, of use only to whoever finds it.
// The server cannot list its tokens, but mod_invitebot lists the bot's
// (MintLister): after such a mint, and once after each start, usage
// tracking asks for the tokens minted since, and deletes those the ledger
// does not know. Tokens of mints still under way are left alone.

// ServerToken is a token the server holds, as a MintLister lists it.
type ServerToken struct {
	Token   string
	Created time.Time
}

// MintLister is implemented by ServerModules that can list the unexpired
// tokens the bot minted since a time.
type MintLister interface {
	MintedSince(ctx context.Context, since time.Time) ([]ServerToken, error)
}

const (
	// startDoubt is how far back the first sweep after a start looks: a
	// bot that crashed in the middle of a mint and was restarted (systemd
	// restarts it within seconds). Short, because a database restored
	// from a backup lacks the invites made after the backup, whose tokens
	// people hold: only those of the last minutes before the start are
	// taken for orphans.
	startDoubt = 10 * time.Minute
	// clockSkew absorbs the difference between the bot's clock and the
	// server's, which counts in whole seconds.
	clockSkew = 5 * time.Second
)

// mintStarted records a mint under way and returns what to call when it
// is over: lost reports that its answer may have been lost, so that the
// server is asked about the tokens minted since it began.
func (sm *serverModule) mintStarted() (done func(lost bool)) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.inflight == nil {
		sm.inflight = make(map[uint64]time.Time)
	}
	sm.mintSeq++
	id, began := sm.mintSeq, sm.now()
	sm.inflight[id] = began
	return func(lost bool) {
		sm.mu.Lock()
		defer sm.mu.Unlock()
		delete(sm.inflight, id)
		if lost && (sm.doubt.IsZero() || began.Before(sm.doubt)) {
			sm.doubt = began
		}
	}
}

// reconcileWindow returns since when to ask about the bot's tokens and
// before when a token belongs to no mint under way; ok is false when there
// is nothing to ask.
func (sm *serverModule) reconcileWindow() (since, before time.Time, ok bool) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.doubt.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	before = sm.now()
	for _, began := range sm.inflight {
		if began.Before(before) {
			before = began
		}
	}
	return sm.doubt.Add(-clockSkew), before.Add(-clockSkew), true
}

// reconciled clears the doubt up to before, unless a lost mint since then
// set it anew.
func (sm *serverModule) reconciled(since, before time.Time, skipped bool) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if !sm.doubt.Add(-clockSkew).Equal(since) {
		return // moved: a newer lost mint is still to be asked about
	}
	if skipped {
		sm.doubt = before
		return
	}
	sm.doubt = time.Time{}
}

// reconcileMints deletes at the server the bot's tokens that the ledger
// does not hold, minted since the doubt began and before every mint still
// under way. Without the module (or with one too old to list) it does
// nothing: such tokens stay valid until they expire.
func (sm *serverModule) reconcileMints(ctx context.Context) {
	lister, ok := sm.m.(MintLister)
	if !ok || !sm.modulePresent() {
		return
	}
	since, before, ok := sm.reconcileWindow()
	if !ok {
		return
	}
	tokens, err := lister.MintedSince(ctx, since)
	if err != nil {
		sm.log.DebugContext(ctx, "could not ask the server for the bot's recent tokens; asking again next sweep", slog.Any("err", err))
		return
	}
	skipped, deleted := false, 0
	for _, tok := range tokens {
		if !tok.Created.Before(before) {
			skipped = true // a mint under way may still record it
			continue
		}
		if sm.known(ctx, tok.Token) {
			continue
		}
		if err := sm.deleteToken(ctx, tok.Token); err != nil {
			sm.log.WarnContext(ctx, "could not delete a token whose mint was lost; asking again next sweep",
				slog.String("token", RedactToken(tok.Token)), slog.Any("err", err))
			return
		}
		deleted++
		sm.log.WarnContext(ctx, "deleted at the server a token nobody was handed: the answer to its mint was lost (the link dropped, the server answered too late, or the bot stopped)",
			slog.String("token", RedactToken(tok.Token)), slog.Time("minted", tok.Created))
	}
	sm.reconciled(since, before, skipped)
	if deleted > 0 {
		sm.audit(ctx, systemActor, ActionInviteCancel, "", fmt.Sprintf("deleted at the server %d token(s) nobody was handed: the answer to their mint was lost", deleted))
	}
}

// known reports whether the ledger holds token; when the store cannot say,
// it counts as known, so that nothing is deleted on a guess.
func (sm *serverModule) known(ctx context.Context, token string) bool {
	_, err := sm.store.InviteByToken(ctx, token)
	return !errors.Is(err, store.ErrNotFound)
}
