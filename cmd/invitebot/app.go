package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"durare.org/invitebot/bot"
	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/auto"
	"durare.org/invitebot/homeserver/minter"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/mail"
	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
	"durare.org/invitebot/web"
)

// Shutdown bounds: how long commands in flight may take to answer, and how
// long the whole shutdown may take before the process gives up waiting.
const (
	drainTimeout    = 10 * time.Second
	shutdownTimeout = 20 * time.Second
)

// storeOpenNotice is how long opening the database may take before the log
// says why: a schema upgrade of a large file reads every record once
// (about 25 s per million invites), and a silent start looks hung.
const storeOpenNotice = 3 * time.Second

// app holds the program's parts. Each is made by the start of its
// component, in the order of components(); later ones use earlier ones.
type app struct {
	cfg  *config.Config
	log  *slog.Logger
	tune func(*bot.LinkConfig)
	lc   *lifecycle

	// For reloading the configuration while running (SIGHUP): where it
	// came from, when to reload, and the log level to adjust. Without
	// reloads the app never reloads.
	configPath string
	reloads    <-chan os.Signal
	level      *slog.LevelVar

	store  *store.Store
	link   *bot.Link
	minter *minter.Session // nil when the component mints
	module *prosody.Module
	// software is the server program the link talks to, once asked.
	software serverSoftware
	// hs is the home server as the service uses it (Prosody or ejabberd).
	hs      *auto.Server
	metrics *web.Metrics
	svc     *invites.Service
	bot     *bot.Bot
	mailer  *mail.Sender // nil without mail

	closeLink, stopTracking, stopWeb, stopBackups context.CancelFunc
	linkDone, trackDone, webDone, backupsDone     <-chan struct{}

	// tuneMinter, when set, adjusts the minter session's timing (tests).
	tuneMinter  func(*minter.Config)
	closeMinter context.CancelFunc
	minterDone  <-chan struct{}
}

// components lists the parts in start order. They stop in reverse: the web
// server first (it takes requests like the chat does), then the bot drains
// the commands in flight while the link can still carry their replies,
// usage tracking stops, the link closes, and the database closes last,
// after everything that writes to it.
func (a *app) components() []component {
	return []component{
		{name: "store", start: a.openStore, stop: a.closeStore},
		{name: "service", start: a.wire},
		// Before the link and stopped after it: commands drained at
		// shutdown may still mint through it.
		{name: "minter", start: a.startMinter, stop: a.stopMinter},
		{name: "link", start: a.startLink, stop: a.stopLink},
		{name: "usage tracking", start: a.startTracking, stop: a.stopTrack},
		{name: "backups", start: a.startBackups, stop: a.stopBackupLoop},
		// The bot serves what the link delivers from the moment the link
		// runs; its part in the lifecycle is draining on the way down.
		{name: "bot", stop: a.drain},
		{name: "web", start: a.startWeb, stop: a.stopWebServer},
	}
}

// serve runs the bot until ctx ends or a part fails for good, then stops
// every part in reverse start order within shutdownTimeout. tune, when not
// nil, adjusts the link's timing (tests make reconnection fast).
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, tune func(*bot.LinkConfig)) error {
	return newApp(cfg, log, tune).run(ctx)
}

func newApp(cfg *config.Config, log *slog.Logger, tune func(*bot.LinkConfig)) *app {
	return &app{cfg: cfg, log: log, tune: tune, lc: newLifecycle(log)}
}

// run is serve for an app that may also reload its configuration.
func (a *app) run(ctx context.Context) error {
	cfg, log := a.cfg, a.log
	log.Info("invitebot starting",
		slog.String("component", cfg.XMPP.Component),
		slog.String("server", cfg.XMPP.Server),
		slog.String("domain", cfg.XMPP.Domain),
		slog.String("minting", cfg.Minting()),
		slog.Int("admins", len(cfg.Admins)),
		slog.String("store", cfg.Store.Path),
		slog.Bool("introduce", cfg.Invites.Introduce))
	stopCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), shutdownTimeout)
	}
	if err := a.lc.start(ctx, stopCtx, a.components()...); err != nil {
		return err
	}
	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case runErr = <-a.lc.Failed():
			break wait
		case <-a.reloads:
			a.reload()
		}
	}
	log.Info("shutting down; a second signal exits at once")
	sctx, cancel := stopCtx()
	defer cancel()
	if err := a.lc.stop(sctx); err != nil {
		runErr = errors.Join(runErr, err)
	}
	log.Info("invitebot stopped")
	return runErr
}

