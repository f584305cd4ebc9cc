package invites

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/plaintext"
	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Account requests are the middle way between open sign-ups and invites
// only: someone who knows nobody with invite rights asks on the web page,
// an approver (an admin, or an inviter whose grant says so) reads the
// request in chat and answers it. An approval mints an invite in the
// approver's name, exactly as their own invite command would (quota,
// pause, audit), so the tree of who invited whom stays exact. The
// requester follows it all on a private status page, whose address is
// the request's id and a secret only they were shown.

// Audit actions of account requests.
const (
	ActionRequestReceive = "request.receive"
	ActionRequestApprove = "request.approve"
	ActionRequestDeny    = "request.deny"
	ActionRequestExpire  = "request.expire"
)

// requesterActor is the audit actor of a request: whoever sent it has no
// address the bot could vouch for, so the log names where it came from.
const requesterActor = "web"

// Bounds on what a requester writes, in characters. The web form uses the
// same numbers, so nobody types more than will be accepted.
const (
	MaxRequestName    = 64
	MaxRequestContact = 256
	MaxRequestMessage = 500
)

// Defaults of RequestOptions.
const (
	// DefaultRequestExpiry is how long a request waits for an answer.
	DefaultRequestExpiry = 7 * 24 * time.Hour
	// DefaultMaxOpenRequests caps the requests waiting at once: past it
	// the page says requests are closed for now, rather than piling up
	// work for approvers without end.
	DefaultMaxOpenRequests = 20
)

// requestSecretBytes is the size of the secret in a status page's
// address: 128 bits, on top of the request id.
const requestSecretBytes = 16

// notifyTimeout bounds telling approvers about a new request, which must
// not depend on the requester's browser waiting for the answer.
const notifyTimeout = 10 * time.Second

// intakeCacheFor is how long RequestIntake trusts its count of open
// requests. Counting reads every request, and anyone can load the page
// that asks; the cap itself is enforced when a request is stored.
const intakeCacheFor = 2 * time.Second

// RequestOptions configure account requests.
type RequestOptions struct {
	// Enabled takes requests (http.requests); when off, nobody can ask and
	// the commands to answer are not offered.
	Enabled bool
	// ExpireAfter is how long a request stays open without an answer.
	ExpireAfter time.Duration
	// MaxOpen caps the requests open at once.
	MaxOpen int
}

// Errors of account requests.
var (
	// ErrRequestsOff means requests are switched off in the configuration.
	ErrRequestsOff = errors.New("account requests are switched off")
	// ErrRequestsFull means as many requests are open as the
	// configuration allows.
	ErrRequestsFull = errors.New("too many account requests are open")
	// ErrNoSuchRequest means there is no request with that id (or that
	// status page secret).
	ErrNoSuchRequest = errors.New("no such account request")
	// ErrRequestAnswered means the request was already approved, declined
	// or expired; the request returned with it says by whom and when.
	ErrRequestAnswered = errors.New("the account request was already answered")
	// ErrRequestInvalid means a field is missing, too long or malformed.
	ErrRequestInvalid = errors.New("account request not acceptable")
)

// RequestState is where a request is in its life.
type RequestState string

// Request states.
const (
	RequestOpen     = RequestState(store.RequestOpen)
	RequestApproved = RequestState(store.RequestApproved)
	RequestDenied   = RequestState(store.RequestDenied)
	RequestExpired  = RequestState(store.RequestExpired)
)

// Request is what front ends see of an account request. Its text fields
// are plain single lines (plaintext.Line) written by a stranger: a front
// end shows them as inert text, never as markup or links.
type Request struct {
	// ID names the request in the approvers' commands.
	ID string
	// Name is what the person wants to be called.
	Name string
	// Contact is an XMPP address they gave (unverified), or empty.
	Contact string
	// Message is who they know here or why they want an account.
	Message string
	// Created is when they asked; Expires when the request lapses.
	Created, Expires time.Time
	// State is where the request is; see Outcome for the state as of now.
	State RequestState
	// AnsweredBy is the approver who approved or declined it.
	AnsweredBy string
	// Answered is when it was answered, or marked expired.
	Answered time.Time
	// Reason is what the approver gave when declining; may be empty.
	Reason string
	// Invite is the invite an approval made.
	Invite string
	// Unconfirmed says the request's mail address waits to be
	// confirmed; MailConfirmed is when it was, if it was.
	Unconfirmed   bool
	MailConfirmed time.Time
}

