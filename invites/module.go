package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/store"
)

// The service's use of the server module (ServerModule): usage reports,
// token deletion and introductions while the server runs it; polling and
// consumption while it does not.

// moduleSafetyNet is how often pending tokens are still checked over c2s
// while the module reports usage: a report lost while the server was down
// must not leave an invite pending forever.
const moduleSafetyNet = 15 * time.Minute

// ErrBadReport means a usage report is malformed or names an account on
// another domain; sending it again will not help.
var ErrBadReport = errors.New("malformed usage report")

// revocation is how a token is revoked right now: deleted through
// mod_invitebot while the server runs it, else the Issuer's own way
// (consumption for Prosody). It is asked per revocation, so loading or
// unloading the module changes it without a restart.
func (sm *serverModule) revocation() Revocation {
	if sm.modulePresent() {
		return RevokeByDeletion
	}
	if r, ok := sm.issuer.(Revoker); ok {
		return r.Revocation()
	}
	return RevokeUnsupported
}

// deleteToken deletes token at the server: through mod_invitebot while it
// is loaded, else through the Issuer when it can.
func (sm *serverModule) deleteToken(ctx context.Context, token string) error {
	if sm.modulePresent() {
		return sm.m.Delete(ctx, token)
	}
	if d, ok := sm.issuer.(Deleter); ok {
		return d.Delete(ctx, token)
	}
	return errors.New("the server cannot delete tokens (mod_invitebot gone?); the next try revokes it another way")
}

// TokenPurger is implemented by ServerModules that can delete, in one
// request, every token of the bot's that expired at the server. Versions
// of the bot before expired tokens were deleted one by one left them all
// there, and the server's cost of minting grows with every token it holds.
type TokenPurger interface {
	// PurgeExpired deletes the bot's expired tokens and says how many.
	PurgeExpired(ctx context.Context) (int, error)
}

// oncePurge names the one-time clean-up of expired tokens in the store.
const oncePurge = "purge-expired-tokens"

// purgeOnce has the server delete the expired tokens that older versions
// of the bot left there, once per database: the first sweep that finds
// the module loaded asks, and the store remembers that it was done. A
// module too old to purge is asked again after the next start.
func (sm *serverModule) purgeOnce(ctx context.Context) {
	p, ok := sm.m.(TokenPurger)
	if !ok || !sm.modulePresent() {
		return
	}
	sm.mu.Lock()
	tried := sm.purgeTried
	sm.purgeTried = true
	sm.mu.Unlock()
	if tried {
		return
	}
	if done, err := sm.store.OnceDone(ctx, oncePurge); err != nil || done {
		return
	}
	n, err := p.PurgeExpired(ctx)
	if err != nil {
		sm.log.WarnContext(ctx, "the server did not delete the expired tokens older versions left there (is mod_invitebot up to date?); asking again after the next start",
			slog.Any("err", err))
		return
	}
	sm.log.InfoContext(ctx, "deleted the expired tokens that older versions left at the server", slog.Int("count", n))
	note := fmt.Sprintf("%s: %d expired tokens deleted at the server", sm.now().UTC().Format(time.RFC3339), n)
	if err := sm.store.MarkOnceDone(ctx, oncePurge, note); err != nil {
		sm.log.WarnContext(ctx, "could not record the clean-up of expired tokens; it runs again after the next start", slog.Any("err", err))
	}
}

// serverModule is the service's use of mod_invitebot, and so also how
// tokens are revoked: the module deletes them while it is loaded, the
// Issuer's own way applies otherwise.
type serverModule struct {
	*core
	issuer Issuer
	// m is nil when the bot never asks for the module (tests, other
	// servers).
	m ServerModule
	// introduce makes new accounts and their inviters acquainted
	// (invites.introduce).
	introduce bool

	mu       sync.Mutex
	lastPoll time.Time // guarded by mu
	// purgeTried is set once this process asked for the one-time purge.
	purgeTried bool // guarded by mu
	// doubt is when the oldest mint began whose answer may have been lost
	// and whose token the server was not asked about yet; zero for none
	// (inflight.go). inflight holds when each mint under way began.
	doubt    time.Time            // guarded by mu
	inflight map[uint64]time.Time // guarded by mu
	mintSeq  uint64               // guarded by mu
}

func newServerModule(c *core, o Options) *serverModule {
	// A mint under way when the bot last stopped may have left a token.
	return &serverModule{core: c, issuer: o.Issuer, m: o.Module, introduce: o.Introduce,
		doubt: c.now().Add(-startDoubt)}
}

// ServerModule says whether the server runs mod_invitebot, as far as the
// bot knows.
func (sm *serverModule) ServerModule() ModuleState {
	if sm.m == nil {
		return ModuleAbsent
	}
	return sm.m.State()
}

func (sm *serverModule) modulePresent() bool { return sm.ServerModule() == ModulePresent }

// refreshModule asks the server again whether the module is loaded: an
// admin may load or unload it with a reload that leaves the link up.
func (sm *serverModule) refreshModule(ctx context.Context) {
	if sm.m == nil {
		return
	}
	if _, err := sm.m.Detect(ctx); err != nil {
		sm.log.DebugContext(ctx, "could not ask for mod_invitebot", slog.Any("err", err))
	}
}