func (a *app) openStore(ctx context.Context) error {
	notice := time.AfterFunc(storeOpenNotice, func() {
		a.log.Info("still opening the database: upgrading the schema of a large file takes about 25 s per million invites",
			slog.String("path", a.cfg.Store.Path))
	})
	defer notice.Stop()
	st, err := store.Open(ctx, a.cfg.Store.Path)
	if err != nil {
		return err // it names the file already
	}
	a.store = st
	switch up := st.Upgrade(); {
	case up.From == 0:
		a.log.Info("database created", slog.String("path", a.cfg.Store.Path), slog.Int("schema", up.To))
	case up.To > up.From:
		a.log.Info("database schema upgraded", slog.String("path", a.cfg.Store.Path),
			slog.Int("from", up.From), slog.Int("to", up.To), slog.Int("invites", up.Invites),
			slog.Int("audit_entries", up.AuditEntries), slog.Duration("took", up.Took.Round(time.Millisecond)))
	}
	return nil
}

func (a *app) closeStore(context.Context) error { return a.store.Close() }

// wire builds the link, the invites service and the bot over the open
// store. Nothing runs yet.
func (a *app) wire(context.Context) error {
	cfg := a.cfg
	c2s, err := c2sConfig(cfg)
	if err != nil {
		return err
	}
	if cfg.XMPP.C2STLS.InsecureSkipVerify {
		a.log.Warn("xmpp.c2s_tls.insecure_skip_verify is on: the c2s certificate is NOT verified; never use this in production")
	}
	a.link = bot.NewLink(a.linkConfig(), a.log.With(slog.String("room", "link")))
	a.module = prosody.NewModule(cfg.DomainJID(), cfg.ComponentJID(), a.link, a.log.With(slog.String("room", "invites")))
	a.metrics = web.NewMetrics(a.link.Reconnects)
	hs := a.server(c2s)
	signup, sender, err := signupOptions(cfg, a.log.With(slog.String("room", "mail")))
	if err != nil {
		return err
	}
	a.mailer = sender
	a.svc = invites.NewService(invites.Options{
		Store:  a.store,
		Issuer: hs,
		Domain: cfg.XMPP.Domain, Admins: cfg.AdminSet(), Registrar: hs,
		Limits: policy.Limits{
			PerDay: cfg.Policy.InvitesPerDay, MaxPending: cfg.Policy.MaxPending, GlobalPerDay: cfg.Policy.GlobalPerDay,
			EventMaxUses: cfg.Policy.EventMaxUses,
		},
		Notifier:      bot.NewNotifier(a.link, cfg.ComponentJID()),
		Observer:      a.metrics,
		Backups:       invites.BackupOptions{Dir: cfg.Store.BackupDir, Keep: cfg.Store.BackupKeep},
		InviterResets: cfg.Policy.InviterResets,
		Log:           a.log.With(slog.String("room", "invites")),
		Module:        hs.ProsodyModule(a.module),
		Introduce:     cfg.Invites.Introduce,
		Requests: invites.RequestOptions{Enabled: cfg.HTTP.Requests, ExpireAfter: cfg.Requests.ExpireAfter,
			MaxOpen: cfg.Requests.MaxOpen},
		Signup:   signup,
		Recovery: recoveryOptions(cfg, sender),
		Alarms:   alarmOptions(cfg.Alerts),
		// mod_invitebot's suspension verbs, used while it is loaded.
		ModuleSuspender: a.module,
	})
	a.bot = a.newBot()
	return nil
}

