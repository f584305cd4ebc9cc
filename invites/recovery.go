package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Password recovery (http.recovery). Someone who forgot their password
// names their account on the recovery page. If the account has a mail
// address it confirmed and agreed to keep for this, the service makes a
// password reset link (the same as an admin's reset: single use,
// recorded, cancellable, the account told over XMPP) and mails it there.
// If not, the account's inviter and the admins are asked in chat. Either
// way the page says the same, at once: the work runs after the answer, so
// neither the words nor the time taken tell which accounts exist or have
// an address.

// RecoveryActor is the maker of record of reset links the recovery page
// mails. Like SignupActor it is nobody: no news goes to it.
const RecoveryActor = "recovery"

// Audit actions of password recovery.
const (
	ActionRecoveryMail = "recovery.mail"
	ActionRecoveryAsk  = "recovery.ask"
)

// Tunables of password recovery.
const (
	// recoveryTimeout bounds the work behind one recovery request: the
	// server's answers, minting, the mail.
	recoveryTimeout = time.Minute
	// askEvery is how often the people of one account are asked for it
	// at most: a stranger typing a name again and again does not flood
	// its inviter.
	askEvery = time.Hour
	// asksPerHour bounds the chat messages recovery requests cause in
	// all, whoever types which names.
	asksPerHour = 20
)

// ErrRecoveryOff means the recovery page is switched off.
var ErrRecoveryOff = errors.New("password recovery is switched off")

// RecoveryMailer sends a password reset link to the address an account
// confirmed, in a language. The mail room implements it.
type RecoveryMailer interface {
	SendReset(ctx context.Context, to, lang string, r ResetMail) error
}

// ResetMail is what a password reset message says.
type ResetMail struct {
	// Account is the account the link resets; Link is where to go.
	Account, Link string
	// Expires is when the link stops working.
	Expires time.Time
}

// RecoveryOptions configure password recovery.
type RecoveryOptions struct {
	// Enabled opens recovery (http.recovery).
	Enabled bool
	// Mailer sends the reset links.
	Mailer RecoveryMailer
	// ResetLink is the page of a reset link's invite (the web's address
	// for it).
	ResetLink func(inviteID string) string
}

// RecoveryAsked asks an account's inviter, or an admin, to make a password
// reset link for it: someone asked on the recovery page, and the account
// has no address to mail one to.
type RecoveryAsked struct {
	// Account is the account someone asked for.
	Account string
	// Inviter says the recipient invited it (else they are an admin).
	Inviter bool
}

func (RecoveryAsked) isEvent() {}

// recovery serves the recovery page: it mails reset links, or asks people.
type recovery struct {
	*core
	roles  *roles
	resets *resetLinks
	mail   *mailVerifier
	opts   RecoveryOptions

	mu    sync.Mutex
	asked map[string]time.Time // account → when its people were asked
	asks  []time.Time          // every ask of the last hour
	work  sync.WaitGroup
}

func newRecovery(c *core, r *roles, rs *resetLinks, mv *mailVerifier, o RecoveryOptions) *recovery {
	return &recovery{core: c, roles: r, resets: rs, mail: mv, opts: o, asked: make(map[string]time.Time)}
}

// RecoveryEnabled reports whether the recovery page is open.
func (rc *recovery) RecoveryEnabled() bool { return rc.opts.Enabled && rc.opts.Mailer != nil }

// Recover takes a recovery request for username (a name on the domain, or
// a full address) from a page shown in lang, and returns at once: nil
// whatever the name, or ErrRecoveryOff, or a *PausedError (the pause
// switch stops recovery too). The work runs after it returns.
func (rc *recovery) Recover(ctx context.Context, username, lang string) error {
	if !rc.RecoveryEnabled() {
		return ErrRecoveryOff
	}
	if err := rc.mail.paused(ctx); err != nil {
		return err
	}
	rc.work.Add(1)
	go func() {
		defer rc.work.Done()
		defer func() {
			if p := recover(); p != nil {
				rc.log.Error("password recovery panicked", slog.Any("panic", p))
			}
		}()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recoveryTimeout)
		defer cancel()
		rc.recoverAccount(wctx, username, lang)
	}()
	return nil
}

// WaitRecoveries waits for the recovery work under way, or until ctx ends:
// the program calls it once the web server stopped, before the database
// closes.
func (rc *recovery) WaitRecoveries(ctx context.Context) error {
	done := make(chan struct{})
	go func() { rc.work.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("recovery work still running: %w", ctx.Err())
	}
}

// accountOf maps what someone typed to an account of the domain, or "".
func (rc *recovery) accountOf(username string) string {
	username = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(username), "xmpp:"))
	local, domain, ok := strings.Cut(username, "@")
	if ok && !strings.EqualFold(domain, rc.domain) {
		return ""
	}
	j, err := jid.New(local, rc.domain, "")
	if err != nil || j.Localpart() == "" {
		return ""
	}
	return j.String()
}

