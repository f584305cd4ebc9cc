package invites

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Sign-up confirmed by mail (requests.verify: email). The request page
// asks for a mail address too; the request waits, unseen by approvers,
// until its address is confirmed with a code sent there (by link, or
// typed on the status page). Once confirmed, approvers hear of it marked
// as such, or, within a daily cap (requests.auto_approve), the service
// approves it at once in the name of SignupActor. The mail itself is sent
// through a Confirmer, so a different channel (an SMS gateway) fits the
// same place.

// Audit actions of confirmed sign-ups.
const (
	ActionRequestConfirm     = "request.confirm"
	ActionRequestAutoApprove = "request.auto-approve"
)

// SignupActor is the inviter of record of the invites the service mints
// for automatically approved requests. It is not a JID (no dot, no @), so
// no account can hold it; its invites count toward policy.global_per_day.
const SignupActor = "auto-approval"

// isNobody reports whether j is one of the service's own actors
// (SignupActor, RecoveryActor), which no message can reach.
func isNobody(j string) bool { return j == SignupActor || j == RecoveryActor }

// VerifyEmail is the value of requests.verify that asks for a mail
// address and confirms it.
const VerifyEmail = "email"

// Tunables of the confirmation.
const (
	// codeDigits is the length of the confirmation code: short enough to
	// type from another device, and with maxCodeTries tries a guess
	// wins once in 200,000.
	codeDigits = 6
	// maxCodeTries is how many wrong codes a request takes before its
	// code stops working.
	maxCodeTries = 5
	// codeLifetime is how long a confirmation code works; an unconfirmed
	// request lapses with it.
	codeLifetime = 24 * time.Hour
	// mailTimeout bounds sending one mail.
	mailTimeout = 30 * time.Second
)

// Defaults of the mail limits.
const (
	DefaultMailsPerAddress = 3
	DefaultMailsPerDomain  = 20
)

// Confirmer sends a confirmation code, and a link holding it, to an
// address, in a language (a BCP 47 tag: the language the person saw the
// page in). The mail room implements it.
type Confirmer interface {
	SendConfirmation(ctx context.Context, to, lang string, c Confirmation) error
}

// Confirmation is what a confirmation message says.
type Confirmation struct {
	// Code is the code to type; Link opens the status page and confirms
	// with it.
	Code, Link string
	// Expires is when the code stops working.
	Expires time.Time
	// Account, when set, is the account that asked to keep the address
	// (by chat): the code goes back to the bot there, and there is no
	// link.
	Account string
}

// SignupOptions configure sign-ups confirmed by mail.
type SignupOptions struct {
	// Verify is "" (no confirmation) or VerifyEmail.
	Verify string
	// Confirmer sends the confirmations; required with VerifyEmail.
	Confirmer Confirmer
	// AutoApprovePerDay approves that many confirmed requests per
	// rolling day without an approver; 0 is off.
	AutoApprovePerDay int
	// Limits bound the mails per address and per mail domain; zero
	// values take the defaults.
	Limits policy.MailLimits
	// Blocklist refuses disposable mail domains; nil means the built-in
	// list alone.
	Blocklist *Blocklist
	// ConfirmLink builds the link of a confirmation from the status page
	// key and the code (the web's address for it).
	ConfirmLink func(key, code string) string
}

// Errors of sign-ups confirmed by mail.
var (
	// ErrMailNotSent means the mail server did not take the mail; the
	// request was not kept.
	ErrMailNotSent = errors.New("the confirmation could not be sent")
	// ErrWrongCode means the code does not match; ConfirmError says how
	// many tries are left.
	ErrWrongCode = errors.New("wrong confirmation code")
	// ErrCodeUsedUp means the code stopped working: too many wrong
	// tries, or its time ran out.
	ErrCodeUsedUp = errors.New("the confirmation code no longer works")
	// ErrAlreadyConfirmed means the address was confirmed already.
	ErrAlreadyConfirmed = errors.New("the address is confirmed already")
)

// MailRefusedError says which rule refused an address; Limit is one of
// policy's mail limits or MailBlockedDomain.
type MailRefusedError struct{ Limit policy.MailLimit }

// MailBlockedDomain is the refusal of an address on a blocked (disposable)
// mail domain.
const MailBlockedDomain policy.MailLimit = "blocked_domain"

func (e *MailRefusedError) Error() string { return "mail address refused: " + string(e.Limit) }

// ConfirmError is a wrong code, with the tries left.
type ConfirmError struct{ Left int }

func (e *ConfirmError) Error() string {
	return fmt.Sprintf("wrong confirmation code; %d tries left", e.Left)
}