// linkConfig is the component link's configuration. Whenever the link
// comes up, the bot learns what the server is and offers: password resets
// (Prosody 13, ejabberd's API) and mod_invitebot. Any of it may have
// changed while the link was down, and a change of the server needs no
// restart here.
func (a *app) linkConfig() bot.LinkConfig {
	cfg := a.cfg
	linkCfg := bot.LinkConfig{
		Component:  cfg.ComponentJID(),
		Server:     cfg.XMPP.Server,
		Secret:     []byte(cfg.XMPP.Secret),
		PingTarget: cfg.DomainJID(),
	}
	if a.tune != nil {
		a.tune(&linkCfg)
	}
	onUp := linkCfg.OnUp
	linkCfg.OnUp = func() {
		if onUp != nil {
			onUp()
		}
		if a.minter == nil { // else the minter's login does it
			go a.svc.DetectServerCommands(context.Background())
		}
		go func() {
			// Who the server is decides whether there is a module to ask for.
			a.identifyServer()
			a.detectModule()
		}()
	}
	return linkCfg
}

// newBot makes the chat and ad-hoc front end over the service, with the
// web page's links when there is a web page.
func (a *app) newBot() *bot.Bot {
	cfg := a.cfg
	bc := bot.Config{
		Service:   a.svc,
		Component: cfg.ComponentJID(),
		Log:       a.log.With(slog.String("room", "bot")),
		Out:       a.link,
		Observer:  a.metrics,
		Reports:   a.module,
	}
	if cfg.HTTP.Listen != "" {
		base := cfg.HTTP.PublicURL
		bc.TreePages = func(ctx context.Context, actor invites.Actor, who string) (string, error) {
			token, err := a.svc.TreeLink(ctx, actor, who)
			if err != nil {
				return "", err
			}
			return web.TreeURL(base, token), nil
		}
		bc.Links = func(id string) (string, string) { return web.LandingURL(base, id), web.QRURL(base, id) }
		bc.EventLinks = func(id string) (string, string) { return web.EventURL(base, id), web.EventQRURL(base, id) }
	}
	return bot.New(bc)
}

// startLink runs the component link. It gets a context of its own: on
// shutdown it must outlive the drain, so that commands in flight can still
// send their replies.
func (a *app) startLink(ctx context.Context) error {
	linkCtx, closeLink := context.WithCancel(context.WithoutCancel(ctx))
	a.closeLink = closeLink
	a.linkDone = a.lc.goRun("component link", func() error {
		err := a.link.Run(linkCtx, a.bot)
		if err == nil && linkCtx.Err() == nil {
			err = errors.New("stopped by itself")
		}
		return err
	})
	return nil
}

func (a *app) stopLink(ctx context.Context) error {
	a.closeLink()
	return waitFor(ctx, a.linkDone, "component link did not close in time")
}

func (a *app) startTracking(ctx context.Context) error {
	trackCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stopTracking = stop
	interval := a.cfg.Invites.CheckInterval
	a.trackDone = a.lc.goRun("usage tracking", func() error {
		a.svc.Track(trackCtx, interval)
		return nil
	})
	return nil
}

func (a *app) stopTrack(ctx context.Context) error {
	a.stopTracking()
	return waitFor(ctx, a.trackDone, "usage tracking did not stop in time")
}

// startBackups writes a backup every store.backup_interval, counted from
// the newest backup on disk, when store.backup_dir is set.
func (a *app) startBackups(ctx context.Context) error {
	if a.cfg.Store.BackupDir == "" {
		return nil
	}
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stopBackups = stop
	interval := a.cfg.Store.BackupInterval
	a.backupsDone = a.lc.goRun("backups", func() error {
		a.svc.RunBackups(bctx, interval)
		return nil
	})
	a.log.Info("backups on", slog.String("dir", a.cfg.Store.BackupDir), slog.Duration("interval", interval),
		slog.Int("keep", a.cfg.Store.BackupKeep))
	return nil
}

