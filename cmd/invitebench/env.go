package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/prosodytest"
)

// Environment tunables.
const (
	// password is every benchmark account's password.
	password = "invitebench password"
	// botStartTimeout bounds the bot's start-up until /healthz answers 200
	// (component link up, database answering), and its reconnection after
	// a token reset: its backoff grows to a minute when resets come less
	// than 30 s apart.
	botStartTimeout = 90 * time.Second
	// botStopTimeout is how long a graceful stop (SIGTERM) may take.
	botStopTimeout = 20 * time.Second
	// loginTimeout bounds one client's login.
	loginTimeout = 30 * time.Second
	// registerParallel is how many prosodyctl register run at once: each
	// is a Lua start-up of most of a second, and 41 accounts in a row
	// would add half a minute; more would only fight over 2 cores.
	registerParallel = 4
	// healthPoll is how often /healthz is asked while waiting for the bot.
	healthPoll = 50 * time.Millisecond
)

// env is the Prosody, the accounts and the bot process of one run.
type env struct {
	dir       string // the run directory
	srv       *prosodytest.Server
	component jid.JID
	domain    jid.JID
	boss      jid.JID   // the bot's configured admin; never used for load
	inviters  []jid.JID // granted inviters on the other domain, Concurrency of them (Wide with -x100)
	admins    []jid.JID // local accounts in Prosody's admins, minting directly
	botBin    string
	caFile    string
	logf      func(format string, a ...any)

	bot *botProc // nil while no bot runs
}

// botProc is one running invitebot process.
type botProc struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	http    string // host:port of its web server (/healthz)
	exited  chan struct{}
	err     error // Wait's result, valid once exited is closed
}

// newEnv starts Prosody with the admin accounts that mint directly, and
// creates every account.
func newEnv(ctx context.Context, dir, botBin string, nagle bool, count int, logf func(string, ...any)) (*env, error) {
	e := &env{dir: dir, botBin: botBin, logf: logf}
	domain, other := prosodytest.DefaultDomain, prosodytest.DefaultOtherDomain
	var adminJIDs []string
	for i := range count {
		// Inviters live on the other domain, as the people the bot is
		// for do; the direct minters must be local to be server admins.
		e.inviters = append(e.inviters, jid.MustParse(fmt.Sprintf("inviter%02d@%s", i, other)))
		e.admins = append(e.admins, jid.MustParse(fmt.Sprintf("admin%02d@%s", i, domain)))
		adminJIDs = append(adminJIDs, e.admins[i].String())
	}
	e.boss = jid.MustParse("boss@" + domain)

	opts := []prosodytest.Option{prosodytest.WithAdmins(adminJIDs...)}
	if !nagle {
		opts = append(opts, prosodytest.WithoutNagle())
	}
	srv, err := prosodytest.Launch(logf, opts...)
	if err != nil {
		return nil, err
	}
	e.srv = srv
	e.component = jid.MustParse(srv.Component)
	e.domain = jid.MustParse(srv.Domain)
	e.caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(e.caFile, srv.CACert, 0o600); err != nil {
		return e, err
	}

	users := append(append([]jid.JID{e.boss}, e.inviters...), e.admins...)
	parallel := registerParallel
	if !strings.HasPrefix(srv.Version, "0.") {
		// Prosody 13's prosodyctl register, four at once, fails now and
		// then to load its storage module ("Method not implemented").
		parallel = 1
	}
	sem := make(chan struct{}, parallel)
	errs := make(chan error, len(users))
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				errs <- ctx.Err()
				return
			}
			_, err := srv.Register(u.Localpart(), u.Domainpart(), password)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return e, err
		}
	}
	return e, nil
}

// close stops the bot and Prosody. With keep, Prosody's directory stays
// for reading its log.
func (e *env) close(keep bool) {
	if e.bot != nil {
		_ = e.stopBot()
	}
	if e.srv == nil {
		return
	}
	if keep {
		_ = e.srv.Shutdown()
		e.logf("Prosody's directory kept: %s", e.srv.Dir)
		return
	}
	_ = e.srv.Close()
}

// prosodyPID returns the running Prosody's process id, from its pidfile.
func (e *env) prosodyPID() (int, error) {
	raw, err := os.ReadFile(filepath.Join(e.srv.Dir, "prosody.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(raw)))
}

// resetServerTokens empties Prosody's invite token store, so that every
// measurement starts from the same server state. Prosody's internal
// storage rewrites a host's whole token file on every mint, so its mint
// cost grows with the tokens pending; without the reset a later
// measurement would pay for the tokens of the earlier ones. Prosody must
// be stopped while the file goes; the bot reconnects by itself.
func (e *env) resetServerTokens(ctx context.Context) error {
	if err := e.srv.Shutdown(); err != nil {
		return fmt.Errorf("reset tokens: %w", err)
	}
	// The internal storage keeps host data under DataDir/<encoded host>/;
	// the token store is invite_token.dat there.
	files, _ := filepath.Glob(filepath.Join(e.srv.DataDir, "*", "invite_token*"))
	for _, f := range files {
		if err := os.RemoveAll(f); err != nil {
			return fmt.Errorf("reset tokens: %w", err)
		}
	}
	if err := e.srv.Boot(); err != nil {
		return fmt.Errorf("reset tokens: %w", err)
	}
	return e.awaitBot(ctx)
}

// login logs users in, all at once.
func (e *env) login(ctx context.Context, users []jid.JID) ([]*prosodytest.Client, error) {
	out := make([]*prosodytest.Client, len(users))
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, loginTimeout)
			defer cancel()
			out[i], errs[i] = prosodytest.Dial(ctx, e.srv, u, password)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(out)
		return nil, fmt.Errorf("log in: %w", err)
	}
	return out, nil
}