// Outcome is the request's state at now: an open request whose time ran
// out is expired even before the sweep marks it so.
func (r Request) Outcome(now time.Time) RequestState {
	if r.State == RequestOpen && !now.Before(r.Expires) {
		return RequestExpired
	}
	return r.State
}

func requestOf(r store.Request) Request {
	return Request{ID: r.ID, Name: r.Name, Contact: r.Contact, Message: r.Message, Created: r.Created,
		Expires: r.Expires, State: RequestState(r.State), AnsweredBy: r.AnsweredBy, Answered: r.Answered,
		Reason: r.Reason, Invite: r.Invite, Unconfirmed: r.Unconfirmed, MailConfirmed: r.MailConfirmed}
}

// NewRequest is what a requester typed into the form.
type NewRequest struct {
	// Name is what they want to be called; required.
	Name string
	// Contact is an XMPP address they already have; optional.
	Contact string
	// Message says who they know here or why they ask; required.
	Message string
	// Email is a mail address to confirm; required with requests.verify
	// email, ignored otherwise.
	Email string
	// Recovery says the requester agrees to keep Email for password
	// recovery.
	Recovery bool
	// Lang is the language the requester saw the page in (BCP 47), for
	// the mails.
	Lang string
}

// RequestReceived tells an approver about a new request.
type RequestReceived struct {
	// Request is the new request.
	Request Request
	// Domain is where the account would be.
	Domain string
}

// RequestAnswered tells the other approvers that someone answered a
// request, so nobody answers it twice.
type RequestAnswered struct {
	// Request is the request as answered (approved or declined, by whom).
	Request Request
}

// RequestDecided tells a requester, at the address they gave, that their
// request was answered.
type RequestDecided struct {
	// Request is the request as answered.
	Request Request
	// Domain is where the account would be.
	Domain string
}

// RequestsGranted tells an inviter that their grant now lets them answer
// account requests.
type RequestsGranted struct {
	// Domain is where the accounts would be.
	Domain string
}

func (RequestReceived) isEvent() {}
func (RequestAnswered) isEvent() {}
func (RequestDecided) isEvent()  {}
func (RequestsGranted) isEvent() {}

// RequestObserver is told about account requests, for metrics. The
// Service's Observer is asked for it: one that does not implement it
// counts no requests.
type RequestObserver interface {
	RequestReceived()
	RequestApproved()
	RequestDenied()
	RequestExpired()
}

// requestDesk takes account requests from the web and has approvers answer
// them; an approval mints through the minter like the approver's own
// invite. Its options and the cached count of open requests are its own.
type requestDesk struct {
	*core
	roles  *roles
	minter *minter
	// requests configure account requests; intake counts the open ones
	// for the request page.
	requests RequestOptions
	intake   intakeCount
	// verify confirms mail addresses (signup.go); nil or off without.
	verify *mailVerifier
}

func newRequestDesk(c *core, r *roles, m *minter, o RequestOptions) *requestDesk {
	if o.ExpireAfter <= 0 {
		o.ExpireAfter = DefaultRequestExpiry
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = DefaultMaxOpenRequests
	}
	return &requestDesk{core: c, roles: r, minter: m, requests: o}
}

// RequestsEnabled reports whether account requests are taken.
func (d *requestDesk) RequestsEnabled() bool { return d.requests.Enabled }

// RequestIntake says whether a new request would be taken now: nil, or
// ErrRequestsOff, a *PausedError (the pause switch closes the request page
// too) or ErrRequestsFull. The page asks before showing the form, so
// nobody writes a request that cannot be sent.
func (d *requestDesk) RequestIntake(ctx context.Context) error {
	if !d.requests.Enabled {
		return ErrRequestsOff
	}
	pause, err := d.store.Pause(ctx)
	if err != nil {
		return fmt.Errorf("read pause: %w", err)
	}
	if pause.Paused {
		return &PausedError{Reason: pause.Reason}
	}
	open, err := d.openCount(ctx)
	if err != nil {
		return err
	}
	if open >= d.requests.MaxOpen {
		return ErrRequestsFull
	}
	return nil
}

// intakeCount is a recent count of the live open requests.
type intakeCount struct {
	mu   sync.Mutex
	n    int
	when time.Time
}

// openCount returns the number of live open requests, counted at most
// intakeCacheFor ago.
func (d *requestDesk) openCount(ctx context.Context) (int, error) {
	c := &d.intake
	c.mu.Lock()
	defer c.mu.Unlock()
	now := d.now()
	if !c.when.IsZero() && now.Sub(c.when) < intakeCacheFor && !now.Before(c.when) {
		return c.n, nil
	}
	open, err := d.liveRequests(ctx)
	if err != nil {
		return 0, err
	}
	c.n, c.when = len(open), now
	return c.n, nil
}

