package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	xmppcomponent "mellium.im/xmpp/component"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/minter"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/internal/reconnect"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// onlineStepTimeout bounds each step of check-config -online that waits
// for the server: a connection and its handshake, one question.
const onlineStepTimeout = 15 * time.Second

// checkStatus is how one online check ended. Only checkFail makes the
// command fail.
type checkStatus string

const (
	checkOK      checkStatus = "ok"
	checkNote    checkStatus = "note" // works, but worth knowing
	checkSkipped checkStatus = "skipped"
	checkFail    checkStatus = "FAIL"
)

// checkReport writes one line per check and remembers whether any failed.
// Nothing secret goes into a line: the lines say which key to look at,
// never its value.
type checkReport struct {
	w      io.Writer
	failed bool
}

func (r *checkReport) line(name string, st checkStatus, detail string) {
	if st == checkFail {
		r.failed = true
	}
	if detail == "" {
		fmt.Fprintf(r.w, "%s: %s\n", name, st)
		return
	}
	fmt.Fprintf(r.w, "%s: %s: %s\n", name, st, detail)
}

// runOnlineCheck is check-config -online: beyond what Load validated, it
// asks the server and the file system whether the configuration works,
// one line per check, and returns 1 if any check failed.
func runOnlineCheck(ctx context.Context, cfg *config.Config, configPath string, stdout io.Writer) int {
	r := &checkReport{w: stdout}
	r.line("configuration "+configPath, checkOK, "")

	// The database first: a database a running bot holds says that the
	// bot runs, and then a second component connection is not tried (it
	// would be refused as a conflict, or with Prosody's
	// component_conflict_resolve = "kick_old" throw the bot off).
	botRunning := checkDatabase(ctx, r, cfg)
	if cfg.Store.BackupDir != "" {
		checkFolder(r, "backups "+cfg.Store.BackupDir+" (store.backup_dir)", cfg.Store.BackupDir, "", false)
	}

	link, linkDown := checkComponentLink(ctx, r, cfg, botRunning)
	if link != nil {
		defer link.close()
	}
	domainOK := checkDomain(ctx, r, cfg, link)
	if !domainOK {
		// Asking a domain the server does not serve for its commands
		// would blame the rights on a VirtualHost that does not exist.
		why := "xmpp.domain " + cfg.XMPP.Domain + " is not served by this server"
		r.line(mintingName(cfg), checkSkipped, why)
		r.line("password resets", checkSkipped, why)
		r.line("mod_invitebot", checkSkipped, why)
	} else {
		checkMinting(ctx, r, cfg, link, linkDown)
		checkModule(ctx, r, cfg, link, linkDown)
	}
	if r.failed {
		return 1
	}
	return 0
}

// checkDatabase checks that the bot can create or write its database,
// without opening it for writing: a temporary file is created in the
// database's folder and removed, and an existing database is opened read
// only (which a running bot's lock refuses at once). It reports whether a
// running bot holds the database.
func checkDatabase(ctx context.Context, r *checkReport, cfg *config.Config) (botRunning bool) {
	path := cfg.Store.Path
	name := "database " + path + " (store.path)"
	abs, err := filepath.Abs(path)
	if err != nil {
		r.line(name, checkFail, err.Error())
		return false
	}
	_, statErr := os.Stat(abs)
	exists := statErr == nil
	if exists {
		st, err := store.OpenReadOnly(ctx, abs)
		switch {
		case errors.Is(err, store.ErrLocked):
			// Not a failure: the bot holds its database, as it should.
			r.line(name, checkOK, "in use by a running bot (locked, so not opened); the component link is not tried")
			return true
		case errors.Is(err, store.ErrSchemaOld):
			// The bot upgrades it when it opens it; fine.
		case errors.Is(err, store.ErrSchemaTooNew):
			r.line(name, checkFail, "the database was written by a newer invitebot than this one: run the newer version, or restore a backup this one reads")
			return false
		case err != nil:
			r.line(name, checkFail, "not a database the bot can open: "+err.Error())
			return false
		default:
			_ = st.Close()
		}
	} else if !errors.Is(statErr, os.ErrNotExist) {
		r.line(name, checkFail, statErr.Error())
		return false
	}
	checkFolder(r, name, filepath.Dir(abs), abs, exists)
	return false
}

