package main

import (
	"fmt"
	"log/slog"

	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/mail"
	"durare.org/invitebot/policy"
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
