package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/invites"
)

// The admin operations: pausing invites, the audit log and who invited an
// account, backups.

func runPause(ctx context.Context, b *Bot, req request) (reply, error) {
	p, err := b.svc.Pause(ctx, req.actor, req.args["reason"])
	if err != nil {
		return reply{}, err
	}
	return reply{text: fmt.Sprintf("Invites are paused for everybody (reason: %s). Invites already handed out still work; revoke an inviter to stop theirs. %s",
		pauseReason(p.Reason), req.say("Send resume to allow invites again.", "Run "+formCommand("resume")+" to allow invites again."))}, nil
}

func runResume(ctx context.Context, b *Bot, req request) (reply, error) {
	err := b.svc.Resume(ctx, req.actor)
	if errors.Is(err, invites.ErrNotPaused) {
		return reply{text: "Invites were not paused."}, nil
	}
	if err != nil {
		return reply{}, err
	}
	return reply{text: "Invites are allowed again."}, nil
}

// defaultAuditEntries is how many entries audit shows unless told.
const defaultAuditEntries = 20

func runAudit(ctx context.Context, b *Bot, req request) (reply, error) {
	n := defaultAuditEntries
	if v, err := strconv.Atoi(req.args["n"]); err == nil {
		n = v
	}
	entries, err := b.svc.Audit(ctx, req.actor, req.args["about"], n)
	if err != nil {
		return reply{}, err
	}
	if len(entries) == 0 {
		return reply{text: "No audit entries."}, nil
	}
	tbl := newTable("Audit log", fmt.Sprintf("Audit log, newest first (%d):", len(entries)),
		column{"time", "Time"}, column{"actor", "Actor"}, column{"action", "Action"},
		column{"subject", "Subject"}, column{"detail", "Detail"})
	for _, e := range entries {
		line := fmt.Sprintf("%s  %s  %s  %s", formatTime(e.Time), e.Actor, e.Action, e.Subject)
		if e.Detail != "" {
			line += "  (" + e.Detail + ")"
		}
		tbl.row(line, formatTime(e.Time), e.Actor, e.Action, e.Subject, e.Detail)
	}
	more := strings.Join(strings.Fields("audit "+req.args["about"]+" "+req.args["n"]), " ")
	return tbl.reply(req, more, ""), nil
}

func runWhoInvited(ctx context.Context, b *Bot, req request) (reply, error) {
	account := req.args["jid"]
	if !strings.Contains(account, "@") {
		account += "@" + b.svc.Domain() // a username alone is one of ours
	}
	invs, err := b.svc.WhoInvited(ctx, req.actor, account)
	if err != nil {
		return reply{}, err
	}
	if len(invs) == 0 {
		if b.svc.ServerModule() == invites.ModulePresent {
			return reply{text: fmt.Sprintf("No record of who invited %s: none of the bot's invites created it, or it was created before the server ran mod_invitebot (see audit).", account)}, nil
		}
		return reply{text: fmt.Sprintf("No record of who invited %s. Without mod_invitebot on the server only accounts created through the web page are known by name; see audit for invites used otherwise.", account)}, nil
	}
	var t strings.Builder
	for i, inv := range invs[:min(len(invs), pageSize)] {
		if i > 0 {
			t.WriteString("\n")
		}
		fmt.Fprintf(&t, "%s was invited by %s with invite %s, created %s", account, inv.Inviter, inv.ID, formatTime(inv.Created))
		if inv.Event != "" {
			fmt.Fprintf(&t, " (from event link %s)", inv.Event)
		}
		t.WriteString(".")
	}
	return reply{text: t.String()}, nil
}

func runBackup(ctx context.Context, b *Bot, req request) (reply, error) {
	path, err := b.svc.Backup(ctx, req.actor)
	if errors.Is(err, invites.ErrNoBackupDir) {
		return refusal(stanza.FeatureNotImplemented, "Backups are off: set store.backup_dir in the configuration and restart the bot."), nil
	}
	if err != nil {
		return reply{}, err
	}
	return reply{text: "Backup written: " + path}, nil
}
