// Command invitebot runs the invite bot: an XEP-0114 component that lets
// trusted people on any XMPP server hand out account invitations for one
// home server.
//
//	invitebot [-config FILE]               run the bot
//	invitebot check-config [-config FILE]  validate and print the configuration
//	invitebot version                      print version, commit and Go version
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"durare.org/invitebot/bot"
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/invites/ibr"
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

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		return runVersion(args[1:], stdout, stderr)
	}
	checkOnly := len(args) > 0 && args[0] == "check-config"
	if checkOnly {
		args = args[1:]
	}
	fs := flag.NewFlagSet("invitebot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.yaml", "configuration file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: invitebot [check-config] [-config FILE] | invitebot version")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}

	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "invitebot: %v\n", err)
		return 1
	}
	if checkOnly {
		if err := cfg.WriteYAML(stdout); err != nil {
			fmt.Fprintf(stderr, "invitebot: %v\n", err)
			return 1
		}
		return 0
	}

	log := newLogger(cfg, stderr)
	log.Info("invitebot build", slog.Any("build", currentVersion()))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// From here on a second signal gets the default behaviour: exit now.
		stop()
	}()
	if err := serve(ctx, cfg, log, nil); err != nil {
		log.Error("invitebot stopped", slog.Any("err", err))
		return 1
	}
	return 0
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// health answers /healthz from the link and the database.
type health struct {
	link  *bot.Link
	store *store.Store
}

func (h health) LinkUp() bool                        { return h.link.Up() }
func (h health) PingStore(ctx context.Context) error { return h.store.Ping(ctx) }

// c2sConfig turns the xmpp.c2s settings into the registration client's.
func c2sConfig(cfg *config.Config) (ibr.Config, error) {
	tc := &tls.Config{ServerName: cfg.XMPP.C2STLS.ServerName, MinVersion: tls.VersionTLS12,
		InsecureSkipVerify: cfg.XMPP.C2STLS.InsecureSkipVerify} // #nosec G402 -- opt-in, warned about
	if tc.ServerName == "" {
		tc.ServerName = cfg.XMPP.Domain
	}
	if cfg.XMPP.C2STLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.XMPP.C2STLS.CAFile)
		if err != nil {
			return ibr.Config{}, fmt.Errorf("xmpp.c2s_tls.ca_file: %w", err)
		}
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return ibr.Config{}, fmt.Errorf("xmpp.c2s_tls.ca_file: %s holds no PEM certificate", cfg.XMPP.C2STLS.CAFile)
		}
		tc.RootCAs = roots
	}
	return ibr.Config{Addr: cfg.XMPP.C2S, Domain: cfg.XMPP.Domain, TLS: tc}, nil
}