// forgetOpenCount makes the next intake count again, after a change it
// would otherwise miss for a moment.
func (d *requestDesk) forgetOpenCount() {
	d.intake.mu.Lock()
	d.intake.when = time.Time{}
	d.intake.mu.Unlock()
}

// SubmitRequest records a new account request, tells every approver about
// it, and returns the key of its status page: the request id followed by a
// secret of which only a hash is stored. It refuses with the errors of
// RequestIntake, and ErrRequestInvalid for a field that is missing, too
// long, or (the contact) not a bare JID.
func (d *requestDesk) SubmitRequest(ctx context.Context, nr NewRequest) (string, error) {
	if !d.requests.Enabled {
		return "", ErrRequestsOff
	}
	nr, err := cleanRequest(nr)
	if err != nil {
		return "", err
	}
	pause, err := d.store.Pause(ctx)
	if err != nil {
		return "", fmt.Errorf("submit request: read pause: %w", err)
	}
	if pause.Paused {
		return "", &PausedError{Reason: pause.Reason}
	}
	if d.verify.VerifiesMail() {
		return d.verify.submit(ctx, nr)
	}
	secret := newRequestSecret()
	now := d.now().UTC()
	// Once accepted, the request is recorded and its approvers told even
	// if the browser gives up waiting: it was shown nothing yet, but the
	// request exists.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	rec, err := d.store.AddRequest(wctx, store.Request{
		SecretHash: secretHash(secret), Name: nr.Name, Contact: nr.Contact, Message: nr.Message,
		Created: now, Expires: now.Add(d.requests.ExpireAfter),
	}, d.requests.MaxOpen, store.AuditEntry{Time: now, Actor: requesterActor, Action: ActionRequestReceive})
	if errors.Is(err, store.ErrFull) {
		return "", ErrRequestsFull
	} else if err != nil {
		return "", fmt.Errorf("submit request: %w", err)
	}
	d.forgetOpenCount()
	d.requestObserver().RequestReceived()
	d.log.InfoContext(ctx, "account request received", slog.String("request", rec.ID),
		slog.Bool("contact", rec.Contact != ""), slog.Time("expires", rec.Expires))
	nctx, ncancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer ncancel()
	d.notifyApprovers(nctx, "", RequestReceived{Request: requestOf(rec), Domain: d.domain})
	return rec.ID + secret, nil
}

// cleanRequest normalises a request's fields to plain single lines and
// checks them. The front end checks first, in its own words; this is the
// rule, for every front end.
func cleanRequest(nr NewRequest) (NewRequest, error) {
	nr.Name, nr.Message = plaintext.Line(nr.Name), plaintext.Line(nr.Message)
	contact := strings.TrimPrefix(plaintext.Line(nr.Contact), "xmpp:")
	switch {
	case nr.Name == "":
		return nr, fmt.Errorf("%w: no name", ErrRequestInvalid)
	case utf8.RuneCountInString(nr.Name) > MaxRequestName:
		return nr, fmt.Errorf("%w: name longer than %d characters", ErrRequestInvalid, MaxRequestName)
	case nr.Message == "":
		return nr, fmt.Errorf("%w: no message", ErrRequestInvalid)
	case utf8.RuneCountInString(nr.Message) > MaxRequestMessage:
		return nr, fmt.Errorf("%w: message longer than %d characters", ErrRequestInvalid, MaxRequestMessage)
	case utf8.RuneCountInString(contact) > MaxRequestContact:
		return nr, fmt.Errorf("%w: contact longer than %d characters", ErrRequestInvalid, MaxRequestContact)
	}
	nr.Contact = ""
	if contact != "" {
		c, err := ParseContact(contact)
		if err != nil {
			return nr, err
		}
		nr.Contact = c
	}
	return nr, nil
}

// ParseContact reads the XMPP address a requester gave (with or without
// xmpp:) and returns it as a normalised bare JID, or ErrRequestInvalid.
func ParseContact(s string) (string, error) {
	j, err := jid.Parse(strings.TrimPrefix(strings.TrimSpace(s), "xmpp:"))
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" || !strings.Contains(j.Domainpart(), ".") {
		return "", fmt.Errorf("%w: contact %q is not an address like name@example.org", ErrRequestInvalid, s)
	}
	return j.String(), nil
}

// requestIDEncoding writes secrets in the alphabet of ids, so a status
// page key is one lowercase word that survives being copied around.
var requestIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// requestSecretLen is the length of the encoded secret.
var requestSecretLen = requestIDEncoding.EncodedLen(requestSecretBytes)

