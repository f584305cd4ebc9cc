package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// ErrPaused is matched by PausedError: invite creation is switched off.
var ErrPaused = errors.New("invites are paused")

// ErrNotPaused means resume was asked while invites were not paused.
var ErrNotPaused = errors.New("invites are not paused")

// PausedError carries the reason an admin gave for the pause (empty when
// none was given).
type PausedError struct{ Reason string }

func (e *PausedError) Error() string { return "invites are paused: " + e.Reason }

// Is makes errors.Is(err, ErrPaused) hold.
func (e *PausedError) Is(target error) bool { return target == ErrPaused }

// pauseSwitch is the admins' switch for invite creation. Its state is in
// the store, since a pause must outlast a restart; every feature that hands
// out invites reads it there.
type pauseSwitch struct{ *core }

// Pause switches invite creation off for everybody, admins included.
// Pausing again updates the reason when one is given. It returns the state
// now in force.
func (p *pauseSwitch) Pause(ctx context.Context, a Actor, reason string) (Pause, error) {
	if err := a.may(policy.PauseInvites); err != nil {
		return Pause{}, err
	}
	cur, err := p.store.Pause(ctx)
	if err != nil {
		return Pause{}, fmt.Errorf("pause: %w", err)
	}
	if cur.Paused && (reason == "" || reason == cur.Reason) {
		return pauseOf(cur), nil // nothing changes; nothing to record
	}
	now := p.now().UTC()
	next := store.Pause{Paused: true, Reason: reason, By: a.jid, Since: now}
	if cur.Paused {
		next.Since = cur.Since
	}
	err = p.store.SetPause(ctx, next,
		store.AuditEntry{Time: now, Actor: a.jid, Action: ActionPause, Subject: "invites", Detail: reason})
	if err != nil {
		return Pause{}, fmt.Errorf("pause: %w", err)
	}
	p.log.WarnContext(ctx, "invites paused", slog.String("by", a.jid), slog.String("reason", reason))
	return pauseOf(next), nil
}

// Resume switches invite creation back on.
func (p *pauseSwitch) Resume(ctx context.Context, a Actor) error {
	if err := a.may(policy.PauseInvites); err != nil {
		return err
	}
	cur, err := p.store.Pause(ctx)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if !cur.Paused {
		return ErrNotPaused
	}
	now := p.now().UTC()
	err = p.store.SetPause(ctx, store.Pause{},
		store.AuditEntry{Time: now, Actor: a.jid, Action: ActionResume, Subject: "invites"})
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	p.log.InfoContext(ctx, "invites resumed", slog.String("by", a.jid))
	return nil
}
