package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/homeserver/auto"
	"durare.org/invitebot/homeserver/ejabberd"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/minter"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/config"
	"mellium.im/xmpp/jid"
)

// server returns the home server as the invites service uses it: one
// that serves Prosody or ejabberd, whichever the link finds (a.software),
// minting as the configuration chooses. It says in the log which way that
// is: the component link (the component must be an admin of the domain;
// Prosody only), or the minter account's own c2s session, made here, for
// which the component needs no rights at all.
func (a *app) server(c2s ibr.Config) *auto.Server {
	cfg := a.cfg
	ac := auto.Config{
		Registrar: homeserver.Registrar{C2S: c2s},
		Identify: func(ctx context.Context) (homeserver.Software, error) {
			return homeserver.Identify(ctx, a.link, cfg.ComponentJID(), cfg.DomainJID())
		},
	}
	if cfg.Minting() != config.MintingAccount {
		a.log.Info("invites are minted "+cfg.MintingSummary(),
			slog.String("minting", cfg.Minting()), slog.String("component", cfg.XMPP.Component))
		ac.Prosody = prosody.NewIssuer(cfg.DomainJID(), cfg.ComponentJID(), a.link)
		a.hs = auto.New(ac)
		return a.hs
	}
	a.minter = a.newMinter(c2s.TLS)
	ac.Prosody = prosody.NewIssuer(cfg.DomainJID(), cfg.MinterJID(), a.minter)
	ac.Ejabberd = ejabberd.NewIssuer(cfg.MinterJID(), a.minter)
	a.hs = auto.New(ac)
	a.log.Info("invites are minted "+cfg.MintingSummary(),
		slog.String("minting", cfg.Minting()), slog.String("minter", cfg.XMPP.Minter), slog.String("c2s", cfg.XMPP.C2S))
	return a.hs
}

// newMinter makes the minter account's session. After each login it asks
// the server who it is and what the account may run there (password
// resets need Prosody 13 and the role's permission; on ejabberd, the API
// commands).
func (a *app) newMinter(c2sTLS *tls.Config) *minter.Session {
	cfg := a.cfg
	mc := minter.Config{
		Account:  cfg.MinterJID(),
		Password: cfg.XMPP.MinterPassword,
		Addr:     cfg.XMPP.C2S,
		TLS:      c2sTLS,
		CheckRights: func(ctx context.Context, log *slog.Logger, account jid.JID, link adhoc.IQSender) {
			sw, err := homeserver.Identify(ctx, link, account, account.Domain())
			if err == nil {
				a.hs.Set(sw)
			}
			if err == nil && sw.Kind() == homeserver.Ejabberd {
				a.hs.Ejabberd().CheckRights(ctx, log)
				return
			}
			prosody.CheckRights(ctx, log, account, link)
		},
	}
	if a.tuneMinter != nil {
		a.tuneMinter(&mc)
	}
	onUp := mc.OnUp
	mc.OnUp = func() {
		if onUp != nil {
			onUp()
		}
		go a.svc.DetectServerCommands(context.Background())
	}
	return minter.New(mc, a.log.With(slog.String("room", "minter")))
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