// checkFolder checks that the bot may create files in dir by creating and
// removing one, and that it may write file when exists. Run as root, which
// may write anywhere, the probe acts as the owner of the file or else of
// the folder: that is the bot's user in the usual installations (the
// Debian package's /var/lib/invitebot).
func checkFolder(r *checkReport, name, dir, file string, exists bool) {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		r.line(name, checkFail, fmt.Sprintf("the folder %s does not exist: create it, writable by the user the bot runs as", dir))
		return
	case err != nil:
		r.line(name, checkFail, err.Error())
		return
	case !info.IsDir():
		r.line(name, checkFail, fmt.Sprintf("%s is not a folder", dir))
		return
	}
	owner := dir
	if exists {
		owner = file
	}
	who, err := probeAsOwner(owner, func() error {
		f, err := os.CreateTemp(dir, ".invitebot-check-*")
		if err != nil {
			return fmt.Errorf("cannot create files in %s: %w", dir, unwrapPath(err))
		}
		tmp := f.Name()
		cerr := f.Close()
		if err := os.Remove(tmp); err != nil {
			return fmt.Errorf("cannot remove files in %s (left %s behind): %w", dir, tmp, unwrapPath(err))
		}
		if cerr != nil {
			return cerr
		}
		if exists {
			f, err := os.OpenFile(file, os.O_RDWR, 0)
			if err != nil {
				return fmt.Errorf("cannot write %s: %w", file, unwrapPath(err))
			}
			return f.Close()
		}
		return nil
	})
	if err != nil {
		r.line(name, checkFail, fmt.Sprintf("%s%v: make it writable by the user the bot runs as", who, err))
		return
	}
	what := "the folder is writable; the file will be created at the first start"
	if exists {
		what = "the file and its folder are writable"
	}
	r.line(name, checkOK, who+what)
}

// unwrapPath drops the operation and path an *os.PathError repeats.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkLink is the check's own component session: one connection, no
// reconnection, closed at the end.
type checkLink struct {
	conn   net.Conn
	sess   *xmpp.Session
	served chan struct{}
}

// SendIQElement implements adhoc.IQSender.
func (l *checkLink) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	return l.sess.SendIQElement(ctx, payload, iq)
}

func (l *checkLink) close() {
	_ = l.sess.Close()
	select {
	case <-l.served:
	case <-time.After(reconnect.CloseTimeout):
	}
	l.conn.Close()
}

// checkComponentLink connects to xmpp.server and does the XEP-0114
// handshake as xmpp.component. It returns the session when it is up, else
// why it is not, for the checks that need it.
func checkComponentLink(ctx context.Context, r *checkReport, cfg *config.Config, botRunning bool) (*checkLink, string) {
	name := fmt.Sprintf("component link %s (xmpp.server) as %s", cfg.XMPP.Server, cfg.XMPP.Component)
	if botRunning {
		r.line(name, checkSkipped, "the bot is running, so a second connection as the component would be refused; stop the bot to check the port and the secret")
		return nil, "the bot is running and holds the component link"
	}
	down := "the component link is not up"
	conn, sess, err := reconnect.Dial(ctx, cfg.XMPP.Server, onlineStepTimeout, func(ctx context.Context, conn net.Conn) (*xmpp.Session, error) {
		return xmppcomponent.NewSession(ctx, cfg.ComponentJID(), []byte(cfg.XMPP.Secret), conn)
	})
	var hs *reconnect.HandshakeError
	switch {
	case err == nil:
	case errors.As(err, &hs) && hs.CutOff:
		r.line(name, checkFail, fmt.Sprintf("%s did not complete the component handshake within %s: is xmpp.server Prosody's component_ports, not its client port?",
			cfg.XMPP.Server, onlineStepTimeout))
		return nil, down
	case errors.As(err, &hs):
		msg := hs.Err.Error()
		switch {
		case strings.Contains(msg, "not-authorized"):
			r.line(name, checkFail, fmt.Sprintf("the server refused the component secret: make xmpp.secret (or xmpp.secret_file) the component_secret of Prosody's Component %q block", cfg.XMPP.Component))
		case strings.Contains(msg, "conflict"):
			// Prosody checks the secret before it looks for a
			// connected instance: port and secret are right.
			r.line(name, checkNote, "another instance of the component is connected (the bot is running?); the port and the secret are right, the checks that need the link are skipped")
			return nil, "another instance of the component holds the link"
		case strings.Contains(msg, "host-unknown"), strings.Contains(msg, "improper-addressing"):
			r.line(name, checkFail, fmt.Sprintf("the server has no Component %q block: add one (invitebot prosody-config prints it), or correct xmpp.component", cfg.XMPP.Component))
		default:
			r.line(name, checkFail, fmt.Sprintf("the server refused the component handshake: %v (is xmpp.server Prosody's component_ports?)", hs.Err))
		}
		return nil, down
	default:
		cause := err
		var op *net.OpError
		if errors.As(err, &op) {
			cause = op.Err
		}
		r.line(name, checkFail, fmt.Sprintf("cannot connect to %s: %v: set xmpp.server to the host:port of Prosody's component_ports", cfg.XMPP.Server, cause))
		return nil, down
	}
	l := &checkLink{conn: conn, sess: sess, served: make(chan struct{})}
	go func() {
		defer close(l.served)
		// A nil handler answers the server's IQs (mod_invitebot's usage
		// reports) with service-unavailable: the module keeps them and
		// sends them again, to the bot.
		_ = sess.Serve(nil)
	}()
	r.line(name, checkOK, "connected, secret accepted")
	return l, ""
}