// Unwrap makes a ConfirmError an ErrWrongCode.
func (e *ConfirmError) Unwrap() error { return ErrWrongCode }

// SignupObserver is told about confirmed sign-ups, for metrics.
type SignupObserver interface {
	// MailRefused counts an address refused, by limit.
	MailRefused(limit string)
	// SignupConfirmed counts a confirmed address; auto says the request
	// was approved at once.
	SignupConfirmed(auto bool)
}

func (nopObserver) MailRefused(string)   {}
func (nopObserver) SignupConfirmed(bool) {}

// mailVerifier confirms the addresses of account requests and approves
// confirmed ones within the daily cap.
type mailVerifier struct {
	*core
	desk   *requestDesk
	minter *minter
	gate   *quotaGate
	opts   SignupOptions
}

func newMailVerifier(c *core, desk *requestDesk, mt *minter, gate *quotaGate, o SignupOptions) *mailVerifier {
	if o.Limits.PerAddressPerDay <= 0 {
		o.Limits.PerAddressPerDay = DefaultMailsPerAddress
	}
	if o.Limits.PerDomainPerDay <= 0 {
		o.Limits.PerDomainPerDay = DefaultMailsPerDomain
	}
	if o.Blocklist == nil {
		o.Blocklist, _ = NewBlocklist(nil)
	}
	return &mailVerifier{core: c, desk: desk, minter: mt, gate: gate, opts: o}
}

// VerifiesMail reports whether the request page asks for a mail address
// and confirms it.
func (v *mailVerifier) VerifiesMail() bool {
	return v != nil && v.opts.Verify == VerifyEmail && v.opts.Confirmer != nil
}

// MailsCodes reports whether the service can mail confirmation codes at
// all (mail is configured), which an account keeping an address needs.
func (v *mailVerifier) MailsCodes() bool { return v != nil && v.opts.Confirmer != nil }

func (v *mailVerifier) observer() SignupObserver {
	if o, ok := v.core.observer.(SignupObserver); ok {
		return o
	}
	return nopObserver{}
}

// checkAddress normalises the address of a new request and applies the
// blocklist; the limits that need the store are applied where it is
// stored.
func (v *mailVerifier) checkAddress(s string) (string, error) {
	addr, err := NormalizeAddress(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrRequestInvalid, err)
	}
	if v.opts.Blocklist.Blocked(AddressDomain(addr)) {
		v.observer().MailRefused(string(MailBlockedDomain))
		return "", &MailRefusedError{Limit: MailBlockedDomain}
	}
	return addr, nil
}

// mailCheck turns policy's verdict on an address into the store's check.
func (v *mailVerifier) mailCheck(decide func(policy.MailLimits, policy.MailUsage) (policy.MailLimit, bool)) store.MailCheck {
	return func(u store.MailUsage) error {
		limit, ok := decide(v.opts.Limits, policy.MailUsage{HasAccount: u.Account != "", OpenRequest: u.OpenRequest,
			AddressSent: u.AddressSent, DomainSent: u.DomainSent})
		if !ok {
			v.observer().MailRefused(string(limit))
			return &MailRefusedError{Limit: limit}
		}
		return nil
	}
}

// submit records a request with its address, unconfirmed, and mails the
// code. Nobody else is told: until the address is confirmed the request
// is the requester's alone.
func (v *mailVerifier) submit(ctx context.Context, nr NewRequest) (string, error) {
	addr, err := v.checkAddress(nr.Email)
	if err != nil {
		return "", err
	}
	secret := newRequestSecret()
	code := newCode()
	now := v.now().UTC()
	expires := now.Add(codeLifetime)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	rec, err := v.store.AddMailRequest(wctx, store.Request{
		SecretHash: secretHash(secret), Name: nr.Name, Contact: nr.Contact, Message: nr.Message,
		Created: now, Expires: expires,
	}, store.MailAddress{
		Key: addressKey(addr), Address: addr, Domain: AddressDomain(addr), Lang: nr.Lang,
		CodeHash: codeHash(secret, code), CodeExpires: expires, Recovery: nr.Recovery,
	}, v.desk.requests.MaxOpen, v.mailCheck(policy.CheckSignupMail),
		store.AuditEntry{Time: now, Actor: requesterActor, Action: ActionRequestReceive, Detail: "unconfirmed"})
	var refused *MailRefusedError
	switch {
	case errors.As(err, &refused):
		return "", refused
	case errors.Is(err, store.ErrFull):
		return "", ErrRequestsFull
	case err != nil:
		return "", fmt.Errorf("submit request: %w", err)
	}
	v.desk.forgetOpenCount()
	key := rec.ID + secret
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), mailTimeout)
	defer mcancel()
	err = v.opts.Confirmer.SendConfirmation(mctx, addr, nr.Lang, Confirmation{Code: code, Link: v.opts.ConfirmLink(key, code), Expires: expires})
	if err != nil {
		v.log.ErrorContext(ctx, "confirmation not sent; the request is withdrawn", slog.String("request", rec.ID),
			slog.String("to_domain", AddressDomain(addr)), slog.Any("err", err))
		v.withdraw(wctx, rec.ID)
		return "", fmt.Errorf("%w: %w", ErrMailNotSent, err)
	}
	v.desk.requestObserver().RequestReceived()
	v.log.InfoContext(ctx, "account request received; confirmation mailed", slog.String("request", rec.ID),
		slog.String("to_domain", AddressDomain(addr)), slog.Time("code_expires", expires))
	return key, nil
}

