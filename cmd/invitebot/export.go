package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"durare.org/invitebot/store"
)

// The JSON Lines records of invitebot export. The field names are a stable
// interface for admins' scripts: add fields, never rename one.
type (
	exportInvite struct {
		Type       string    `json:"type"` // "invite"
		ID         string    `json:"id"`
		Inviter    string    `json:"inviter"`
		Domain     string    `json:"domain"`
		State      string    `json:"state"`
		Created    time.Time `json:"created"`
		Expires    time.Time `json:"expires,omitzero"`
		Changed    time.Time `json:"changed,omitzero"`
		UsedBy     string    `json:"used_by,omitempty"`
		Revoked    bool      `json:"revoked,omitempty"`
		LandingURL string    `json:"landing_url,omitempty"`
		// Token and URI of pending invites still create accounts: left
		// out unless asked for.
		Token string `json:"token,omitempty"`
		URI   string `json:"uri,omitempty"`
		// Request is the account request whose approval made the invite.
		Request string `json:"request,omitempty"`
		// Event is the event link that handed the invite out.
		Event string `json:"event,omitempty"`
	}
	exportGrant struct {
		Type       string    `json:"type"` // "grant"
		JID        string    `json:"jid"`
		GrantedBy  string    `json:"granted_by"`
		GrantedAt  time.Time `json:"granted_at"`
		Note       string    `json:"note,omitempty"`
		PerDay     int       `json:"per_day,omitempty"`
		MaxPending int       `json:"max_pending,omitempty"`
		Requests   bool      `json:"requests,omitempty"`
		Events     int       `json:"events,omitempty"`
	}
	exportEvent struct {
		Type     string    `json:"type"` // "event"
		ID       string    `json:"id"`
		Creator  string    `json:"creator"`
		Created  time.Time `json:"created"`
		Expires  time.Time `json:"expires"`
		MaxUses  int       `json:"max_uses"`
		Uses     int       `json:"uses"`
		Note     string    `json:"note,omitempty"`
		Closed   time.Time `json:"closed,omitzero"`
		ClosedBy string    `json:"closed_by,omitempty"`
	}
	exportAudit struct {
		Type    string    `json:"type"` // "audit"
		Seq     uint64    `json:"seq"`
		Time    time.Time `json:"time"`
		Actor   string    `json:"actor"`
		Action  string    `json:"action"`
		Subject string    `json:"subject,omitempty"`
		Detail  string    `json:"detail,omitempty"`
	}
)

// runExport is `invitebot export [-with-tokens] DATABASE`: it writes the
// invites, grants and audit log of a stopped bot's database or a backup to
// stdout as JSON Lines.
func runExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("invitebot export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	withTokens := fs.Bool("with-tokens", false, "include the tokens and URIs of pending invites (they still create accounts)")
	withMail := fs.Bool("with-mail", false, "include the mail addresses kept (and those in the audit log of automatic approvals)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: invitebot export [-with-tokens] [-with-mail] DATABASE   (a stopped bot's database or a backup)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	ctx := context.Background()
	st, err := store.OpenReadOnly(ctx, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "invitebot export: %v\n", notADatabase(fs.Arg(0), err))
		return 1
	}
	defer st.Close()
	w := bufio.NewWriter(stdout)
	if err := export(ctx, st, json.NewEncoder(w), exportOptions{withTokens: *withTokens, withMail: *withMail}); err != nil {
		fmt.Fprintf(stderr, "invitebot export: %v\n", err)
		return 1
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "invitebot export: %v\n", err)
		return 1
	}
	return 0
}

// exportOptions say what export includes beyond the default.
type exportOptions struct {
	// withTokens includes the tokens of pending invites.
	withTokens bool
	// withMail includes mail addresses (mail.go).
	withMail bool
}

// export writes every record: invites, then grants, then event links, then
// the audit log, then (withMail) the mail addresses kept.
func export(ctx context.Context, st *store.Store, enc *json.Encoder, o exportOptions) error {
	withTokens := o.withTokens
	err := st.EachInvite(ctx, func(inv store.Invite) error {
		rec := exportInvite{Type: "invite", ID: inv.ID, Inviter: inv.Inviter, Domain: inv.Domain, State: string(inv.State),
			Created: inv.Created, Expires: inv.Expires, Changed: inv.Changed, UsedBy: inv.UsedBy, Revoked: inv.Revoked,
			LandingURL: inv.LandingURL, Request: inv.Request, Event: inv.Event}
		if withTokens || inv.State != store.StatePending {
			rec.Token, rec.URI = inv.Token, inv.URI
		}
		return enc.Encode(rec)
	})
	if err != nil {
		return fmt.Errorf("invites: %w", err)
	}
	grants, err := st.Grants(ctx)
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	for _, g := range grants {
		if err := enc.Encode(exportGrant{Type: "grant", JID: g.JID, GrantedBy: g.GrantedBy, GrantedAt: g.GrantedAt,
			Note: g.Note, PerDay: g.PerDay, MaxPending: g.MaxPending, Requests: g.Requests, Events: g.Events}); err != nil {
			return err
		}
	}
	events, err := st.Events(ctx, "")
	if err != nil {
		return fmt.Errorf("event links: %w", err)
	}
	for _, ev := range events {
		// An event link holds no token: its id is all a visitor needs,
		// but a closed, expired or used up link hands out nothing.
		if err := enc.Encode(exportEvent{Type: "event", ID: ev.ID, Creator: ev.Creator, Created: ev.Created, Expires: ev.Expires,
			MaxUses: ev.MaxUses, Uses: ev.Uses, Note: ev.Note, Closed: ev.Closed, ClosedBy: ev.ClosedBy}); err != nil {
			return err
		}
	}
	err = st.EachAuditEntry(ctx, func(e store.AuditEntry) error {
		if !o.withMail {
			e.Detail = withoutMail(e)
		}
		return enc.Encode(exportAudit{Type: "audit", Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action,
			Subject: e.Subject, Detail: e.Detail})
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if o.withMail {
		return exportMail(ctx, st, enc)
	}
	return nil
}

// notADatabase rewrites the error of opening path when the file is no bbolt
// database at all: bbolt's own words ("invalid database", "file size too
// small 17") do not say that the file is the wrong one. Other errors (a
// lock, a missing file, an older schema) are returned as they are.
func notADatabase(path string, err error) error {
	fi, serr := os.Stat(path)
	if serr != nil || !fi.Mode().IsRegular() {
		return err
	}
	detail := ""
	switch {
	case fi.Size() == 0:
		detail = "the file is empty"
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum),
		strings.Contains(err.Error(), "file size too small"):
		// The store names the file; bbolt's error is what it wraps.
		inner := err
		for u := errors.Unwrap(inner); u != nil; u = errors.Unwrap(inner) {
			inner = u
		}
		detail = inner.Error()
	default:
		return err
	}
	return fmt.Errorf("%s is not an invitebot database (bbolt): %s", path, detail)
}
