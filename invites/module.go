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
func (s *serverModule) revocation() Revocation {
	if s.modulePresent() {
		return RevokeByDeletion
	}
	if r, ok := s.issuer.(Revoker); ok {
		return r.Revocation()
	}
	return RevokeUnsupported
}

// deleteToken deletes token at the server: through mod_invitebot while it
// is loaded, else through the Issuer when it can.
func (s *serverModule) deleteToken(ctx context.Context, token string) error {
	if s.modulePresent() {
		return s.m.Delete(ctx, token)
	}
	if d, ok := s.issuer.(Deleter); ok {
		return d.Delete(ctx, token)
	}
	return errors.New("the server cannot delete tokens (mod_invitebot gone?); the next try revokes it another way")
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
}

func newServerModule(c *core, o Options) *serverModule {
	return &serverModule{core: c, issuer: o.Issuer, m: o.Module, introduce: o.Introduce}
}

// ServerModule says whether the server runs mod_invitebot, as far as the
// bot knows.
func (s *serverModule) ServerModule() ModuleState {
	if s.m == nil {
		return ModuleAbsent
	}
	return s.m.State()
}

func (s *serverModule) modulePresent() bool { return s.ServerModule() == ModulePresent }

// refreshModule asks the server again whether the module is loaded: an
// admin may load or unload it with a reload that leaves the link up.
func (s *serverModule) refreshModule(ctx context.Context) {
	if s.m == nil {
		return
	}
	if _, err := s.m.Detect(ctx); err != nil {
		s.log.DebugContext(ctx, "could not ask for mod_invitebot", slog.Any("err", err))
	}
}

// pollDue reports whether this usage check should ask the server about
// every pending token: always without the module, which is then the only
// way to learn of usage, and every moduleSafetyNet with it.
func (s *serverModule) pollDue() bool {
	if !s.modulePresent() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.lastPoll.IsZero() && now.Sub(s.lastPoll) < moduleSafetyNet {
		return false
	}
	s.lastPoll = now
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
func (s *useLedger) RecordReport(ctx context.Context, r Report) error {
	account, err := jid.Parse(r.Account)
	if err != nil || r.Token == "" || account.Localpart() == "" || account.Resourcepart() != "" ||
		account.Domainpart() != s.domain {
		return fmt.Errorf("%w: account %q on %s", ErrBadReport, r.Account, s.domain)
	}
	acct := account.String()
	inv, err := s.store.InviteByToken(ctx, r.Token)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.log.DebugContext(ctx, "server reported a registration with a token the bot did not hand out",
			slog.String("account", acct), slog.String("token", RedactToken(r.Token)))
		return nil
	case err != nil:
		return fmt.Errorf("record report: %w", err)
	}
	// A browser registration, cancel or usage check of this invite
	// finishes first (a browser registration records this very account);
	// then the invite is read again.
	unlock, err := s.lockInvite(ctx, inv.ID)
	if err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	defer unlock()
	if inv, err = s.store.Invite(ctx, inv.ID); err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	switch {
	case inv.UsedBy == acct:
		return nil // recorded already (the browser registration, or a repeated report)
	case inv.State == store.StateCancelled, inv.UsedBy != "":
		// The token worked after the invite was cancelled (before the server
		// refused it), or twice (before the module was loaded). Say so
		// where admins look.
		s.log.WarnContext(ctx, "server reported an account created with an invite that is cancelled or already used",
			slog.String("id", inv.ID), slog.String("state", string(inv.State)), slog.String("account", acct),
			slog.String("inviter", inv.Inviter))
		s.audit(ctx, acct, ActionInviteUse, inv.ID,
			fmt.Sprintf("account created although the invite was %s (reported by the server); invited by %s", inv.State, inv.Inviter))
		return nil
	}
	detail := "registered by an app, reported by the server; invited by " + inv.Inviter
	if inv.ResetFor != "" {
		detail = "a new account made with the password reset link for " + inv.ResetFor + ", reported by the server; link made by " + inv.Inviter
	}
	used, prev, err := s.store.MarkUsedBy(ctx, inv.ID, acct, store.AuditEntry{
		Time: s.now().UTC(), Actor: acct, Action: ActionInviteUse, Subject: inv.ID, Detail: detail,
	})
	if errors.Is(err, store.ErrNotPending) {
		// Settled meanwhile without the invite's lock: a bug, but asking
		// the server to send the report again would not help.
		s.log.ErrorContext(ctx, "invite settled by something else while its report held it",
			slog.String("id", inv.ID), slog.String("account", acct), slog.Any("err", err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	if prev != store.StateUsed {
		s.observer.InviteUsed()
	}
	s.log.InfoContext(ctx, "account registered with invite", slog.String("id", inv.ID),
		slog.String("account", acct), slog.String("inviter", inv.Inviter), slog.String("reported_by", "server"))
	s.module.announceUse(ctx, viewOf(used), acct)
	return nil
}

// announceUse tells the inviter which account their invite created and,
// with invites.introduce, welcomes the new account naming its inviter;
// with the module, the new account also asks the inviter to be a contact,
// the inviter's request pre-approved.
func (s *serverModule) announceUse(ctx context.Context, inv Invite, account string) {
	// A password reset link "used" by its own account introduces nobody.
	used := InviteUsed{Invite: inv, Account: account, Introduce: s.introduce && inv.ResetFor == ""}
	if used.Introduce && s.modulePresent() {
		if err := s.m.Introduce(ctx, account, inv.Inviter); err != nil {
			s.log.WarnContext(ctx, "the server could not add the inviter to the new account's contacts",
				slog.String("account", account), slog.String("inviter", inv.Inviter), slog.Any("err", err))
		} else {
			used.Requested = true
		}
	}
	s.notify(ctx, inv.Inviter, used)
	if used.Introduce && !strings.EqualFold(account, inv.Inviter) {
		s.notify(ctx, account, Welcome{Domain: s.domain, Inviter: inv.Inviter, Requested: used.Requested})
	}
}
