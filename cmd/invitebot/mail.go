package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/mail"
	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
	"durare.org/invitebot/web"
)

// signupOptions wires sign-ups confirmed by mail: the mail room's sender
// as the Confirmer, the limits, the blocklist and the web's link. It
// returns the sender too (nil without mail), for recovery.
func signupOptions(cfg *config.Config, log *slog.Logger) (invites.SignupOptions, *mail.Sender, error) {
	if !cfg.Mail.Enabled() {
		return invites.SignupOptions{}, nil, nil
	}
	m := cfg.Mail
	sender, err := mail.New(mail.Config{SMTP: m.SMTP, From: m.From, Username: m.Username, Password: m.Password,
		ServerName: m.ServerName, CAFile: m.CAFile, Domain: cfg.XMPP.Domain}, log)
	if err != nil {
		return invites.SignupOptions{}, nil, err
	}
	block, err := invites.NewBlocklist(m.BlockDomains)
	if err != nil {
		return invites.SignupOptions{}, nil, fmt.Errorf("mail.block_domains: %w", err)
	}
	publicURL := cfg.HTTP.PublicURL
	return invites.SignupOptions{
		Verify:            cfg.Requests.Verify,
		Confirmer:         sender,
		AutoApprovePerDay: cfg.Requests.AutoApprove,
		Limits:            policy.MailLimits{PerAddressPerDay: m.PerAddressPerDay, PerDomainPerDay: m.PerDomainPerDay},
		Blocklist:         block,
		ConfirmLink:       func(key, code string) string { return web.ConfirmURL(publicURL, key, code) },
	}, sender, nil
}

// recoveryOptions wires password recovery (http.recovery): the sender
// mails reset links to the landing page of their invite.
func recoveryOptions(cfg *config.Config, sender *mail.Sender) invites.RecoveryOptions {
	if sender == nil || !cfg.HTTP.Recovery {
		return invites.RecoveryOptions{}
	}
	publicURL := cfg.HTTP.PublicURL
	return invites.RecoveryOptions{Enabled: true, Mailer: sender,
		ResetLink: func(id string) string { return web.LandingURL(publicURL, id) }}
}

// exportMailAddress is the JSON Lines record of a mail address, written by
// invitebot export -with-mail only.
type exportMailAddress struct {
	Type      string    `json:"type"` // "mail"
	Account   string    `json:"account,omitempty"`
	Request   string    `json:"request,omitempty"`
	Address   string    `json:"address,omitempty"`
	Domain    string    `json:"domain"`
	Confirmed time.Time `json:"confirmed,omitzero"`
	Recovery  bool      `json:"recovery,omitempty"`
}

// exportMail writes the mail addresses kept.
func exportMail(ctx context.Context, st *store.Store, enc *json.Encoder) error {
	err := st.EachMailAddress(ctx, func(a store.MailAddress) error {
		return enc.Encode(exportMailAddress{Type: "mail", Account: a.Account, Request: a.Request, Address: a.Address,
			Domain: a.Domain, Confirmed: a.Confirmed, Recovery: a.Recovery})
	})
	if err != nil {
		return fmt.Errorf("mail addresses: %w", err)
	}
	return nil
}

// withoutMail is an audit entry's detail without a mail address: the
// automatic approvals name the confirmed address, which an export leaves
// out unless asked for.
func withoutMail(e store.AuditEntry) string {
	const prefix = "confirmed address "
	if e.Action == invites.ActionRequestAutoApprove && strings.HasPrefix(e.Detail, prefix) {
		return prefix + "(left out: export -with-mail)"
	}
	return e.Detail
}
