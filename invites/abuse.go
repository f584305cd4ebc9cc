package invites

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites/ibr"
	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Audit actions of the abuse controls.
const (
	ActionPause        = "pause"
	ActionResume       = "resume"
	ActionInviteExpire = "invite.expire"
	ActionTokenRevoked = "invite.token-revoked"
)

// ErrPaused is matched by PausedError: invite creation is switched off.
var ErrPaused = errors.New("invites are paused")

// PausedError carries the reason an admin gave for the pause.
type PausedError struct{ Reason string }

func (e *PausedError) Error() string { return "invites are paused: " + e.Reason }

// Is makes errors.Is(err, ErrPaused) hold.
func (e *PausedError) Is(target error) bool { return target == ErrPaused }

// QuotaError says which limit refused an invite.
type QuotaError struct{ policy.Refusal }

func (e *QuotaError) Error() string { return e.Refusal.Error() }

// Revocation is how an Issuer makes a token unusable at the server.
type Revocation int

const (
	// RevokeUnsupported: the token stays valid at the server until it
	// expires or is used.
	RevokeUnsupported Revocation = iota
	// RevokeByDeletion: the server deletes tokens on request (ejabberd's
	// delete_invite_by_token); the Issuer also implements Deleter.
	RevokeByDeletion
	// RevokeByConsumption: the server offers no deletion (Prosody), so the
	// token is used up by registering a throwaway account with it and
	// removing that account at once.
	RevokeByConsumption
)

// Revoker is implemented by Issuers that can say how their tokens are
// revoked. Issuers without it are RevokeUnsupported.
type Revoker interface {
	Revocation() Revocation
}

// Deleter is implemented by Issuers whose server deletes tokens.
type Deleter interface {
	Delete(ctx context.Context, token string) error
}

// Revocation reports that Prosody, which mints through this command, has no
// way to delete a token: it is consumed instead.
func (AdhocIssuer) Revocation() Revocation { return RevokeByConsumption }

// Notifier tells an inviter, by chat, what became of their invites.
type Notifier interface {
	Notify(ctx context.Context, to, text string) error
}

// Pause switches invite creation off for everybody, admins included.
// Pausing again updates the reason when one is given. It returns the state
// now in force.
func (s *Service) Pause(ctx context.Context, actor, reason string) (store.Pause, error) {
	if _, err := s.authorize(ctx, actor, policy.PauseInvites); err != nil {
		return store.Pause{}, err
	}
	cur, err := s.store.Pause(ctx)
	if err != nil {
		return store.Pause{}, fmt.Errorf("pause: %w", err)
	}
	if cur.Paused && (reason == "" || reason == cur.Reason) {
		return cur, nil // nothing changes; nothing to record
	}
	now := s.now().UTC()
	if reason == "" {
		reason = "no reason given"
	}
	next := store.Pause{Paused: true, Reason: reason, By: actor, Since: now}
	if cur.Paused {
		next.Since = cur.Since
	}
	err = s.store.SetPause(ctx, next,
		store.AuditEntry{Time: now, Actor: actor, Action: ActionPause, Subject: "invites", Detail: reason})
	if err != nil {
		return store.Pause{}, fmt.Errorf("pause: %w", err)
	}
	s.log.WarnContext(ctx, "invites paused", slog.String("by", actor), slog.String("reason", reason))
	return next, nil
}

// ErrNotPaused means resume was asked while invites were not paused.
var ErrNotPaused = errors.New("invites are not paused")

// Resume switches invite creation back on.
func (s *Service) Resume(ctx context.Context, actor string) error {
	if _, err := s.authorize(ctx, actor, policy.PauseInvites); err != nil {
		return err
	}
	cur, err := s.store.Pause(ctx)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if !cur.Paused {
		return ErrNotPaused
	}
	now := s.now().UTC()
	err = s.store.SetPause(ctx, store.Pause{},
		store.AuditEntry{Time: now, Actor: actor, Action: ActionResume, Subject: "invites"})
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	s.log.InfoContext(ctx, "invites resumed", slog.String("by", actor))
	return nil
}

// reservation is a place held under the quotas for one invite being
// minted.
type reservation struct {
	s      *Service
	actor  string
	holds  bool // false for admins, who are not counted
	closed bool
}

