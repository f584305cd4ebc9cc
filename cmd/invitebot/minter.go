package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"

	"durare.org/invitebot/homeserver/minter"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/invites"
)

// issuer returns what mints invites, as the configuration chooses, and
// says in the log which way it is: the component link (the component must
// be an admin of the domain), or the minter account's own c2s session,
// made here, for which the component needs no rights at all.
func (a *app) issuer(c2sTLS *tls.Config) invites.Issuer {
	cfg := a.cfg
	if cfg.Minting() != config.MintingAccount {
		a.log.Info("invites are minted "+cfg.MintingSummary(),
			slog.String("minting", cfg.Minting()), slog.String("component", cfg.XMPP.Component))
		return prosody.NewIssuer(cfg.DomainJID(), cfg.ComponentJID(), a.link)
	}
	mc := minter.Config{
		Account:  cfg.MinterJID(),
		Password: cfg.XMPP.MinterPassword,
		Addr:     cfg.XMPP.C2S,
		TLS:      c2sTLS,
	}
	if a.tuneMinter != nil {
		a.tuneMinter(&mc)
	}
	// Whenever the account logs in, learn what the server offers it
	// (password resets need Prosody 13 and the role's permission).
	onUp := mc.OnUp
	mc.OnUp = func() {
		if onUp != nil {
			onUp()
		}
		go a.svc.DetectServerCommands(context.Background())
	}
	a.minter = minter.New(mc, a.log.With(slog.String("room", "minter")))
	a.log.Info("invites are minted "+cfg.MintingSummary(),
		slog.String("minting", cfg.Minting()), slog.String("minter", cfg.XMPP.Minter), slog.String("c2s", cfg.XMPP.C2S))
	return prosody.NewIssuer(cfg.DomainJID(), cfg.MinterJID(), a.minter)
}

// startMinter keeps the minter account logged in, when there is one. Like
// the link it gets a context of its own: on shutdown it must outlive the
// drain, so that commands in flight can still mint.
func (a *app) startMinter(ctx context.Context) error {
	if a.minter == nil {
		return nil
	}
	mctx, closeMinter := context.WithCancel(context.WithoutCancel(ctx))
	a.closeMinter = closeMinter
	a.minterDone = a.lc.goRun("minter session", func() error {
		err := a.minter.Run(mctx)
		if err == nil && mctx.Err() == nil {
			err = errors.New("stopped by itself")
		}
		return err
	})
	return nil
}

func (a *app) stopMinter(ctx context.Context) error {
	if a.closeMinter == nil {
		return nil
	}
	a.closeMinter()
	return waitFor(ctx, a.minterDone, "minter session did not close in time")
}
