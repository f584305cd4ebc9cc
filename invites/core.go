package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"durare.org/invitebot/store"
)

// core is what every feature of the service shares: the ledger, the
// clock, the log and whom to tell. It holds no state of any feature, so
// that a feature's state stays with the feature and what one feature may
// ask of another is in its fields, not reachable through here.
type core struct {
	store    *store.Store
	domain   string
	now      func() time.Time
	log      *slog.Logger
	observer Observer
	notifier Notifier
	// watch counts what alarms look at (alarms.go); nil until the
	// service is composed, and its methods do nothing on nil.
	watch *alarmWatcher
}

// Domain is the XMPP domain the invites create accounts on.
func (c *core) Domain() string { return c.domain }

// record reads the stored invite with that id.
func (c *core) record(ctx context.Context, id string) (store.Invite, error) {
	if !ValidID(id) {
		return store.Invite{}, ErrNoSuchInvite
	}
	inv, err := c.store.Invite(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Invite{}, ErrNoSuchInvite
	} else if err != nil {
		return store.Invite{}, fmt.Errorf("look up invite: %w", err)
	}
	return inv, nil
}

// audit records a decision that changes no other data. A failure is logged,
// not returned: the caller's answer does not depend on it.
func (c *core) audit(ctx context.Context, actor, action, subject, detail string) {
	err := c.store.AppendAudit(ctx, store.AuditEntry{
		Time: c.now().UTC(), Actor: actor, Action: action, Subject: subject, Detail: detail,
	})
	if err != nil {
		c.log.ErrorContext(ctx, "audit append failed", slog.String("action", action), slog.Any("err", err))
	}
}

// notify sends ev to to; a failure is logged, not returned: news is best
// effort and must not undo what it reports.
func (c *core) notify(ctx context.Context, to string, ev Event) {
	if c.notifier == nil || isNobody(to) {
		// They are nobody: news of their invites has no one to go to.
		return
	}
	if err := c.notifier.Notify(ctx, to, ev); err != nil {
		c.log.WarnContext(ctx, "notification not sent", slog.String("to", to), slog.Any("err", err))
	}
}
