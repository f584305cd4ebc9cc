package invites

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Bounds on recording refused invite requests. The audit log is
// append-only, and an inviter over quota can send a refused request as fast
// as the bot answers: each one is counted, only the first few per window
// are written one by one (to the audit log and the log alike), and the rest
// become one summary entry.
const (
	refusalWindow           = time.Hour
	refusalsAuditedPerActor = 5
)

// refusalBudget decides which refusals of one actor reach the audit log and
// the log; it also bounds other lines others can cause (useLedger's about
// unknown tokens).
type refusalBudget struct {
	mu     sync.Mutex
	now    func() time.Time
	actors map[string]*refusalCount
}

// refusalCount is one actor's refusals in the current window.
type refusalCount struct {
	start      time.Time
	written    int
	suppressed int
}

func newRefusalBudget(now func() time.Time) *refusalBudget {
	return &refusalBudget{now: now, actors: make(map[string]*refusalCount)}
}

// take reports whether actor's next refusal is written one by one, and how
// many of actor's refusals from an earlier window went unwritten (to be
// summarised now).
func (b *refusalBudget) take(actor string) (write bool, unwritten int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	c := b.actors[actor]
	if c == nil || now.Sub(c.start) >= refusalWindow {
		if c != nil {
			unwritten = c.suppressed
		}
		c = &refusalCount{start: now}
		b.actors[actor] = c
		// Only actors refused in the last window are kept.
		for who, other := range b.actors {
			if now.Sub(other.start) >= refusalWindow && other.suppressed == 0 {
				delete(b.actors, who)
			}
		}
	}
	if c.written < refusalsAuditedPerActor {
		c.written++
		return true, unwritten
	}
	c.suppressed++
	return false, unwritten
}

// refuse counts, logs and records a request for operation op the abuse
// controls turned down, within the actor's refusal budget: the log and the
// audit log get the same lines, so a flood fills neither.
func (q *quotaGate) refuse(ctx context.Context, actor, op, why string) {
	q.observer.InviteDenied()
	q.watch.refused(ctx, actor, why)
	write, unwritten := q.refusals.take(actor)
	if unwritten > 0 {
		detail := fmt.Sprintf("%d more refusals not recorded one by one (flood)", unwritten)
		q.logRefusal(ctx, actor, op, detail)
		q.audit(ctx, actor, ActionInviteRefuse, actor, detail)
	}
	if write {
		q.logRefusal(ctx, actor, op, why)
		q.audit(ctx, actor, ActionInviteRefuse, actor, why)
	}
}

// logRefusal is the log line of one refusal: who asked, for what, and why
// not. Callers bound how often it is written (refusalBudget, or the front
// end's budget for strangers).
func (c *core) logRefusal(ctx context.Context, actor, op, why string) {
	c.log.InfoContext(ctx, "refused", slog.String("actor", actor), slog.String("operation", op),
		slog.String("reason", why))
}
