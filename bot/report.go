package bot

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/invites"
)

// ReportReader recognises the usage reports a server module pushes to the
// component (mod_invitebot says which account a token created as soon as
// it is registered). The server's package provides it; nil means the bot
// takes no reports.
type ReportReader interface {
	ReadReport(payload xml.StartElement) (invites.Report, bool)
}

// isReport says whether an IQ set's payload is a usage report r reads (a
// nil r reads none).
func isReport(r ReportReader, payload xml.StartElement) bool {
	if r == nil {
		return false
	}
	_, ok := r.ReadReport(payload)
	return ok
}

// handleReport takes a usage report from the server's mod_invitebot. Only
// the domain itself may send one: anyone else (a local user, another
// component, a remote server) could otherwise claim that any account used
// any invite. The report is recorded by a worker; the answer tells the
// module whether to send it again (wait) or not (result, or modify and auth
// errors).
func (b *Bot) handleReport(t xmlstream.TokenReadEncoder, req iqRequest, child xml.StartElement) {
	server, err := jid.Parse(b.svc.Domain())
	if err != nil || !req.iq.From.Equal(server) {
		from := req.iq.From.String()
		if b.dropLog.allow("report " + from) {
			b.log.Warn("usage report ignored: only the domain itself may report registrations",
				slog.String("from", from), slog.String("domain", b.svc.Domain()))
		}
		reply := req.reply()
		reply.fail(newError("auth", stanza.Forbidden, "", ""))
		b.encodeInline(t, reply)
		return
	}
	r, _ := b.reports.ReadReport(child)
	busy := func(ctx context.Context) {
		reply := req.reply()
		reply.fail(newError("wait", stanza.ResourceConstraint, "", "busy, try again"))
		b.send(ctx, reply)
	}
	// Reports are few and must not wait behind a flood of strangers'
	// commands: they take the privileged path admins do.
	ok := b.sched.spawnAs(server.String(), true, func(ctx context.Context) {
		reply := req.reply()
		err := b.svc.RecordReport(ctx, r)
		switch {
		case errors.Is(err, invites.ErrBadReport):
			b.log.WarnContext(ctx, "usage report refused", slog.Any("err", err))
			reply.fail(newError("modify", stanza.BadRequest, "", ""))
		case err != nil:
			b.log.ErrorContext(ctx, "usage report not recorded; the server sends it again", slog.Any("err", err))
			reply.fail(newError("wait", stanza.InternalServerError, "", ""))
		}
		b.send(ctx, reply)
	}, busy)
	if !ok {
		reply := req.reply()
		reply.fail(newError("wait", stanza.ResourceConstraint, "", "busy, try again"))
		b.encodeInline(t, reply)
	}
}