// recoverAccount does the work of one recovery request. Nothing of it
// reaches the person who asked: it is logged, without addresses.
func (rc *recovery) recoverAccount(ctx context.Context, username, lang string) {
	account := rc.accountOf(username)
	if account == "" {
		rc.log.InfoContext(ctx, "password recovery: not an account name of the domain")
		return
	}
	exists, err := rc.accountExists(ctx, account)
	if err == nil && !exists {
		// An account that is gone takes its addresses with it.
		if _, err := rc.mail.forgetMail(ctx, RecoveryActor, account); err != nil {
			rc.log.WarnContext(ctx, "password recovery: forgetting a deleted account's addresses failed", slog.Any("err", err))
		}
	}
	if err != nil || !exists {
		rc.log.InfoContext(ctx, "password recovery: no such account, or the server did not say",
			slog.String("account", account), slog.Any("err", err))
		return
	}
	addrs, err := rc.store.MailAddressesOf(ctx, account)
	if err != nil {
		rc.log.ErrorContext(ctx, "password recovery: reading addresses failed", slog.Any("err", err))
		return
	}
	addrs = slices.DeleteFunc(addrs, func(a store.MailAddress) bool {
		return !a.Recovery || a.Address == "" || a.Confirmed.IsZero()
	})
	if len(addrs) == 0 || !rc.resets.ResetsAvailable() {
		rc.askPeople(ctx, account)
		return
	}
	slices.SortFunc(addrs, func(a, b store.MailAddress) int { return b.Confirmed.Compare(a.Confirmed) })
	rc.mailReset(ctx, account, addrs[0], lang)
}

// accountExists asks the server whether account exists.
func (rc *recovery) accountExists(ctx context.Context, account string) (bool, error) {
	checker, ok := rc.resets.issuer.(AccountChecker)
	if !ok {
		return false, ErrAccountUnknown
	}
	return checker.AccountExists(ctx, jid.MustParse(account))
}

// mailReset makes a reset link for account and mails it to a, within the
// daily mail limits of the address.
func (rc *recovery) mailReset(ctx context.Context, account string, a store.MailAddress, lang string) {
	err := rc.store.CountMail(ctx, a.Key, a.Domain, rc.now().UTC(), rc.mail.mailCheck(policy.CheckMailSend))
	if err != nil {
		rc.log.InfoContext(ctx, "password recovery: no mail", slog.String("account", account), slog.Any("why", err))
		return
	}
	inv, err := rc.resets.Reset(ctx, Actor{jid: RecoveryActor, role: policy.Admin}, account)
	if err != nil {
		rc.log.WarnContext(ctx, "password recovery: no reset link", slog.String("account", account), slog.Any("err", err))
		return
	}
	err = rc.opts.Mailer.SendReset(ctx, a.Address, lang, ResetMail{Account: account, Link: rc.opts.ResetLink(inv.ID), Expires: inv.Expires})
	if err != nil {
		rc.log.ErrorContext(ctx, "password recovery: the mail was not sent; the link stays pending until it expires",
			slog.String("account", account), slog.String("invite", inv.ID), slog.Any("err", err))
		return
	}
	rc.audit(ctx, RecoveryActor, ActionRecoveryMail, account, "reset link "+inv.ID+" mailed to the confirmed address")
	rc.log.InfoContext(ctx, "password recovery: reset link mailed", slog.String("account", account), slog.String("invite", inv.ID))
}

// askPeople asks account's inviter and the admins to make a reset link,
// at most once per askEvery per account and asksPerHour in all.
func (rc *recovery) askPeople(ctx context.Context, account string) {
	if !rc.mayAsk(account) {
		rc.log.InfoContext(ctx, "password recovery: asked for this account, or too many, lately; nobody asked again",
			slog.String("account", account))
		return
	}
	makers, err := rc.resets.accountMakers(ctx, account)
	if err != nil {
		rc.log.WarnContext(ctx, "password recovery: who invited the account is unknown", slog.Any("err", err))
	}
	admins := rc.roles.adminSet()
	var told []string
	for _, m := range makers {
		if strings.Contains(m, "@") && !admins[m] {
			rc.notify(ctx, m, RecoveryAsked{Account: account, Inviter: true})
			told = append(told, m)
		}
	}
	for _, a := range rc.roles.adminList() {
		rc.notify(ctx, a, RecoveryAsked{Account: account, Inviter: slices.Contains(makers, a)})
	}
	rc.audit(ctx, RecoveryActor, ActionRecoveryAsk, account, fmt.Sprintf("no confirmed address: the admins and %d inviter(s) asked", len(told)))
	rc.log.InfoContext(ctx, "password recovery: inviter and admins asked", slog.String("account", account), slog.Int("inviters", len(told)))
}

// mayAsk takes one ask for account, if neither limit is reached.
func (rc *recovery) mayAsk(account string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	now := rc.now()
	if last, ok := rc.asked[account]; ok && now.Sub(last) < askEvery {
		return false
	}
	rc.asks = slices.DeleteFunc(rc.asks, func(t time.Time) bool { return now.Sub(t) >= time.Hour })
	if len(rc.asks) >= asksPerHour {
		return false
	}
	for a, t := range rc.asked {
		if now.Sub(t) >= askEvery {
			delete(rc.asked, a)
		}
	}
	rc.asked[account] = now
	rc.asks = append(rc.asks, now)
	return true
}
