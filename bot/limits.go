package bot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"durare.org/invitebot/invites"
)

// Tunables for answering strangers.
const (
	// helpInterval is how often a stranger gets help: more often than a
	// refusal (people retry while setting up), still not a reflector.
	helpInterval = time.Minute
	// maxTrackedJIDs bounds each limiter's memory under a flood of
	// distinct JIDs; past it, expired entries are swept (at most once per
	// sweepEvery) and, if still full, strangers get no answer.
	maxTrackedJIDs = 10000
	sweepEvery     = time.Minute
	// strangerAuditsPerHour bounds the audit entries strangers can cause:
	// anyone with a domain can mint JIDs, and the log is append-only.
	strangerAuditsPerHour = 200
)

// replyLimiter remembers when each JID was last answered.
type replyLimiter struct {
	mu        sync.Mutex
	last      map[string]time.Time
	interval  time.Duration
	now       func() time.Time
	lastSweep time.Time
}

func newReplyLimiter(interval time.Duration, now func() time.Time) *replyLimiter {
	return &replyLimiter{last: make(map[string]time.Time), interval: interval, now: now}
}

func (l *replyLimiter) due(last, now time.Time) bool {
	return last.IsZero() || now.Sub(last) >= l.interval
}

// allow reports whether who may be answered now, and if so records it.
func (l *replyLimiter) allow(who string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.due(l.last[who], now) {
		return false
	}
	if len(l.last) >= maxTrackedJIDs {
		if now.Sub(l.lastSweep) < sweepEvery {
			return false
		}
		l.lastSweep = now
		for k, t := range l.last {
			if l.due(t, now) {
				delete(l.last, k)
			}
		}
		if len(l.last) >= maxTrackedJIDs {
			return false // still full of recent strangers: stay silent
		}
	}
	l.last[who] = now
	return true
}

// auditBudget lets a bounded number of stranger refusals into the audit log
// per hour, and records how many it left out when the hour turns.
type auditBudget struct {
	mu         sync.Mutex
	now        func() time.Time
	start      time.Time
	used       int
	suppressed int
}

func newAuditBudget(now func() time.Time) *auditBudget {
	return &auditBudget{now: now}
}

// allow reports whether one more refusal may be audited.
func (a *auditBudget) allow(ctx context.Context, svc *invites.Service) bool {
	a.mu.Lock()
	now := a.now()
	var left int
	if now.Sub(a.start) >= time.Hour {
		left, a.suppressed = a.suppressed, 0
		a.start, a.used = now, 0
	}
	ok := a.used < strangerAuditsPerHour
	if ok {
		a.used++
	} else {
		a.suppressed++
	}
	a.mu.Unlock()
	if left > 0 {
		svc.RecordRefusal(ctx, "system", fmt.Sprintf("%d refusals of strangers not recorded one by one (flood)", left))
	}
	return ok
}