// settle runs record (the store write, or nothing when minting failed) and
// gives the place back in one step under quotaMu. Doing both at once is
// what keeps the count exact: released before the write, a concurrent
// check would undercount; released after it, it would count the invite
// twice.
func (r *reservation) settle(record func() error) error {
	if !r.holds || r.closed {
		return record()
	}
	r.closed = true
	r.s.quotaMu.Lock()
	defer r.s.quotaMu.Unlock()
	err := record()
	r.s.inflight[r.actor]--
	if r.s.inflight[r.actor] == 0 {
		delete(r.s.inflight, r.actor)
	}
	r.s.inflightGlobal--
	return err
}

// admitCreate applies the pause switch and the quotas to one invite
// request. On success it holds a place for the invite being minted, so
// that concurrent requests see it; the caller must settle it.
func (s *Service) admitCreate(ctx context.Context, actor string, role policy.Role) (*reservation, error) {
	pause, err := s.store.Pause(ctx)
	if err != nil {
		return nil, fmt.Errorf("read pause: %w", err)
	}
	if pause.Paused {
		s.refuse(ctx, actor, "paused: "+pause.Reason)
		return nil, &PausedError{Reason: pause.Reason}
	}
	if role == policy.Admin {
		return &reservation{s: s, actor: actor}, nil
	}

	s.quotaMu.Lock()
	defer s.quotaMu.Unlock()
	now := s.now()
	usage, lim, err := s.usage(ctx, actor, now)
	if err != nil {
		return nil, err
	}
	if refusal, ok := policy.CheckQuota(role, lim, usage, now); !ok {
		s.refuse(ctx, actor, "quota "+refusal.Limit)
		return nil, &QuotaError{refusal}
	}
	s.inflight[actor]++
	s.inflightGlobal++
	return &reservation{s: s, actor: actor, holds: true}, nil
}

// stillAdmitted repeats the role and pause checks right before a minted
// invite is stored. The caller holds quotaMu.
func (s *Service) stillAdmitted(ctx context.Context, actor string, role policy.Role) error {
	if role != policy.Admin {
		_, err := s.store.Grant(ctx, actor)
		if errors.Is(err, store.ErrNotFound) {
			return ErrForbidden
		} else if err != nil {
			return fmt.Errorf("read grant: %w", err)
		}
	}
	pause, err := s.store.Pause(ctx)
	if err != nil {
		return fmt.Errorf("read pause: %w", err)
	}
	if pause.Paused {
		return &PausedError{Reason: pause.Reason}
	}
	return nil
}

// usage gathers what counts against actor's limits. The caller holds
// quotaMu, so in-flight reservations are consistent with the store.
func (s *Service) usage(ctx context.Context, actor string, now time.Time) (policy.Usage, policy.Limits, error) {
	lim := s.limits
	if g, err := s.store.Grant(ctx, actor); err == nil {
		lim = lim.WithOverrides(g.PerDay, g.MaxPending)
	} else if !errors.Is(err, store.ErrNotFound) {
		return policy.Usage{}, lim, fmt.Errorf("read grant: %w", err)
	}
	mine, err := s.store.InvitesByInviter(ctx, actor)
	if err != nil {
		return policy.Usage{}, lim, fmt.Errorf("count invites: %w", err)
	}
	recent, err := s.store.InvitesCreatedSince(ctx, now.Add(-policy.QuotaWindow))
	if err != nil {
		return policy.Usage{}, lim, fmt.Errorf("count invites: %w", err)
	}
	var u policy.Usage
	for _, inv := range mine {
		if now.Sub(inv.Created) < policy.QuotaWindow {
			u.Created = append(u.Created, inv.Created)
		}
		if inv.State == store.StatePending {
			u.PendingExpiries = append(u.PendingExpiries, inv.Expires)
		}
	}
	for _, inv := range recent {
		if !s.admins[inv.Inviter] {
			u.GlobalCreated = append(u.GlobalCreated, inv.Created)
		}
	}
	for range s.inflight[actor] {
		u.Created = append(u.Created, now)
		u.PendingExpiries = append(u.PendingExpiries, time.Time{})
	}
	for range s.inflightGlobal {
		u.GlobalCreated = append(u.GlobalCreated, now)
	}
	return u, lim, nil
}