// closeAll logs clients out; nil entries are skipped.
func closeAll(cs []*prosodytest.Client) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c != nil {
			wg.Go(c.Close)
		}
	}
	wg.Wait()
}

// botConfig is the bot's configuration for this run: production defaults
// except where the benchmark needs otherwise, each said why.
const botConfig = `# Written by invitebench for one run.
xmpp:
  component: %q
  server: %q
  secret: %q
  domain: %q
  c2s: %q
  c2s_tls:
    ca_file: %q
admins:
  - %q
store:
  path: %q
log:
  level: info
  format: text
# The web server is on, as in a deployment with landing pages: every chat
# invite then also sends the QR code message, and /healthz tells when the
# link is up.
http:
  listen: %q
  public_url: %q
# Quotas high enough never to refuse: the benchmark mints thousands of
# invites per inviter and day. The checks still run on every invite.
policy:
  invites_per_day: 1000000
  max_pending: 1000000
  global_per_day: 1000000
# Usage tracking checks every pending token at the server with preauth;
# with the benchmark's thousands of pending tokens a sweep every minute
# would load Prosody in the middle of a measurement, unevenly between the
# bot's and the direct runs. Once a day keeps it out of the run.
invites:
  check_interval: 24h
`

// startBot writes the configuration for the database at dbPath, runs the
// bot binary and waits until it is up. With profileTo set, the profiling
// build writes a CPU profile there between two SIGUSR1 (see profile.go).
func (e *env) startBot(ctx context.Context, dbPath, profileTo string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfgPath := filepath.Join(e.dir, "invitebot.yaml")
	cfg := fmt.Sprintf(botConfig, e.srv.Component, e.srv.ComponentAddr, e.srv.ComponentSecret, e.srv.Domain,
		e.srv.C2SAddr, e.caFile, e.boss.String(), dbPath, httpAddr, "http://"+httpAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	logPath := strings.TrimSuffix(dbPath, filepath.Ext(dbPath)) + ".log"
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(e.botBin, "-config", cfgPath)
	cmd.Dir = e.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Environment variables override the file: keep the caller's
	// INVITEBOT_* out of the run.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INVITEBOT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if profileTo != "" {
		cmd.Env = append(cmd.Env, profileEnv+"="+profileTo)
	}
	// The bot must not outlive the benchmark, even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start bot: %w", err)
	}
	b := &botProc{cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, http: httpAddr, exited: make(chan struct{})}
	go func() {
		b.err = cmd.Wait()
		close(b.exited)
	}()
	e.bot = b
	return e.awaitBot(ctx)
}

// awaitBot waits until the bot's /healthz answers 200: its component link
// is up and its database answers.
func (e *env) awaitBot(ctx context.Context) error {
	b := e.bot
	ctx, cancel := context.WithTimeout(ctx, botStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(healthPoll)
	defer tick.Stop()
	for {
		resp, err := client.Get("http://" + b.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-b.exited:
			return fmt.Errorf("bot exited: %v\n%s", b.err, tail(b.logPath, 30))
		case <-ctx.Done():
			return fmt.Errorf("bot not up (/healthz) after %v: %w\n%s", botStartTimeout, ctx.Err(), tail(b.logPath, 30))
		case <-tick.C:
		}
	}
}

// botAlive reports an error if the bot process has exited.
func (e *env) botAlive() error {
	select {
	case <-e.bot.exited:
		return fmt.Errorf("bot exited: %v\n%s", e.bot.err, tail(e.bot.logPath, 30))
	default:
		return nil
	}
}

// stopBot ends the bot gracefully, killing it after botStopTimeout.
func (e *env) stopBot() error {
	b := e.bot
	e.bot = nil
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-b.exited:
		if b.err != nil {
			return fmt.Errorf("bot exited with %v", b.err)
		}
		return nil
	case <-time.After(botStopTimeout):
		_ = b.cmd.Process.Kill()
		<-b.exited
		return fmt.Errorf("bot ignored SIGTERM for %v; killed", botStopTimeout)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// logSummary counts the warnings and errors in the bot's log and returns
// the first few distinct messages, so that the results say whether the bot
// complained (a lost reply usually leaves a line there). The link drops
// that resetServerTokens causes (Prosody closing the stream, then
// refusing connections while it restarts) are counted apart as resets.
func logSummary(path string) (warnings, errs, resets int, first []string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, nil
	}
	defer f.Close()
	seen := make(map[string]bool)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "component link down") &&
			(strings.Contains(line, "unexpected EOF") || strings.Contains(line, "connection refused")):
			resets++
			continue
		case strings.Contains(line, "level=WARN"):
			warnings++
		case strings.Contains(line, "level=ERROR"):
			errs++
		default:
			continue
		}
		msg := line
		if _, after, ok := strings.Cut(line, "msg="); ok {
			msg = after
		}
		if len(msg) > 200 {
			msg = msg[:200]
		}
		if !seen[msg] && len(first) < 5 {
			seen[msg] = true
			first = append(first, msg)
		}
	}
	return warnings, errs, resets, first
}