// checkDomain checks that the server serves xmpp.domain: a client stream
// to it (the one registrations and usage checks open) must not be refused
// as host-unknown. When the client port cannot be reached, a disco#info
// to the domain over the component link tells instead. It reports whether
// the domain may be served, so that later checks do not blame what a
// typo in the domain causes.
func checkDomain(ctx context.Context, r *checkReport, cfg *config.Config, link *checkLink) bool {
	domainName := "domain " + cfg.XMPP.Domain + " (xmpp.domain)"
	c2sName := "client port " + cfg.XMPP.C2S + " (xmpp.c2s)"
	notServed := fmt.Sprintf("xmpp.domain %s is not served by this server: correct it, or add VirtualHost %q to Prosody", cfg.XMPP.Domain, cfg.XMPP.Domain)

	c2s, err := c2sConfig(cfg)
	if err != nil {
		r.line(c2sName, checkFail, err.Error())
		return checkDomainDisco(ctx, r, domainName, notServed, cfg, link)
	}
	c2s.Timeout = onlineStepTimeout
	ck, err := ibr.DialChecker(ctx, c2s)
	if err == nil {
		_ = ck.Close()
		r.line(domainName, checkOK, "")
		r.line(c2sName, checkOK, "STARTTLS with a verified certificate, invite registration (XEP-0445) offered")
		return true
	}
	msg := err.Error()
	var op *net.OpError
	switch {
	case strings.Contains(msg, "host-unknown"):
		r.line(domainName, checkFail, notServed)
		r.line(c2sName, checkSkipped, "the server does not serve xmpp.domain")
		return false
	case errors.Is(err, ibr.ErrTLS):
		r.line(c2sName, checkFail, fmt.Sprintf("%v: set xmpp.c2s_tls.ca_file (a private CA or self-signed certificate) or xmpp.c2s_tls.server_name (the name the certificate carries)", err))
	case errors.Is(err, ibr.ErrUnsupported):
		// Whatever else is missing, the stream to the domain was served.
		r.line(domainName, checkOK, "")
		r.line(c2sName, checkFail, "the server offers no invite registration (XEP-0445): load mod_invites_register on the domain; registration in the browser and usage tracking need it")
		return true
	case errors.As(err, &op):
		r.line(c2sName, checkFail, fmt.Sprintf("cannot connect to %s: %v: set xmpp.c2s to the host:port of Prosody's c2s_ports", cfg.XMPP.C2S, op.Err))
	default:
		r.line(c2sName, checkFail, err.Error())
	}
	return checkDomainDisco(ctx, r, domainName, notServed, cfg, link)
}

