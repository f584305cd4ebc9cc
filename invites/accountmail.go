package invites

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// An account of the domain may keep a mail address for password recovery
// by chatting with the bot: it names the address, a code is mailed there,
// and the account sends the code back. It may also show the address it
// keeps, and have it forgotten.

// Audit actions of an account's own address. The address stays out of
// the audit log.
const (
	ActionMailAdd    = "mail.add"
	ActionMailRemove = "mail.remove"
)

// accountCodeLifetime is how long the code for an account's own address
// works: the person is at their chat app already.
const accountCodeLifetime = time.Hour

// ErrNoPendingCode means the account asked for no code (or it lapsed).
var ErrNoPendingCode = errors.New("no confirmation code is pending")

// localAccount returns a's JID if it is an account of the domain.
func (v *mailVerifier) localAccount(a Actor) (string, error) {
	j, err := jid.Parse(a.jid)
	if err != nil || j.Domainpart() != v.domain || j.Localpart() == "" {
		return "", ErrNotLocalAccount
	}
	return j.Bare().String(), nil
}

// AddAccountMail mails a confirmation code to address for a's own account,
// in language lang; the address is kept once the code comes back
// (ConfirmAccountMail). It refuses what the request page refuses
// (ErrRequestInvalid, *MailRefusedError: blocked domains, an address of
// another account, the daily mail limits), an actor who is no account of
// the domain (ErrNotLocalAccount), and while paused.
func (v *mailVerifier) AddAccountMail(ctx context.Context, a Actor, address, lang string) error {
	account, err := v.localAccount(a)
	if err != nil {
		return err
	}
	if v.opts.Confirmer == nil {
		return ErrRecoveryOff
	}
	if err := v.paused(ctx); err != nil {
		return err
	}
	addr, err := v.checkAddress(address)
	if err != nil {
		return err
	}
	key, domain := addressKey(addr), AddressDomain(addr)
	now := v.now().UTC()
	check := func(u store.MailUsage) error {
		if u.Account != "" && u.Account != account {
			v.observer().MailRefused(string(policy.MailHasAccount))
			return &MailRefusedError{Limit: policy.MailHasAccount}
		}
		return v.mailCheck(policy.CheckMailSend)(u)
	}
	if err := v.store.CountMail(ctx, key, domain, now, check); err != nil {
		var refused *MailRefusedError
		if errors.As(err, &refused) {
			return refused
		}
		return fmt.Errorf("add account mail: %w", err)
	}
	if err := v.dropPending(ctx, account); err != nil {
		return err
	}
	code := newCode()
	expires := now.Add(accountCodeLifetime)
	err = v.store.PutMailAddress(ctx, store.MailAddress{Key: key, Address: addr, Domain: domain, Lang: lang, Account: account,
		CodeHash: codeHash(account, code), CodeExpires: expires, Recovery: true})
	if err != nil {
		return fmt.Errorf("add account mail: %w", err)
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mailTimeout)
	defer cancel()
	if err := v.opts.Confirmer.SendConfirmation(mctx, addr, lang, Confirmation{Code: code, Account: account, Expires: expires}); err != nil {
		v.log.ErrorContext(ctx, "account mail: confirmation not sent", slog.String("account", account),
			slog.String("to_domain", domain), slog.Any("err", err))
		_ = v.dropPending(ctx, account)
		return fmt.Errorf("%w: %w", ErrMailNotSent, err)
	}
	v.log.InfoContext(ctx, "account mail: code sent", slog.String("account", account), slog.String("to_domain", domain))
	return nil
}

// dropPending forgets the account's addresses that wait for a code: a new
// one replaces them.
func (v *mailVerifier) dropPending(ctx context.Context, account string) error {
	recs, err := v.store.MailAddressesOf(ctx, account)
	if err != nil {
		return fmt.Errorf("account mail: %w", err)
	}
	for _, r := range recs {
		if r.CodeHash == "" || r.Request != "" {
			continue
		}
		err := v.store.UpdateMailAddress(ctx, r.Key, func(m *store.MailAddress) bool { return false })
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("account mail: %w", err)
		}
	}
	return nil
}