// pollDue reports whether this usage check should ask the server about
// every pending token: always without the module, which is then the only
// way to learn of usage, and every moduleSafetyNet with it.
func (sm *serverModule) pollDue() bool {
	if !sm.modulePresent() {
		return true
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	now := sm.now()
	if !sm.lastPoll.IsZero() && now.Sub(sm.lastPoll) < moduleSafetyNet {
		return false
	}
	sm.lastPoll = now
	return true
}

// Report is what mod_invitebot tells the bot about one registration.
type Report struct {
	// Token is the invite token the account was registered with.
	Token string
	// Account is the new account's bare JID.
	Account string
	// At is when the server registered it; zero if it did not say.
	At time.Time
}

// RecordReport records the account a token created, as the server reported
// it: the invite becomes used by that account (also when usage tracking had
// already marked it used without knowing by whom), the inviter is told at
// once, and the two are introduced. Reports about tokens the bot did not
// hand out are ignored. It returns ErrBadReport for a report that cannot be
// right, and an error when it could not be recorded (the server then sends
// it again).
func (u *useLedger) RecordReport(ctx context.Context, r Report) error {
	account, err := jid.Parse(r.Account)
	if err != nil || r.Token == "" || account.Localpart() == "" || account.Resourcepart() != "" ||
		account.Domainpart() != u.domain {
		return fmt.Errorf("%w: account %q on %s", ErrBadReport, r.Account, u.domain)
	}
	acct := account.String()
	inv, err := u.store.InviteByToken(ctx, r.Token)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// An account made on the server outside the bot (an admin's or a
		// user's own invite): admins want to see it, a few an hour.
		write, unwritten := u.unknownTokens.take("unknown token")
		if unwritten > 0 {
			u.log.InfoContext(ctx, "more registrations with tokens the bot did not hand out were not logged one by one",
				slog.Int("count", unwritten))
		}
		if write {
			u.log.InfoContext(ctx, "server reported a registration with a token the bot did not hand out",
				slog.String("account", acct), slog.String("token", RedactToken(r.Token)))
		}
		return nil
	case err != nil:
		return fmt.Errorf("record report: %w", err)
	}
	// A browser registration, cancel or usage check of this invite
	// finishes first (a browser registration records this very account);
	// then the invite is read again.
	unlock, err := u.lockInvite(ctx, inv.ID)
	if err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	defer unlock()
	if inv, err = u.store.Invite(ctx, inv.ID); err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	switch {
	case inv.UsedBy == acct:
		return nil // recorded already (the browser registration, or a repeated report)
	case inv.State == store.StateCancelled, inv.UsedBy != "":
		// The token worked after the invite was cancelled (before the server
		// refused it), or twice (before the module was loaded). Say so
		// where admins look.
		u.log.WarnContext(ctx, "server reported an account created with an invite that is cancelled or already used",
			slog.String("id", inv.ID), slog.String("state", string(inv.State)), slog.String("account", acct),
			slog.String("inviter", inv.Inviter))
		u.audit(ctx, acct, ActionInviteUse, inv.ID,
			fmt.Sprintf("account created although the invite was %s (reported by the server); invited by %s", inv.State, inv.Inviter))
		return nil
	}
	detail := "registered by an app, reported by the server; invited by " + inv.Inviter
	if inv.ResetFor != "" {
		detail = "a new account made with the password reset link for " + inv.ResetFor + ", reported by the server; link made by " + inv.Inviter
	}
	used, prev, err := u.store.MarkUsedBy(ctx, inv.ID, acct, store.AuditEntry{
		Time: u.now().UTC(), Actor: acct, Action: ActionInviteUse, Subject: inv.ID, Detail: detail,
	})
	if errors.Is(err, store.ErrNotPending) {
		// Settled meanwhile without the invite's lock: a bug, but asking
		// the server to send the report again would not help.
		u.log.ErrorContext(ctx, "invite settled by something else while its report held it",
			slog.String("id", inv.ID), slog.String("account", acct), slog.Any("err", err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	if prev != store.StateUsed {
		u.observer.InviteUsed()
	}
	u.log.InfoContext(ctx, "account registered with invite", slog.String("id", inv.ID),
		slog.String("account", acct), slog.String("inviter", inv.Inviter), slog.String("reported_by", "server"))
	u.module.announceUse(ctx, viewOf(used), acct)
	return nil
}

// announceUse tells the inviter which account their invite created and,
// with invites.introduce, welcomes the new account naming its inviter;
// with the module, the new account also asks the inviter to be a contact,
// the inviter's request pre-approved.
func (sm *serverModule) announceUse(ctx context.Context, inv Invite, account string) {
	// A password reset link "used" by its own account introduces nobody.
	// Nor does an invite of the service's own (an automatic approval).
	used := InviteUsed{Invite: inv, Account: account, Introduce: sm.introduce && inv.ResetFor == "" && !isNobody(inv.Inviter)}
	if used.Introduce && sm.modulePresent() {
		if err := sm.m.Introduce(ctx, account, inv.Inviter); err != nil {
			sm.log.WarnContext(ctx, "the server could not add the inviter to the new account's contacts",
				slog.String("account", account), slog.String("inviter", inv.Inviter), slog.Any("err", err))
		} else {
			used.Requested = true
		}
	}
	sm.notify(ctx, inv.Inviter, used)
	if used.Introduce && !strings.EqualFold(account, inv.Inviter) {
		sm.notify(ctx, account, Welcome{Domain: sm.domain, Inviter: inv.Inviter, Requested: used.Requested})
	}
	// Last, so that an alarm's news (alerts.suspend revokes the inviter)
	// follows the news of the use that raised it.
	sm.watch.used(ctx, inv, account)
}