// checkDomainDisco asks the domain for disco#info over the component link:
// a server that does not serve the domain answers for it as for a remote
// one, which it does not find (remote-server-not-found, or with s2s off
// Prosody's not-allowed "Communication with remote domains is not
// enabled"); its own VirtualHost answers disco#info.
func checkDomainDisco(ctx context.Context, r *checkReport, name, notServed string, cfg *config.Config, link *checkLink) bool {
	if link == nil {
		r.line(name, checkSkipped, "neither the client port nor the component link could ask the server")
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, onlineStepTimeout)
	defer cancel()
	payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "http://jabber.org/protocol/disco#info", Local: "query"}})
	resp, err := link.SendIQElement(ctx, payload, stanza.IQ{Type: stanza.GetIQ, From: cfg.ComponentJID(), To: cfg.DomainJID()})
	if err != nil {
		r.line(name, checkSkipped, "could not ask the server: "+err.Error())
		return true
	}
	defer resp.Close()
	tok, err := resp.Token()
	start, ok := tok.(xml.StartElement)
	if err != nil || !ok {
		r.line(name, checkSkipped, "the server's answer was unreadable")
		return true
	}
	_, err = stanza.UnmarshalIQError(resp, start)
	var se stanza.Error
	if errors.As(err, &se) && (se.Condition == stanza.RemoteServerNotFound || se.Condition == stanza.ItemNotFound ||
		se.Condition == stanza.RemoteServerTimeout || se.Condition == stanza.NotAllowed) {
		r.line(name, checkFail, notServed)
		return false
	}
	r.line(name, checkOK, "")
	return true
}

// checkMinting asks the server which commands it offers the identity that
// mints (the component, or the minter account after its login): account
// invites must be among them, password resets may.
func checkMinting(ctx context.Context, r *checkReport, cfg *config.Config, link *checkLink, linkDown string) {
	var iss adhoc.Issuer
	name := mintingName(cfg)
	if cfg.Minting() == config.MintingAccount {
		sess, stop, err := loginMinter(ctx, cfg)
		if err != nil {
			r.line(name, checkFail, err.Error())
			r.line("password resets", checkSkipped, "the minter account could not log in")
			return
		}
		defer stop()
		iss = adhoc.Issuer{Server: cfg.DomainJID(), From: cfg.MinterJID(), Link: sess}
	} else {
		if link == nil {
			r.line(name, checkSkipped, linkDown)
			r.line("password resets", checkSkipped, linkDown)
			return
		}
		iss = adhoc.Issuer{Server: cfg.DomainJID(), From: cfg.ComponentJID(), Link: link}
	}
	ctx, cancel := context.WithTimeout(ctx, onlineStepTimeout)
	defer cancel()
	nodes, err := iss.Commands(ctx)
	if err != nil {
		r.line(name, checkFail, "could not ask the server which commands it offers: "+err.Error())
		r.line("password resets", checkSkipped, "the server could not be asked")
		return
	}
	if slices.Contains(nodes, invites.NodeCreateAccount) {
		r.line(name, checkOK, "the server offers "+invites.NodeCreateAccount)
	} else {
		r.line(name, checkFail, fmt.Sprintf("the server does not offer %s the command %s: %s",
			iss.From, invites.NodeCreateAccount, mintingFix(cfg)))
	}
	if slices.Contains(nodes, prosody.NodePasswordReset) {
		r.line("password resets", checkOK, "offered ("+prosody.NodePasswordReset+")")
	} else {
		r.line("password resets", checkNote, fmt.Sprintf("not offered to %s: Prosody 0.12 has none; Prosody 13 offers them to the domain's admins and to the %s role",
			iss.From, prosody.MinterRole))
	}
}

// mintingName names the minting check's line after who mints.
func mintingName(cfg *config.Config) string {
	if cfg.Minting() == config.MintingAccount {
		return fmt.Sprintf("minting as %s (xmpp.minter)", cfg.XMPP.Minter)
	}
	return "minting as the component " + cfg.XMPP.Component
}

