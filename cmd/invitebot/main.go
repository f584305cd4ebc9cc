// Command invitebot runs the invite bot: an XEP-0114 component that lets
// trusted people on any XMPP server hand out account invitations for one
// home server.
//
//	invitebot [-config FILE]               run the bot
//	invitebot check-config [-config FILE]  validate and print the configuration
//	invitebot check-config -online [-config FILE]
//	                                       validate, then try it: server, domain, rights, database folder
//	invitebot version                      print version, commit and Go version
//	invitebot export [-with-tokens] DB     write a database or backup as JSON Lines
//	invitebot prosody-config [-config FILE] print the matching Prosody configuration
//	invitebot ejabberd-config [-config FILE] print the matching ejabberd.yml fragment
//
// Without -config the configuration is ./config.yaml, or where there is
// none, /etc/invitebot/config.yaml (the Debian package's).
//
// While running, SIGHUP re-reads the configuration file and applies the
// admins, the policy limits and the log level; other changes wait for a
// restart, and the log says which.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			return runVersion(args[1:], stdout, stderr)
		case "export":
			return runExport(args[1:], stdout, stderr)
		case "prosody-config":
			return runProsodyConfig(args[1:], stdout, stderr)
		case "ejabberd-config":
			return runEjabberdConfig(args[1:], stdout, stderr)
		}
	}
	checkOnly := len(args) > 0 && args[0] == "check-config"
	if checkOnly {
		args = args[1:]
	}
	fs := flag.NewFlagSet("invitebot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", configFlagUsage)
	online := new(bool)
	if checkOnly {
		online = fs.Bool("online", false, "also connect to the server and check the database folder, one line per check")
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: invitebot [check-config [-online]] [-config FILE] | invitebot version | invitebot export [-with-tokens] DB | invitebot prosody-config [-config FILE] | invitebot ejabberd-config [-config FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}

	cfg, err := loadConfig(configPath)
	if err != nil {
		fmt.Fprintf(stderr, "invitebot: %v\n", err)
		return 1
	}
	if checkOnly && *online {
		return runOnlineCheck(context.Background(), cfg, *configPath, stdout)
	}
	if checkOnly {
		if err := cfg.WriteYAML(stdout); err != nil {
			fmt.Fprintf(stderr, "invitebot: %v\n", err)
			return 1
		}
		return 0
	}

	level := new(slog.LevelVar)
	level.Set(cfg.SlogLevel())
	log := newLogger(cfg, level, stderr)
	log.Info("invitebot build", slog.Any("build", currentVersion()))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// From here on a second signal gets the default behaviour: exit now.
		stop()
	}()
	// SIGHUP (systemctl reload) re-reads the configuration.
	reloads := make(chan os.Signal, 1)
	signal.Notify(reloads, syscall.SIGHUP)
	defer signal.Stop(reloads)
	a := newApp(cfg, log, nil)
	a.configPath, a.reloads, a.level = *configPath, reloads, level
	if err := a.run(ctx); err != nil {
		log.Error("invitebot stopped", slog.Any("err", err))
		return 1
	}
	return 0
}

// Where the configuration is read from without -config: the working
// directory's config.yaml, else the one the Debian package installs.
// systemConfigPath is a variable for tests.
const localConfigPath = "config.yaml"

var systemConfigPath = "/etc/invitebot/config.yaml"

const configFlagUsage = "configuration file (default ./config.yaml, or /etc/invitebot/config.yaml when there is none here)"

// loadConfig loads the file -config names, or without it the default one,
// and sets *path to the file read.
func loadConfig(path *string) (*config.Config, error) {
	if *path == "" {
		p, err := defaultConfigPath()
		if err != nil {
			return nil, err
		}
		*path = p
	}
	return config.Load(*path)
}

// defaultConfigPath is ./config.yaml when it exists, else
// /etc/invitebot/config.yaml when that does: an installed bot is checked
// with `invitebot check-config` from any folder.
func defaultConfigPath() (string, error) {
	if _, err := os.Stat(localConfigPath); err == nil {
		return localConfigPath, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if _, err := os.Stat(systemConfigPath); err == nil {
		return systemConfigPath, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return "", fmt.Errorf("no configuration: neither %s (in the working directory) nor %s exists; name one with -config FILE",
		localConfigPath, systemConfigPath)
}

// newLogger logs to w in the format log.format names. The text format
// becomes the journal's when w is the stream systemd connects to journald
// (JOURNAL_STREAM), so journald sees each line's priority and the journal
// shows one time, not two.
func newLogger(cfg *config.Config, level slog.Leveler, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	switch {
	case cfg.Log.Format == "json":
		return slog.New(slog.NewJSONHandler(w, opts))
	case cfg.Log.Format == "journal", underJournal(w):
		return slog.New(newJournalHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

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