// serve runs the bot until ctx ends, then shuts down in order: stop the web
// server, stop taking chat commands and let those in flight answer, stop
// usage tracking, close the component link, and close the database last
// (everything before writes to it). tune, when not nil,
// adjusts the link's timing (tests make reconnection fast).
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, tune func(*bot.LinkConfig)) error {
	st, err := store.Open(ctx, cfg.Store.Path)
	if err != nil {
		return fmt.Errorf("open store %s: %w", cfg.Store.Path, err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", slog.Any("err", err))
		}
	}()

	linkCfg := bot.LinkConfig{
		Component:  cfg.ComponentJID(),
		Server:     cfg.XMPP.Server,
		Secret:     []byte(cfg.XMPP.Secret),
		PingTarget: cfg.DomainJID(),
	}
	if tune != nil {
		tune(&linkCfg)
	}
	link := bot.NewLink(linkCfg, log.With(slog.String("room", "link")))
	metrics := web.NewMetrics(link.Reconnects)
	issuer := invites.AdhocIssuer{Server: cfg.DomainJID(), From: cfg.ComponentJID(), Link: link}
	c2s, err := c2sConfig(cfg)
	if err != nil {
		return err
	}
	if cfg.XMPP.C2STLS.InsecureSkipVerify {
		log.Warn("xmpp.c2s_tls.insecure_skip_verify is on: the c2s certificate is NOT verified; never use this in production")
	}
	svc := invites.NewService(invites.Options{
		Store: st, Issuer: issuer, Domain: cfg.XMPP.Domain, Admins: cfg.AdminSet(), C2S: c2s,
		Limits: policy.Limits{
			PerDay: cfg.Policy.InvitesPerDay, MaxPending: cfg.Policy.MaxPending, GlobalPerDay: cfg.Policy.GlobalPerDay,
		},
		Notifier: bot.NewNotifier(link, cfg.ComponentJID()),
		Observer: metrics,
		Log:      log.With(slog.String("room", "invites")),
	})
	var links func(id string) (string, string)
	if cfg.HTTP.Listen != "" {
		links = func(id string) (string, string) {
			return web.LandingURL(cfg.HTTP.PublicURL, id), web.QRURL(cfg.HTTP.PublicURL, id)
		}
	}
	b := bot.New(bot.Config{
		Service:   svc,
		Component: cfg.ComponentJID(),
		Log:       log.With(slog.String("room", "bot")),
		Out:       link,
		Links:     links,
		Observer:  metrics,
	})

	log.Info("invitebot starting",
		slog.String("component", cfg.XMPP.Component),
		slog.String("server", cfg.XMPP.Server),
		slog.String("domain", cfg.XMPP.Domain),
		slog.Int("admins", len(cfg.Admins)),
		slog.String("store", cfg.Store.Path))

	// The link gets its own context: on shutdown it must outlive the drain,
	// so that commands in flight can still send their replies.
	linkCtx, closeLink := context.WithCancel(context.WithoutCancel(ctx))
	defer closeLink()
	linkDone := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				linkDone <- fmt.Errorf("component link panicked: %v", r)
			}
		}()
		linkDone <- link.Run(linkCtx, b)
	}()

	// Usage tracking runs beside the link and stops with the drain, before
	// the database closes.
	trackCtx, stopTracking := context.WithCancel(ctx)
	defer stopTracking()
	tracking := make(chan struct{})
	go func() {
		defer close(tracking)
		defer func() {
			if r := recover(); r != nil {
				log.Error("usage tracking panicked", slog.Any("panic", r))
			}
		}()
		svc.Track(trackCtx, cfg.Invites.CheckInterval)
	}()

	// The web server, when configured, stops first on shutdown: it takes
	// requests like the chat does.
	webCtx, stopWeb := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWeb()
	var webDone chan error // nil (never ready) without a web server
	if cfg.HTTP.Listen != "" {
		webDone = make(chan error, 1)
		handler := web.New(web.Config{
			PublicURL:  cfg.HTTP.PublicURL,
			Domain:     cfg.XMPP.Domain,
			TrustProxy: cfg.HTTP.TrustProxy,
			Log:        log.With(slog.String("room", "web")),
		}, svc, health{link: link, store: st}, metrics)
		go func() { webDone <- web.Serve(webCtx, cfg.HTTP.Listen, handler, log.With(slog.String("room", "web"))) }()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-linkDone:
		// Run returns early only if it panicked: shut down the rest.
	case runErr = <-webDone:
		// The listener failed (address in use): nothing serves the pages.
		if runErr == nil {
			runErr = errors.New("web server stopped")
		}
		webDone = nil
	}
	log.Info("shutting down; a second signal exits at once")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	stopWeb()
	if webDone != nil {
		if err := <-webDone; err != nil {
			log.Warn("web server shutdown", slog.Any("err", err))
		}
	}
	drainCtx, cancelDrain := context.WithTimeout(shutdownCtx, drainTimeout)
	defer cancelDrain()
	if err := b.Drain(drainCtx); err != nil {
		log.Warn("commands still running at shutdown were cancelled", slog.Any("err", err))
	}
	stopTracking()
	select {
	case <-tracking:
	case <-shutdownCtx.Done():
		log.Error("usage tracking did not stop in time")
	}
	closeLink()
	if runErr == nil {
		select {
		case runErr = <-linkDone:
		case <-shutdownCtx.Done():
			runErr = errors.New("component link did not close in time")
		}
	}
	log.Info("invitebot stopped")
	return runErr
}