// mintingFix says in one line what Prosody needs so that the minting
// identity may create invites.
func mintingFix(cfg *config.Config) string {
	if cfg.Minting() == config.MintingAccount {
		return fmt.Sprintf("on Prosody 13 give the account the %s role (custom_roles under VirtualHost %q, then prosodyctl shell user set_role %s %s); on 0.12 list it in the VirtualHost's admins",
			prosody.MinterRole, cfg.XMPP.Domain, cfg.XMPP.Minter, prosody.MinterRole)
	}
	return fmt.Sprintf("add it to the admins of VirtualHost %q (admins = { %q }), or set xmpp.minter to mint as an account",
		cfg.XMPP.Domain, cfg.XMPP.Component)
}

// minterLoginError says in one line why the minter account could not log
// in, and what to change.
func minterLoginError(cfg *config.Config, err error) error {
	var op *net.OpError
	switch {
	case errors.Is(err, minter.ErrRefused):
		return fmt.Errorf("the server refused the minter account's login: check xmpp.minter_password (or xmpp.minter_password_file), and that the account exists (prosodyctl adduser %s)", cfg.XMPP.Minter)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("cannot connect to %s: %v: set xmpp.c2s to the host:port of Prosody's c2s_ports", cfg.XMPP.C2S, op.Err)
	default:
		return fmt.Errorf("the minter account could not log in: %v", err)
	}
}

// loginMinter logs the minter account in the way the bot does (its own
// session code: STARTTLS, SCRAM only) and returns the session once it is
// up, with a function that logs it out. A refusal or a connection that
// fails ends the attempt at once instead of being retried.
func loginMinter(ctx context.Context, cfg *config.Config) (*minter.Session, func(), error) {
	c2s, err := c2sConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	up := make(chan struct{}, 1)
	downs := make(chan error, 1)
	ms := minter.New(minter.Config{
		Account:  cfg.MinterJID(),
		Password: cfg.XMPP.MinterPassword,
		Addr:     cfg.XMPP.C2S,
		TLS:      c2s.TLS,
		OnUp: func() {
			select {
			case up <- struct{}{}:
			default:
			}
		},
		OnDown: func(err error) {
			select {
			case downs <- err:
			default:
			}
		},
	}, slog.New(slog.DiscardHandler))
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ms.Run(mctx) }()
	stop := func() {
		cancel()
		<-done
	}
	timer := time.NewTimer(onlineStepTimeout)
	defer timer.Stop()
	select {
	case <-up:
		return ms, stop, nil
	case err := <-done:
		cancel()
		return nil, nil, minterLoginError(cfg, err)
	case err := <-downs:
		stop()
		return nil, nil, minterLoginError(cfg, err)
	case <-timer.C:
		stop()
		return nil, nil, fmt.Errorf("the minter account did not log in within %s", onlineStepTimeout)
	}
}

// checkModule asks the domain whether it runs mod_invitebot (optional).
func checkModule(ctx context.Context, r *checkReport, cfg *config.Config, link *checkLink, linkDown string) {
	const name = "mod_invitebot"
	if link == nil {
		r.line(name, checkSkipped, linkDown)
		return
	}
	errs := &errorCapture{}
	m := prosody.NewModule(cfg.DomainJID(), cfg.ComponentJID(), link, slog.New(errs))
	state, err := m.Detect(ctx)
	switch {
	case err != nil:
		r.line(name, checkFail, "could not ask the server: "+err.Error())
	case state == invites.ModulePresent:
		r.line(name, checkOK, "loaded")
	case errs.seen():
		r.line(name, checkFail, fmt.Sprintf("loaded, but for another component: set invitebot_component = %q under VirtualHost %q",
			cfg.XMPP.Component, cfg.XMPP.Domain))
	default:
		r.line(name, checkNote, "not loaded; it is optional (docs/prosody-setup.md says what it adds)")
	}
}

// errorCapture is a logger that only notes whether an error was logged.
type errorCapture struct {
	mu    sync.Mutex
	error bool
}

func (h *errorCapture) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (h *errorCapture) Handle(context.Context, slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.error = true
	return nil
}

func (h *errorCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorCapture) WithGroup(string) slog.Handler      { return h }

func (h *errorCapture) seen() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.error
}