// withdraw drops a request whose confirmation could not be sent: it
// lapses at once, and its address is forgotten, so a new try is free.
func (v *mailVerifier) withdraw(ctx context.Context, id string) {
	rec, err := v.store.Request(ctx, id)
	if err == nil {
		err = v.store.UpdateMailAddress(ctx, rec.MailKey, func(*store.MailAddress) bool { return false })
	}
	if err == nil {
		_, err = v.store.DenyRequest(ctx, id, systemActor, "", store.AuditEntry{Time: v.now().UTC(), Actor: systemActor,
			Action: ActionRequestExpire, Subject: id, Detail: "confirmation not sent"})
	}
	if err != nil {
		v.log.ErrorContext(ctx, "withdrawing a request failed", slog.String("request", id), slog.Any("err", err))
	}
	v.desk.forgetOpenCount()
}

// newCode draws a confirmation code of codeDigits decimal digits.
func newCode() string {
	var b [8]byte
	rand.Read(b[:]) // never fails since Go 1.24
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return fmt.Sprintf("%0*d", codeDigits, n%uint64(math.Pow10(codeDigits)))
}

// codeHash is what is stored of a code: bound to the status page secret,
// which the store does not hold, so the database does not give the code
// away to anyone who tries the million possibilities.
func codeHash(secret, code string) string {
	sum := sha256.Sum256([]byte("invitebot confirmation\x00" + secret + "\x00" + code))
	return hex.EncodeToString(sum[:])
}

// cleanCode reads a typed code: digits, spaces and dashes dropped.
func cleanCode(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) != codeDigits {
		return "", false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return s, true
}

// ConfirmRequest confirms the address of the request whose status page key
// is key with code (from the link, or typed). A malformed code is
// ErrWrongCode without counting a try; a wrong one counts
// (*ConfirmError); ErrCodeUsedUp after too many or once the code lapsed;
// ErrAlreadyConfirmed; ErrNoSuchRequest; a *PausedError while paused
// (nothing changes). Once confirmed, the request is approved at once
// within the daily cap of automatic approvals, or approvers are told.
func (v *mailVerifier) ConfirmRequest(ctx context.Context, key, code string) (Request, error) {
	if !v.VerifiesMail() {
		return Request{}, ErrRequestsOff
	}
	r, err := v.desk.RequestStatus(ctx, key)
	if err != nil {
		return Request{}, err
	}
	code, ok := cleanCode(code)
	if !ok {
		return r, ErrWrongCode
	}
	if err := v.paused(ctx); err != nil {
		return r, err
	}
	secret := key[16:]
	want := codeHash(secret, code)
	matches := func(stored string) bool { return subtle.ConstantTimeCompare([]byte(stored), []byte(want)) == 1 }
	now := v.now().UTC()
	rec, left, err := v.store.ConfirmMail(ctx, r.ID, matches, maxCodeTries, now.Add(v.desk.requests.ExpireAfter),
		store.AuditEntry{Time: now, Actor: requesterActor, Action: ActionRequestConfirm, Subject: r.ID})
	switch {
	case errors.Is(err, store.ErrWrongCode):
		return r, &ConfirmError{Left: left}
	case errors.Is(err, store.ErrNoTriesLeft), errors.Is(err, store.ErrCodeExpired), errors.Is(err, store.ErrNotOpen):
		return r, ErrCodeUsedUp
	case errors.Is(err, store.ErrConfirmed):
		return r, ErrAlreadyConfirmed
	case err != nil:
		return r, fmt.Errorf("confirm request: %w", err)
	}
	v.desk.forgetOpenCount()
	v.log.InfoContext(ctx, "account request: address confirmed", slog.String("request", r.ID))
	if v.opts.AutoApprovePerDay > 0 {
		approved, err := v.autoApprove(ctx, rec)
		if err == nil {
			v.observer().SignupConfirmed(true)
			return approved, nil
		}
		v.log.InfoContext(ctx, "account request not approved automatically; approvers are told",
			slog.String("request", r.ID), slog.Any("why", err))
	}
	v.observer().SignupConfirmed(false)
	req := requestOf(rec)
	nctx, ncancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer ncancel()
	v.desk.notifyApprovers(nctx, "", RequestReceived{Request: req, Domain: v.domain})
	return req, nil
}