func newRequestSecret() string {
	var b [requestSecretBytes]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return requestIDEncoding.EncodeToString(b[:])
}

func secretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ValidRequestKey reports whether s has the shape of a status page key,
// so front ends can refuse garbage before asking for it.
func ValidRequestKey(s string) bool {
	if len(s) != 16+requestSecretLen || !ValidID(s[:16]) {
		return false
	}
	_, err := requestIDEncoding.DecodeString(s[16:])
	return err == nil && strings.ToLower(s) == s
}

// RequestStatus returns the request whose status page key is key. A key
// that does not match, whatever part of it is wrong, is ErrNoSuchRequest.
func (d *requestDesk) RequestStatus(ctx context.Context, key string) (Request, error) {
	if !ValidRequestKey(key) {
		return Request{}, ErrNoSuchRequest
	}
	rec, err := d.store.Request(ctx, key[:16])
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Request{}, ErrNoSuchRequest
	case err != nil:
		return Request{}, fmt.Errorf("request status: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(secretHash(key[16:])), []byte(rec.SecretHash)) != 1 {
		return Request{}, ErrNoSuchRequest
	}
	return requestOf(rec), nil
}

// Requests lists the open requests, oldest first, for an approver.
func (d *requestDesk) Requests(ctx context.Context, a Actor) ([]Request, error) {
	if err := a.may(policy.AnswerRequests); err != nil {
		return nil, err
	}
	open, err := d.confirmedRequests(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Request, len(open))
	for i, r := range open {
		out[i] = requestOf(r)
	}
	return out, nil
}

// liveRequests reads the requests open and not lapsed now, oldest first.
func (d *requestDesk) liveRequests(ctx context.Context) ([]store.Request, error) {
	open, err := d.store.OpenRequests(ctx)
	if err != nil {
		return nil, fmt.Errorf("open requests: %w", err)
	}
	now := d.now()
	return slices.DeleteFunc(open, func(r store.Request) bool { return !now.Before(r.Expires) }), nil
}

