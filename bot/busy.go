package bot

import (
	"context"
	"log/slog"
	"time"

	"mellium.im/xmpp/jid"
)

// busyRepliesPerSecond bounds the "busy" answers to everyone together: a
// flood from many addresses must not turn the bot into an amplifier.
const busyRepliesPerSecond = 10

// Answers to a chat message the bot could not run.
const (
	msgBusyDropped = "I could not take this message: too many of your requests are waiting already. " +
		"Send it again once my earlier replies have arrived."
	msgBusyTimedOut = "This request waited too long for its turn and was not run. Send it again."
)

// busyAnswers tells people that a message of theirs was not run, instead of
// dropping it in silence: each sender at most once per dropLogInterval
// (one answer covers a burst), everyone together at most
// busyRepliesPerSecond times a second.
type busyAnswers struct {
	perSender *replyLimiter
	overall   *replyLimiter
}

func newBusyAnswers(now func() time.Time) *busyAnswers {
	return &busyAnswers{
		perSender: newReplyLimiter(dropLogInterval, now),
		overall:   newReplyLimiter(time.Second/busyRepliesPerSecond, now),
	}
}

// allow reports whether sender may be told now, and records it.
func (a *busyAnswers) allow(sender string) bool {
	return a.perSender.allow(sender) && a.overall.allow("")
}

// chatDropped answers a chat message the scheduler did not take (shutting
// down, the queue full, or the sender's share used up) and logs it. The
// answer goes out from a goroutine of its own: the read loop never waits.
// head addresses the answer (and carries the message's thread).
func (b *Bot) chatDropped(from jid.JID, head outboundMessage) {
	sender := from.Bare().String()
	if b.dropLog.allow(sender) {
		b.log.Warn("messages dropped: shutting down, busy, or this sender has too many requests in flight",
			slog.String("from", sender))
	}
	if !b.busy.allow(sender) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fallbackTimeout)
		defer cancel()
		m := head
		m.Body = msgBusyDropped
		b.send(ctx, m)
	}()
}