// paused returns a *PausedError while invites are paused.
func (v *mailVerifier) paused(ctx context.Context) error {
	pause, err := v.store.Pause(ctx)
	if err != nil {
		return fmt.Errorf("read pause: %w", err)
	}
	if pause.Paused {
		return &PausedError{Reason: pause.Reason}
	}
	return nil
}

// autoApprove approves a confirmed request in SignupActor's name, within
// the daily cap and the global limit, recording the confirmed address in
// the audit log. Approvers are told it was answered.
func (v *mailVerifier) autoApprove(ctx context.Context, rec store.Request) (Request, error) {
	addr, err := v.store.MailAddress(ctx, rec.MailKey)
	if err != nil {
		return Request{}, err
	}
	a := Actor{jid: SignupActor, role: policy.Inviter}
	var answered store.Request
	record := func(ctx context.Context, inv store.Invite, e store.AuditEntry) (store.Invite, error) {
		stored, r, err := v.store.ApproveRequest(ctx, rec.ID, inv, e, store.AuditEntry{Time: e.Time, Actor: SignupActor,
			Action: ActionRequestAutoApprove, Subject: rec.ID, Detail: "confirmed address " + addr.Address})
		if errors.Is(err, store.ErrNotOpen) {
			return store.Invite{}, ErrRequestAnswered
		}
		answered = r
		return stored, err
	}
	inv, err := v.minter.mintAndRecord(ctx, a, minting{action: ActionInviteCreate, detail: "request " + rec.ID + " (automatic)",
		record: record, admit: func(ctx context.Context) (*reservation, error) {
			return v.gate.admitSignup(ctx, v.opts.AutoApprovePerDay)
		}})
	if err != nil {
		return Request{}, err
	}
	v.forgetAddressUnlessKept(ctx, addr)
	r := requestOf(answered)
	v.desk.forgetOpenCount()
	v.desk.requestObserver().RequestApproved()
	v.log.InfoContext(ctx, "account request approved automatically", slog.String("request", rec.ID), slog.String("invite", inv.ID))
	nctx, ncancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer ncancel()
	v.desk.tellAnswered(nctx, r)
	return r, nil
}

// forgetAddressUnlessKept drops the address itself once its request is
// answered, unless its owner asked to keep it for password recovery: the
// hashed key stays, so that the address cannot ask for a second account.
func (v *mailVerifier) forgetAddressUnlessKept(ctx context.Context, a store.MailAddress) {
	if a.Recovery {
		return
	}
	err := v.store.UpdateMailAddress(ctx, a.Key, func(m *store.MailAddress) bool {
		m.Address, m.Lang = "", ""
		return true
	})
	if err != nil {
		v.log.ErrorContext(ctx, "could not drop a mail address no longer needed", slog.Any("err", err))
	}
}

// admitSignup applies the daily cap of automatic approvals and the global
// limit to one automatic approval, and holds its place like admitCreate.
func (q *quotaGate) admitSignup(ctx context.Context, perDay int) (*reservation, error) {
	pause, err := q.store.Pause(ctx)
	if err != nil {
		return nil, fmt.Errorf("read pause: %w", err)
	}
	if pause.Paused {
		return nil, &PausedError{Reason: pause.Reason}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	usage, lim, err := q.usage(ctx, SignupActor, now)
	if err != nil {
		return nil, err
	}
	// The daily cap is the per-day limit of SignupActor; what is pending
	// is bounded by it already.
	lim.PerDay, lim.MaxPending = perDay, math.MaxInt32
	if refusal, ok := policy.CheckQuota(policy.Inviter, lim, usage, now); !ok {
		q.refuse(ctx, SignupActor, ActionRequestAutoApprove, "quota "+string(refusal.Limit))
		return nil, &QuotaError{refusal}
	}
	q.inflight[SignupActor]++
	q.inflightGlobal++
	return &reservation{g: q, actor: SignupActor, holds: true}, nil
}