// ConfirmAccountMail confirms the address a's account asked to keep with
// code: ErrNoPendingCode, *ConfirmError for a wrong code (tries counted),
// ErrCodeUsedUp after too many or once it lapsed, ErrWrongCode for one
// that is not six digits (not counted).
func (v *mailVerifier) ConfirmAccountMail(ctx context.Context, a Actor, code string) error {
	account, err := v.localAccount(a)
	if err != nil {
		return err
	}
	code, ok := cleanCode(code)
	if !ok {
		return ErrWrongCode
	}
	recs, err := v.store.MailAddressesOf(ctx, account)
	if err != nil {
		return fmt.Errorf("confirm account mail: %w", err)
	}
	var pending *store.MailAddress
	for i := range recs {
		if recs[i].CodeHash != "" && recs[i].Request == "" {
			pending = &recs[i]
		}
	}
	if pending == nil {
		return ErrNoPendingCode
	}
	want := codeHash(account, code)
	now := v.now().UTC()
	var result error
	err = v.store.UpdateMailAddress(ctx, pending.Key, func(m *store.MailAddress) bool {
		switch {
		case m.CodeHash == "" || m.Account != account:
			result = ErrNoPendingCode
		case m.Tries >= maxCodeTries || !now.Before(m.CodeExpires):
			result = ErrCodeUsedUp
		case subtle.ConstantTimeCompare([]byte(m.CodeHash), []byte(want)) != 1:
			m.Tries++
			result = &ConfirmError{Left: maxCodeTries - m.Tries}
			if m.Tries >= maxCodeTries {
				result = ErrCodeUsedUp
			}
		default:
			m.CodeHash, m.Confirmed = "", now
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("confirm account mail: %w", err)
	}
	if result != nil {
		return result
	}
	v.audit(ctx, account, ActionMailAdd, account, "address confirmed for password recovery")
	v.log.InfoContext(ctx, "account mail: confirmed", slog.String("account", account))
	return nil
}

// AccountMail returns the address a's account keeps for recovery, masked
// (f•••@example.org), or "" if none.
func (v *mailVerifier) AccountMail(ctx context.Context, a Actor) (string, error) {
	account, err := v.localAccount(a)
	if err != nil {
		return "", err
	}
	recs, err := v.store.MailAddressesOf(ctx, account)
	if err != nil {
		return "", fmt.Errorf("account mail: %w", err)
	}
	for _, r := range recs {
		if r.Recovery && r.Address != "" && !r.Confirmed.IsZero() {
			return MaskAddress(r.Address), nil
		}
	}
	return "", nil
}

// RemoveAccountMail forgets every address of a's account (kept, pending,
// or the hashed key of its sign-up) and returns how many records went.
func (v *mailVerifier) RemoveAccountMail(ctx context.Context, a Actor) (int, error) {
	account, err := v.localAccount(a)
	if err != nil {
		return 0, err
	}
	return v.forgetMail(ctx, account, account)
}

// forgetMail deletes the address records of account, auditing it as by.
func (v *mailVerifier) forgetMail(ctx context.Context, by, account string) (int, error) {
	recs, err := v.store.MailAddressesOf(ctx, account)
	if err != nil {
		return 0, fmt.Errorf("forget mail: %w", err)
	}
	n := 0
	for _, r := range recs {
		err := v.store.UpdateMailAddress(ctx, r.Key, func(*store.MailAddress) bool { return false })
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, fmt.Errorf("forget mail: %w", err)
		}
		n++
	}
	if n > 0 {
		v.audit(ctx, by, ActionMailRemove, account, fmt.Sprintf("%d address record(s) removed", n))
	}
	return n, nil
}

// MaskAddress shows enough of an address for its owner to recognise it.
func MaskAddress(s string) string {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" {
		return "•••"
	}
	r := []rune(local)
	return string(r[0]) + "•••@" + domain
}

// purgeAddresses drops the mail addresses no longer needed (see
// store.PurgeMailAddresses). The sweep of usage tracking runs it.
func (v *mailVerifier) purgeAddresses(ctx context.Context) {
	n, err := v.store.PurgeMailAddresses(ctx, v.now().UTC())
	if err != nil {
		v.log.WarnContext(ctx, "dropping mail addresses no longer needed failed; the next sweep retries", slog.Any("err", err))
	} else if n > 0 {
		v.log.InfoContext(ctx, "mail addresses no longer needed dropped", slog.Int("records", n))
	}
}