func (a *app) stopBackupLoop(ctx context.Context) error {
	if a.stopBackups == nil {
		return nil
	}
	a.stopBackups()
	return waitFor(ctx, a.backupsDone, "backups did not stop in time")
}

// drain stops the bot taking commands and lets those in flight answer.
// Commands cancelled after drainTimeout are logged, not an error: the
// shutdown itself went as planned.
func (a *app) drain(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	if err := a.bot.Drain(dctx); err != nil {
		a.log.Warn("commands still running at shutdown were cancelled", slog.Any("err", err))
	}
	return nil
}

// startWeb listens before it returns, so an address in use fails the start
// instead of a running bot without pages.
func (a *app) startWeb(ctx context.Context) error {
	if a.cfg.HTTP.Listen == "" {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http: listen: %w", err)
	}
	log := a.log.With(slog.String("room", "web"))
	handler := web.New(web.Config{
		PublicURL:  a.cfg.HTTP.PublicURL,
		Domain:     a.cfg.XMPP.Domain,
		TrustProxy: a.cfg.HTTP.TrustProxy,
		Log:        log,
		Events:     a.svc,
		Trees:      a.svc,
		// Status pages stay served with the request page off, so that
		// requests approved before it closed stay invitations.
		Requests:        a.svc,
		RequestForm:     a.cfg.HTTP.Requests,
		RequestsPerHour: a.cfg.Requests.PerAddressPerHour,
		Signup:          a.svc,
		Recovery:        a.cfg.HTTP.Recovery,
		Recoverer:       a.svc,
	}, a.svc, health{link: a.link, store: a.store, svc: a.svc, minter: a.minter, software: &a.software, hs: a.hs}, a.metrics)
	webCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stopWeb = stop
	a.webDone = a.lc.goRun("web server", func() error {
		err := web.ServeListener(webCtx, ln, handler, log)
		if err == nil && webCtx.Err() == nil {
			err = errors.New("stopped by itself")
		}
		return err
	})
	return nil
}

func (a *app) stopWebServer(ctx context.Context) error {
	if a.stopWeb == nil {
		return nil // no web server configured
	}
	a.stopWeb()
	err := waitFor(ctx, a.webDone, "web server did not stop in time")
	// Recovery requests the pages took finish their work before the
	// database closes.
	return errors.Join(err, a.svc.WaitRecoveries(ctx))
}

// waitFor waits until done is closed, or returns an error saying what did
// not finish when ctx ends first.
func waitFor(ctx context.Context, done <-chan struct{}, late string) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New(late)
	}
}

// detectModule asks the server whether it runs mod_invitebot; the module
// logs what it found. A failure is retried by the next usage check.
func (a *app) detectModule() {
	if a.hs.Kind() == homeserver.Ejabberd {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), moduleDetectTimeout)
	defer cancel()
	if _, err := a.module.Detect(ctx); err != nil {
		a.log.Warn("could not ask the server whether it runs mod_invitebot; asking again at the next usage check",
			slog.Any("err", err))
	}
}

// moduleDetectTimeout bounds asking for mod_invitebot after a link-up.
const moduleDetectTimeout = 15 * time.Second

// health answers /healthz from the link, the minter session and the
// database, and names the state of the server's mod_invitebot.
type health struct {
	link   *bot.Link
	store  *store.Store
	svc    *invites.Service
	minter *minter.Session // nil when the component mints
	// software: see app.software.
	software *serverSoftware
	hs       *auto.Server
}

func (h health) LinkUp() bool                        { return h.link.Up() }
func (h health) MinterUp() bool                      { return h.minter == nil || h.minter.Up() }
func (h health) PingStore(ctx context.Context) error { return h.store.Ping(ctx) }

// ServerModule names mod_invitebot's state, or nothing on ejabberd,
// which has no such module.
func (h health) ServerModule() string {
	if h.hs.Kind() == homeserver.Ejabberd {
		return ""
	}
	return h.svc.ServerModule().String()
}