// confirmedRequests is liveRequests without those whose address waits to
// be confirmed: approvers do not see them.
func (d *requestDesk) confirmedRequests(ctx context.Context) ([]store.Request, error) {
	open, err := d.liveRequests(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(open, func(r store.Request) bool { return r.Unconfirmed }), nil
}

// openRequest reads request id for answering it: ErrNoSuchRequest, or
// ErrRequestAnswered with the request as it stands.
func (d *requestDesk) openRequest(ctx context.Context, id string) (Request, error) {
	if !ValidID(id) {
		return Request{}, ErrNoSuchRequest
	}
	rec, err := d.store.Request(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Request{}, ErrNoSuchRequest
	case err != nil:
		return Request{}, fmt.Errorf("read request: %w", err)
	}
	if rec.Unconfirmed {
		// Not to be answered before its address is confirmed.
		return Request{}, ErrNoSuchRequest
	}
	r := requestOf(rec)
	if r.Outcome(d.now()) != RequestOpen {
		return r, ErrRequestAnswered
	}
	return r, nil
}

// ApproveRequest answers request id with an invite minted for a, exactly
// as a's own invite command would mint it (pause, quota, audit), recorded
// as a's and as the request's answer in one transaction. The first answer
// wins: a request already answered, or answered while the server minted,
// gives ErrRequestAnswered with the request as it stands (and the invite
// minted meanwhile is never stored or shown). The requester, at the
// address they gave, and the other approvers are told.
func (d *requestDesk) ApproveRequest(ctx context.Context, a Actor, id string) (Request, Invite, error) {
	if err := a.may(policy.AnswerRequests); err != nil {
		return Request{}, Invite{}, err
	}
	if r, err := d.openRequest(ctx, id); err != nil {
		return r, Invite{}, err
	}
	var answered store.Request
	record := func(ctx context.Context, inv store.Invite, e store.AuditEntry) (store.Invite, error) {
		stored, r, err := d.store.ApproveRequest(ctx, id, inv, e,
			store.AuditEntry{Time: e.Time, Actor: a.jid, Action: ActionRequestApprove, Subject: id})
		if errors.Is(err, store.ErrNotOpen) {
			return store.Invite{}, ErrRequestAnswered
		}
		answered = r
		return stored, err
	}
	inv, err := d.minter.mintAndRecord(ctx, a, minting{action: ActionInviteCreate, detail: "request " + id, record: record})
	if errors.Is(err, ErrRequestAnswered) {
		r, err := d.answeredMeanwhile(ctx, id)
		return r, Invite{}, err
	}
	if err != nil {
		return Request{}, Invite{}, err
	}
	r := requestOf(answered)
	d.forgetOpenCount()
	d.requestObserver().RequestApproved()
	d.log.InfoContext(ctx, "account request approved", slog.String("request", id), slog.String("by", a.jid),
		slog.String("invite", inv.ID))
	d.tellAnswered(ctx, r)
	return r, inv, nil
}

// DenyRequest declines request id for a, with reason (may be empty),
// which the requester's status page shows. The first answer wins, as for
// ApproveRequest, and the same people are told.
func (d *requestDesk) DenyRequest(ctx context.Context, a Actor, id, reason string) (Request, error) {
	if err := a.may(policy.AnswerRequests); err != nil {
		return Request{}, err
	}
	if r, err := d.openRequest(ctx, id); err != nil {
		return r, err
	}
	reason = plaintext.Line(reason)
	rec, err := d.store.DenyRequest(ctx, id, a.jid, reason,
		store.AuditEntry{Time: d.now().UTC(), Actor: a.jid, Action: ActionRequestDeny, Subject: id, Detail: reason})
	if errors.Is(err, store.ErrNotOpen) {
		return d.answeredMeanwhile(ctx, id)
	} else if err != nil {
		return Request{}, fmt.Errorf("deny request: %w", err)
	}
	r := requestOf(rec)
	d.forgetOpenCount()
	d.requestObserver().RequestDenied()
	d.log.InfoContext(ctx, "account request declined", slog.String("request", id), slog.String("by", a.jid))
	d.tellAnswered(ctx, r)
	return r, nil
}

// answeredMeanwhile reads request id after the store refused to answer it
// because someone else did first (or its time ran out), and returns it with
// ErrRequestAnswered.
func (d *requestDesk) answeredMeanwhile(ctx context.Context, id string) (Request, error) {
	r, err := d.openRequest(ctx, id)
	if err == nil {
		err = fmt.Errorf("request %s: the store says answered, but it reads open", id)
	}
	return r, err
}

// tellAnswered tells the requester, if they gave an address, and the other
// approvers how request r was answered.
func (d *requestDesk) tellAnswered(ctx context.Context, r Request) {
	if r.Contact != "" {
		d.notify(ctx, r.Contact, RequestDecided{Request: r, Domain: d.domain})
	}
	d.notifyApprovers(ctx, r.AnsweredBy, RequestAnswered{Request: r})
}

// ExpireRequests marks the requests nobody answered in time as expired.
// Usage tracking runs it on each sweep. Requesters are not told by chat:
// the expiry is the one outcome a stranger alone decides, and the bot
// sends no message that a stranger alone can cause; their page says it.
func (d *requestDesk) ExpireRequests(ctx context.Context) {
	expired, err := d.store.ExpireRequests(ctx, d.now(), systemActor, ActionRequestExpire)
	if err != nil {
		d.log.WarnContext(ctx, "expiring account requests failed; next sweep retries", slog.Any("err", err))
		return
	}
	for _, r := range expired {
		d.requestObserver().RequestExpired()
		d.log.InfoContext(ctx, "account request expired", slog.String("request", r.ID))
	}
	d.verify.purgeAddresses(ctx)
}

// approvers returns who may answer requests: the admins, and the holders
// of a grant that says so.
func (d *requestDesk) approvers(ctx context.Context) ([]string, error) {
	admins := d.roles.adminSet()
	var out []string
	for a := range admins {
		out = append(out, a)
	}
	grants, err := d.store.Grants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list approvers: %w", err)
	}
	for _, g := range grants {
		if g.Requests && !admins[g.JID] {
			out = append(out, g.JID)
		}
	}
	slices.Sort(out)
	return out, nil
}

// notifyApprovers sends ev to every approver but except.
func (d *requestDesk) notifyApprovers(ctx context.Context, except string, ev Event) {
	to, err := d.approvers(ctx)
	if err != nil {
		d.log.WarnContext(ctx, "approvers not told", slog.Any("err", err))
		return
	}
	for _, who := range to {
		if who != except {
			d.notify(ctx, who, ev)
		}
	}
}

// requestObserver is the observer's part that counts requests.
func (d *requestDesk) requestObserver() RequestObserver {
	if o, ok := d.observer.(RequestObserver); ok {
		return o
	}
	return nopObserver{}
}

func (nopObserver) RequestReceived() {}
func (nopObserver) RequestApproved() {}
func (nopObserver) RequestDenied()   {}
func (nopObserver) RequestExpired()  {}