func (s *Service) refuse(ctx context.Context, actor, why string) {
	s.observer.InviteDenied()
	s.audit(ctx, actor, ActionInviteRefuse, actor, why)
}

// revokeToken makes a cancelled invite's token unusable at the server and
// records that it did. It returns nil when the server refuses the token
// now.
func (s *Service) revokeToken(ctx context.Context, actor string, inv store.Invite) error {
	method := RevokeUnsupported
	if r, ok := s.issuer.(Revoker); ok {
		method = r.Revocation()
	}
	var err error
	switch method {
	case RevokeByDeletion:
		d, ok := s.issuer.(Deleter)
		if !ok {
			return errors.New("issuer claims deletion but cannot delete")
		}
		err = d.Delete(ctx, inv.Token)
	case RevokeByConsumption:
		err = s.consumeToken(ctx, inv)
	default:
		return errors.New("the server offers no way to revoke a token; it stays valid until it expires")
	}
	if err != nil {
		return err
	}
	return s.store.MarkRevoked(ctx, inv.ID, store.AuditEntry{
		Time: s.now().UTC(), Actor: actor, Action: ActionTokenRevoked, Subject: inv.ID,
	})
}

// consumeToken uses a token up: it registers a throwaway account with it,
// removes that account again, and confirms the server now refuses the
// token.
func (s *Service) consumeToken(ctx context.Context, inv store.Invite) error {
	username := "revoked-" + randomHex(6)
	password := randomHex(16)
	account, err := ibr.Register(ctx, s.c2s, inv.Token, username, password)
	switch {
	case errors.Is(err, ibr.ErrTokenRejected):
		// Already unusable (used, expired or consumed before): confirmed
		// below all the same.
	case err != nil:
		// The server may have created the account and lost the answer:
		// try to remove it, so no account nobody can log in to remains.
		if j, jerr := jid.New(username, s.domain, ""); jerr == nil {
			if rerr := ibr.Remove(ctx, s.c2s, j, password); rerr == nil {
				s.log.WarnContext(ctx, "removed a throwaway account whose registration reply was lost",
					slog.String("account", j.String()))
			}
		}
		return fmt.Errorf("consume token of %s (throwaway account %s): %w", inv.ID, username, err)
	default:
		if err := ibr.Remove(ctx, s.c2s, account, password); err != nil {
			// The token is spent, which is what matters; the stray
			// account must go by hand.
			s.log.ErrorContext(ctx, "throwaway account left behind after consuming a token; delete it on the server",
				slog.String("account", account.String()), slog.String("invite", inv.ID), slog.Any("err", err))
		}
	}
	if err := ibr.CheckToken(ctx, s.c2s, inv.Token); !errors.Is(err, ibr.ErrTokenRejected) {
		return fmt.Errorf("token of %s still accepted after consuming it (check: %v)", inv.ID, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// CheckPending is one sweep of usage tracking: pending invites past their
// expiry become expired; those whose token the server no longer accepts
// were used, and their inviter is told; cancelled invites whose token
// could not be revoked yet are tried again.
func (s *Service) CheckPending(ctx context.Context) error {
	pending, err := s.store.PendingInvites(ctx)
	if err != nil {
		return fmt.Errorf("usage check: %w", err)
	}
	now := s.now()
	var live []store.Invite
	for _, inv := range pending {
		if !inv.Expires.IsZero() && !now.Before(inv.Expires) {
			s.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "")
			continue
		}
		live = append(live, inv)
	}
	if len(live) > 0 {
		if err := s.checkTokens(ctx, live); err != nil {
			return err
		}
	}
	if r, ok := s.issuer.(Revoker); !ok || r.Revocation() == RevokeUnsupported {
		return nil // nothing to retry with
	}
	unrevoked, err := s.store.UnrevokedCancelled(ctx)
	if err != nil {
		return fmt.Errorf("usage check: %w", err)
	}
	for _, inv := range unrevoked {
		if !inv.Expires.IsZero() && !now.Before(inv.Expires) {
			continue // the server dropped it by itself
		}
		if err := s.revokeToken(ctx, "system", inv); err != nil {
			s.log.WarnContext(ctx, "revoking a cancelled invite's token failed; will retry",
				slog.String("id", inv.ID), slog.Any("err", err))
		}
	}
	return nil
}

// expiryMargin absorbs clock differences between the bot and the server:
// a token refused this close to its expiry expired, it was not used.
const expiryMargin = 5 * time.Minute

// checkTokens asks the server about each token on one c2s stream and
// settles those it refuses.
func (s *Service) checkTokens(ctx context.Context, invs []store.Invite) error {
	checker, err := ibr.DialChecker(ctx, s.c2s)
	if err != nil {
		return fmt.Errorf("usage check: %w", err)
	}
	defer checker.Close()
	for _, inv := range invs {
		if s.registering(inv.ID) {
			continue // the browser registration records it, with the account
		}
		err := checker.Check(ctx, inv.Token)
		switch {
		case err == nil:
		case errors.Is(err, ibr.ErrTokenRejected):
			s.settleRejected(ctx, inv)
		default:
			return fmt.Errorf("usage check of %s: %w", inv.ID, err)
		}
	}
	return nil
}

// settleRejected records a pending invite whose token the server refuses:
// used when that happened well before its expiry, expired otherwise. With
// no known expiry it cannot tell, and says so instead of notifying.
func (s *Service) settleRejected(ctx context.Context, inv store.Invite) {
	switch {
	case inv.Expires.IsZero():
		s.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "token no longer accepted; expiry unknown, so maybe used")
	case s.now().Add(expiryMargin).Before(inv.Expires):
		s.settle(ctx, inv, store.StateUsed, ActionInviteUse, "detected by token check")
	default:
		s.settle(ctx, inv, store.StateExpired, ActionInviteExpire, "token refused at its expiry")
	}
}

// settleUsed checks invs at the server before a cancel and settles those
// already spent; it returns the ones still valid. When the server cannot
// be asked, all are returned: cancelling is then the safe choice.
func (s *Service) settleUsed(ctx context.Context, invs []store.Invite) []store.Invite {
	if len(invs) == 0 {
		return invs
	}
	checker, err := ibr.DialChecker(ctx, s.c2s)
	if err != nil {
		s.log.WarnContext(ctx, "cannot check tokens before cancelling", slog.Any("err", err))
		return invs
	}
	defer checker.Close()
	var live []store.Invite
	for i, inv := range invs {
		err := checker.Check(ctx, inv.Token)
		switch {
		case errors.Is(err, ibr.ErrTokenRejected):
			s.settleRejected(ctx, inv)
		case err != nil:
			s.log.WarnContext(ctx, "token check failed before cancelling", slog.Any("err", err))
			return append(live, invs[i:]...)
		default:
			live = append(live, inv)
		}
	}
	return live
}

// settle moves a pending invite to its final state and tells the inviter.
func (s *Service) settle(ctx context.Context, inv store.Invite, to store.State, action, detail string) {
	_, err := s.store.SetInviteState(ctx, inv.ID, to, "", store.AuditEntry{
		Time: s.now().UTC(), Actor: "system", Action: action, Subject: inv.ID, Detail: detail,
	})
	if errors.Is(err, store.ErrNotPending) {
		return // settled meanwhile by someone else
	}
	if err != nil {
		s.log.ErrorContext(ctx, "usage check: state change failed", slog.String("id", inv.ID), slog.Any("err", err))
		return
	}
	s.log.InfoContext(ctx, "invite "+string(to), slog.String("id", inv.ID), slog.String("inviter", inv.Inviter))
	if to == store.StateUsed {
		s.observer.InviteUsed()
		s.notify(ctx, inv.Inviter, fmt.Sprintf("Your invite %s from %s was used.", inv.ID, inv.Created.UTC().Format("2006-01-02 15:04 UTC")))
	}
}

func (s *Service) notify(ctx context.Context, to, text string) {
	if s.notifier == nil {
		return
	}
	if err := s.notifier.Notify(ctx, to, text); err != nil {
		s.log.WarnContext(ctx, "notification not sent", slog.String("to", to), slog.Any("err", err))
	}
}

// Track runs usage tracking every interval until ctx ends.
func (s *Service) Track(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := s.CheckPending(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "usage check failed; next try in one interval", slog.Any("err", err))
			}
		}
	}
}
