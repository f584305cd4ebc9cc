// Package prosodytest runs a private Prosody for a test, so that everything
// that crosses the wire (component link, invites, registration, chat) is
// tested against the server the project is deployed with instead of a fake.
//
// Each Start gets its own temporary directory, self-signed certificate and
// loopback ports, so tests in different packages (which go test runs in
// parallel) never share state. Prosody must be installed
// (apt-get install prosody); a missing binary fails the test instead of
// skipping it, because a skipped end-to-end test in CI is a test that never
// runs.
//
// The harness works with Prosody 0.12 and 13 alike; CI runs the packages
// that use it against 0.12.3 (Debian 12), 13.0.x (bookworm-backports),
// 13.0.1 (Debian 13) and 13.0.8 (trixie-backports) (see .ci/run).
// INVITEBOT_PROSODY_PREFIX selects an installation other than the one on
// PATH, INVITEBOT_PROSODY_VERSION pins the version a run must get, and
// every failure names the version and the Debian release and suite it
// comes from. A prefix made by scripts/debian13-root runs Prosody inside a
// Debian 13 root through chroot wrappers; the harness then checks that the
// files it hands Prosody are visible inside, and HostPath maps the paths
// Prosody reports back to this machine.
package prosodytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/testserver"
	"mellium.im/xmpp/jid"
)

// Tunables.
const (
	// DefaultDomain is the home VirtualHost, the domain invites create
	// accounts on.
	DefaultDomain = "durare.test"
	// DefaultOtherDomain is a second VirtualHost standing in for "any other
	// server" (there is no federation in tests; s2s is disabled).
	DefaultOtherDomain = "elsewhere.test"
	// DefaultComponent is the bot's XEP-0114 component address.
	DefaultComponent = "invites.durare.test"

	// startTimeout bounds Prosody's start-up until its listeners accept.
	// Start-up takes well under a second; the slack is for loaded CI hosts.
	startTimeout = 30 * time.Second
	// stopTimeout is how long a graceful stop (SIGTERM) may take before the
	// process is killed.
	stopTimeout = 10 * time.Second
	// ctlTimeout bounds one prosodyctl invocation.
	ctlTimeout = 30 * time.Second
	// startAttempts is how often Start picks new ports when another process
	// grabbed one between choosing it and Prosody binding it.
	startAttempts = 3
	// pollInterval is how often start-up progress is checked in the log.
	pollInterval = 20 * time.Millisecond
	// logTailLines is how much of Prosody's log a failing test prints.
	logTailLines = 120
	// maxSocketPath is the longest Unix socket path with room to spare
	// (sun_path holds 108 bytes on Linux, 104 on the BSDs).
	maxSocketPath = 100
)

//go:embed prosody.cfg.lua.tmpl
var configTemplateText string

var configTemplate = template.Must(template.New("prosody.cfg.lua").
	Funcs(template.FuncMap{"lua": luaString}).
	Parse(configTemplateText))

// Server is one running (or killed) Prosody private to a test.
type Server struct {
	Domain          string // home VirtualHost, where invites create accounts
	OtherDomain     string // second VirtualHost, "any other server"
	Component       string // component JID; an admin of Domain unless WithoutComponentAdmin
	ComponentSecret string // XEP-0114 shared secret
	ComponentAddr   string // 127.0.0.1:PORT of the component listener
	C2SAddr         string // 127.0.0.1:PORT of the client listener (STARTTLS)
	CACert          []byte // PEM of the self-signed certificate, valid for all three hosts
	Version         string // what prosodyctl about reports, e.g. "0.12.3" or "13.0.1"
	SourceDir       string // the Lua source directory that Prosody runs from, as Prosody sees it (see HostPath)
	Distro          string // the distribution and suite it comes from, e.g. "Debian 13, trixie-backports"; "" if unknown
	Root            string // the Debian root Prosody runs chrooted in (scripts/debian13-root); "" for this machine's own files

	Dir        string // temporary directory holding everything below
	ConfigPath string // prosody.cfg.lua
	DataDir    string // Prosody's data_path
	LogPath    string // Prosody's log (debug level)

	prosody     string // path of the prosody binary
	prosodyctl  string // path of the prosodyctl binary
	adminSocket string // where mod_admin_socket listens for prosodyctl shell
	socketDir   string // a short directory made for adminSocket, "" if it is in Dir
	certDir     string // the certificates directory Prosody reads
	roots       *x509.CertPool

	// minter is the account that MintToken mints as on a server with
	// mod_invitebot (WithInvitebotModule), the way a bot with xmpp.minter
	// does; zero without the module.
	minter     jid.JID
	minterPass string

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is one Prosody process and the means to know when it exited.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed after Wait returns
	err    error         // Wait's result, valid after exited is closed
}

// Option adjusts the server Start creates.
type Option func(*options)

type options struct {
	componentAdmin  bool
	secret          string
	admins          []string
	noNagle         bool
	invitebotModule bool
	moduleComponent string // invitebot_component when not Component
	offline         bool
	adminsNoRoles   []string
	customRoles     []Role
	inviteExpiry    int  // invite_expiry in seconds, 0 for Prosody's default
	sqlTokens       bool // invite tokens in SQLite (WithSQLTokens)
}

// Role is a Prosody 13 custom role (the custom_roles option): a name, the
// roles it inherits from, and the permissions it adds, such as
// "adhoc:urn:xmpp:invite#create-account".
type Role struct {
	Name     string
	Inherits []string
	Allow    []string
}

// WithAdminsWithoutRoles is WithAdmins on a Prosody without roles (0.12)
// and nothing on one with them (13), where the accounts get a narrower
// role from AddUserWithRole instead: one test can then give an account the
// least that lets it run the invite commands on either version.
func WithAdminsWithoutRoles(jids ...string) Option {
	return func(o *options) { o.adminsNoRoles = append(o.adminsNoRoles, jids...) }
}

// WithCustomRoles defines roles in Domain's VirtualHost (custom_roles).
// Prosody 13 gives them to accounts created with AddUserWithRole; 0.12
// does not know the option and ignores it.
func WithCustomRoles(roles ...Role) Option {
	return func(o *options) { o.customRoles = append(o.customRoles, roles...) }
}

// WithoutComponentAdmin leaves the component out of Domain's admins, to test
// how the bot copes when the server refuses it invite creation.
func WithoutComponentAdmin() Option {
	return func(o *options) { o.componentAdmin = false }
}

// WithInvitebotModule loads the repository's own Prosody module,
// prosody/mod_invitebot.lua, on Domain the way docs/prosody-setup.md tells operators
// to: its folder in plugin_paths, "invitebot" in the VirtualHost's
// modules_enabled, and invitebot_component naming the component.
//
// The module serves only tokens the bot minted, so such a server also gets
// a minter account (an admin of Domain, named in invitebot_minter) and
// MintToken mints as it, through the server's create-account command, the
// way a bot with xmpp.minter does. MintAdminToken mints as an admin at the
// console instead.
func WithInvitebotModule() Option {
	return func(o *options) { o.invitebotModule = true }
}

// WithInvitebotComponent is WithInvitebotModule with invitebot_component
// set to name instead of the component, to test how the module takes a
// wrong one.
func WithInvitebotComponent(name string) Option {
	return func(o *options) { o.invitebotModule, o.moduleComponent = true, name }
}

// WithOfflineMessages loads mod_offline, so that messages to accounts
// without a connected client wait for their next login (the welcome a new
// account gets is sent before its client has logged in).
func WithOfflineMessages() Option {
	return func(o *options) { o.offline = true }
}

// WithAdmins makes the bare JIDs admins of Domain besides the component,
// e.g. a local account that runs the server's own invite command, to compare
// with the bot (cmd/invitebench).
func WithAdmins(jids ...string) Option {
	return func(o *options) { o.admins = append(o.admins, jids...) }
}

// WithoutNagle sets network_settings = { nagle = false }: Prosody then
// sends every stanza at once instead of holding a small one back until
// the peer acknowledged the previous one (its default, which with the
// peer's delayed ACK can add 40 ms when two stanzas go out back to back).
func WithoutNagle() Option {
	return func(o *options) { o.noNagle = true }
}

// WithInviteExpiry sets invite_expiry: how many seconds a token Prosody
// mints is valid (its default is a week).
func WithInviteExpiry(seconds int) Option {
	return func(o *options) { o.inviteExpiry = seconds }
}

// WithSQLTokens keeps invite tokens in SQLite (storage = { invite_token =
// "sql" }) instead of Prosody's internal files. It needs LuaDBI's SQLite
// driver (Debian: lua-dbi-sqlite3).
func WithSQLTokens() Option {
	return func(o *options) { o.sqlTokens = true }
}

// WithComponentSecret sets the component secret instead of a random one.
func WithComponentSecret(secret string) Option {
	return func(o *options) { o.secret = secret }
}

// Start runs a private Prosody for the test and stops it in t.Cleanup. It
// returns once the c2s and the component listener and the admin socket
// accept connections. The Prosody is the one on PATH, or the one EnvPrefix
// names; its version is in Server.Version and in every failure message.
// Under -short it skips: these tests need the real server.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("prosody tests need a full run")
	}
	in, err := installed()
	if err != nil {
		t.Fatalf("prosodytest%s: %v", wantedVersion(in.distro), err)
	}
	o := newOptions(opts)
	s, err := prepare(t.TempDir(), in, o)
	if s.socketDir != "" {
		t.Cleanup(func() { os.RemoveAll(s.socketDir) })
	}
	if err != nil {
		s.fatalf(t, "%v", err)
	}

	// Registered after t.TempDir, so it runs before the directory is removed
	// (cleanups run last-in first-out): Prosody must be gone first.
	t.Cleanup(func() {
		if t.Failed() {
			// The test's own assertions do not know the version; this
			// line makes every failure of a test with a server name it.
			if s.Version != "" {
				t.Logf("%s: test failed against %s from %s%s", s.tag(), s.Name(), s.SourceDir, s.inRoot())
			}
			s.logTail(t)
		}
		if err := s.stop(); err != nil {
			t.Errorf("%s: stop: %v", s.tag(), err)
		}
	})

	if err := s.launch(o, t.Logf); err != nil {
		s.fatalf(t, "%v", err)
	}
	return s
}

// Launch is Start for programs that are not tests (the benchmark in
// cmd/invitebench): the server lives in a fresh temporary directory, errors
// are returned, progress goes to logf (nil: nowhere), and the caller must
// Close the server. It does not skip under -short.
func Launch(logf func(format string, args ...any), opts ...Option) (*Server, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	in, err := installed()
	if err != nil {
		return nil, fmt.Errorf("prosodytest%s: %w", wantedVersion(in.distro), err)
	}
	dir, err := os.MkdirTemp("", "prosodytest")
	if err != nil {
		return nil, fmt.Errorf("prosodytest: %w", err)
	}
	o := newOptions(opts)
	s, err := prepare(dir, in, o)
	if err == nil {
		err = s.launch(o, logf)
	}
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("%s: %w", s.tag(), err)
	}
	return s, nil
}

// Close stops Prosody (see Shutdown) and removes its directory. It is for
// servers from Launch; Start's servers clean up after their test.
func (s *Server) Close() error {
	err := s.stop()
	if s.socketDir != "" {
		os.RemoveAll(s.socketDir)
	}
	if rmErr := os.RemoveAll(s.Dir); err == nil {
		err = rmErr
	}
	return err
}

// Shutdown stops Prosody gracefully, killing it if it ignores SIGTERM,
// and keeps its directory, so that Boot can start it again.
func (s *Server) Shutdown() error { return s.stop() }

// Boot starts a stopped Prosody again with the same configuration, ports
// and data, and returns once its listeners accept. It is Restart without
// the testing.TB, for a caller that changes the data in between.
func (s *Server) Boot() error {
	if err := s.start(); err != nil {
		return fmt.Errorf("%s: start: %w\n%s", s.tag(), err, s.tail())
	}
	return nil
}

// newOptions applies opts to the defaults.
func newOptions(opts []Option) options {
	o := options{componentAdmin: true, secret: randomHex(16)}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// prepare lays out a server in dir (data and certificate directories, the
// certificate) without starting it. The returned Server is never nil, so
// that a caller can name it and clean up after a failure.
func prepare(dir string, in installation, o options) (*Server, error) {
	s := &Server{
		Domain:          DefaultDomain,
		OtherDomain:     DefaultOtherDomain,
		Component:       DefaultComponent,
		ComponentSecret: o.secret,
		Dir:             dir,
		ConfigPath:      filepath.Join(dir, "prosody.cfg.lua"),
		DataDir:         filepath.Join(dir, "data"),
		LogPath:         filepath.Join(dir, "prosody.log"),
		Distro:          in.distro,
		Root:            in.root,
		prosody:         in.prosody,
		prosodyctl:      in.prosodyctl,
		certDir:         filepath.Join(dir, "certs"),
	}
	if o.invitebotModule {
		s.minter = jid.MustParse(moduleMinter + "@" + s.Domain)
		s.minterPass = randomHex(16)
	}
	for _, d := range []string{s.DataDir, s.certDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return s, err
		}
	}
	var err error
	s.CACert, err = writeCertificates(s.certDir, s.Domain, s.OtherDomain, s.Component)
	if err != nil {
		return s, err
	}
	s.roots = x509.NewCertPool()
	s.roots.AppendCertsFromPEM(s.CACert)
	if s.adminSocket, s.socketDir, err = adminSocketPath(dir); err != nil {
		return s, err
	}
	visible := []string{dir, filepath.Dir(s.adminSocket)}
	if s.Root != "" {
		// Tests hand Prosody files of the checkout (mod_invitebot, the
		// package's example configuration) even without
		// WithInvitebotModule: a checkout not mounted into the root fails
		// here, with how to mount it, instead of as a module that did
		// not load.
		if m, err := ModuleDir(); err == nil {
			visible = append(visible, m)
		}
	}
	for _, d := range visible {
		if err := visibleInRoot(s.Root, d); err != nil {
			return s, err
		}
	}
	return s, nil
}

// inRoot says where SourceDir is when Prosody runs in a Debian root.
func (s *Server) inRoot() string {
	if s.Root == "" {
		return ""
	}
	return " in " + s.Root
}

// launch picks ports, writes the configuration and starts Prosody, picking
// other ports when someone took one first. logf hears about progress.
func (s *Server) launch(o options, logf func(format string, args ...any)) error {
	for attempt := 1; ; attempt++ {
		ports, err := testserver.FreePorts(2)
		if err != nil {
			return err
		}
		c2sPort, compPort := ports[0], ports[1]
		s.C2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c2sPort))
		s.ComponentAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(compPort))
		if err := s.writeConfig(c2sPort, compPort, o); err != nil {
			return err
		}
		if s.Version == "" {
			if err := s.identify(); err != nil {
				return err
			}
			// identify needed a configuration; options that depend on the
			// version it found are rendered now.
			if err := s.writeConfig(c2sPort, compPort, o); err != nil {
				return err
			}
		}
		err = s.start()
		if err == nil && !s.minter.Equal(jid.JID{}) {
			if _, err = s.Register(s.minter.Localpart(), s.Domain, s.minterPass); err != nil {
				return fmt.Errorf("minter account: %w", err)
			}
		}
		if err == nil {
			logf("%s: started from %s, c2s %s, component %s", s.tag(), s.SourceDir, s.C2SAddr, s.ComponentAddr)
			return nil
		}
		if errors.Is(err, errPortTaken) && attempt < startAttempts {
			logf("%s: %v; retrying with other ports", s.tag(), err)
			continue
		}
		return fmt.Errorf("start prosody: %w\n%s", err, s.tail())
	}
}

// RootCAs returns a pool holding only the test certificate.
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// TLSConfig returns a client TLS config that trusts the test certificate
// and verifies it for serverName.
func (s *Server) TLSConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// IBRConfig returns the ibr configuration for registering on Domain.
func (s *Server) IBRConfig() ibr.Config {
	return ibr.Config{Addr: s.C2SAddr, Domain: s.Domain, TLS: s.TLSConfig(s.Domain)}
}

// AddUser creates user@host with pass (prosodyctl register) and returns the
// bare JID. The server may be running.
func (s *Server) AddUser(t testing.TB, user, host, pass string) jid.JID {
	t.Helper()
	j, err := s.Register(user, host, pass)
	if err != nil {
		s.fatalf(t, "%v", err)
	}
	return j
}

// Register is AddUser without the testing.TB: it returns the error.
func (s *Server) Register(user, host, pass string) (jid.JID, error) {
	j, err := jid.New(user, host, "")
	if err != nil {
		return jid.JID{}, fmt.Errorf("add user: %w", err)
	}
	if _, err := s.ctl("register", user, host, pass); err != nil {
		return jid.JID{}, fmt.Errorf("add user %s: %w", j, err)
	}
	return j, nil
}

// HasRoles reports whether this Prosody gives accounts roles and knows
// custom_roles: 13 does, 0.12 (whose only distinction is admins) does not.
func (s *Server) HasRoles() bool { return !strings.HasPrefix(s.Version, "0.") }

// BindsResetTokens reports whether this Prosody accepts a password reset
// token only for the username it resets ("Incorrect username for password
// reset"), so that nobody can use one up with another account: 13.0.8
// does, 13.0.1 does not (the versions between were not tried). Tests use
// it to say what they expect; the bot itself reads the server's answer.
func (s *Server) BindsResetTokens() bool { return s.atLeast13_0_8() }

// OneAccountPerToken reports whether this Prosody itself lets a token
// create one account only: 13.0.8 refuses a second registration on the
// stream that used the token, and registration on another stream that
// passed preauth before the token was used; 13.0.1 and 0.12 allow both
// (the hole mod_invitebot closes). Tests use it to say what they expect.
func (s *Server) OneAccountPerToken() bool { return s.atLeast13_0_8() }

// atLeast13_0_8 reports whether the version is 13.0.8 or newer (the
// versions between 13.0.1 and 13.0.8 were not tried).
func (s *Server) atLeast13_0_8() bool {
	var major, minor, patch int
	if _, err := fmt.Sscanf(s.Version, "%d.%d.%d", &major, &minor, &patch); err != nil {
		return false
	}
	return major > 13 || major == 13 && (minor > 0 || patch >= 8)
}

// AddUserWithRole creates user@host with pass and gives it role as its
// primary role, Prosody 13 only: prosodyctl register, then prosodyctl
// shell user set_role, the commands docs/prosody-setup.md and the bot's log give
// operators. The server must be running, and a custom role must have been
// defined with WithCustomRoles. On 0.12, which has no roles, it fails the
// test: use WithAdmins there.
func (s *Server) AddUserWithRole(t testing.TB, user, host, pass, role string) jid.JID {
	t.Helper()
	if !s.HasRoles() {
		s.fatalf(t, "add user with role %s: Prosody %s has no roles (give the account admins with WithAdmins)", role, s.Version)
	}
	j := s.AddUser(t, user, host, pass)
	out, err := s.ctl("shell", "user", "set_role", j.String(), role)
	if err != nil {
		s.fatalf(t, "give %s the role %s: %v", j, role, err)
	}
	// The shell may report a failure (an unknown role) only in its output;
	// the role read back is the proof.
	if got := s.UserRole(t, j); got != role {
		s.fatalf(t, "give %s the role %s: it has %q; prosodyctl shell said %q", j, role, got, strings.TrimSpace(out))
	}
	return j
}

// UserRole returns the primary role Prosody 13 gives the account j
// (prosodyctl shell user role).
func (s *Server) UserRole(t testing.TB, j jid.JID) string {
	t.Helper()
	out, err := s.ctl("shell", "user", "role", j.String())
	if err != nil {
		s.fatalf(t, "role of %s: %v", j, err)
	}
	// The shell's result line is "OK: ROLE", or "OK: ROLE (primary)" when
	// the account has secondary roles too.
	for _, line := range strings.Split(out, "\n") {
		if r, ok := strings.CutPrefix(strings.TrimSpace(line), "OK: "); ok {
			return strings.TrimSuffix(r, " (primary)")
		}
	}
	s.fatalf(t, "role of %s: no result in prosodyctl shell output %q", j, out)
	return ""
}

// preauthRE finds the token in the URI mod_invites returns.
var preauthRE = regexp.MustCompile(`[?;]preauth=([^;&\s]+)`)

// MintToken creates an account invitation on Domain and returns its
// preauth token, so that registration can be tested without the bot. It
// mints the way an admin would (MintAdminToken), except on a server with
// mod_invitebot, where it mints as the bot would (mintAsMinter).
func (s *Server) MintToken(t testing.TB) string {
	t.Helper()
	if !s.minter.Equal(jid.JID{}) {
		token, err := s.mintAsMinter()
		if err != nil {
			s.fatalf(t, "mint token: %v", err)
		}
		return token
	}
	return s.MintAdminToken(t)
}

// MintAdminToken creates an account invitation on Domain the way an admin
// would at the console and returns its preauth token. It goes through the
// admin shell (prosodyctl shell invite create_account), which both 0.12
// and 13 have; 13 dropped the older "prosodyctl mod_invites generate".
func (s *Server) MintAdminToken(t testing.TB) string {
	t.Helper()
	out, err := s.ctl("shell", "invite", "create_account", s.Domain)
	if err != nil {
		s.fatalf(t, "mint token: %v", err)
	}
	m := preauthRE.FindStringSubmatch(out)
	if m == nil {
		s.fatalf(t, "mint token: no preauth token in prosodyctl output %q", out)
	}
	return m[1]
}

// Kill ends Prosody with SIGKILL, simulating a crash: nothing is flushed and
// connected clients see the TCP connection drop.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		s.fatalf(t, "kill: prosody is not running")
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.fatalf(t, "kill: %v", err)
	}
	<-p.exited
}

// Stop shuts Prosody down gracefully (SIGTERM), as an operator restart would.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		s.fatalf(t, "stop: %v", err)
	}
}

// Restart starts Prosody again on the same ports, configuration and data
// directory, stopping it gracefully first if it is still running, and
// returns once its listeners accept.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		s.fatalf(t, "restart: stop: %v", err)
	}
	if err := s.start(); err != nil {
		s.fatalf(t, "restart: %v\n%s", err, s.tail())
	}
}

// errPortTaken means one of the chosen ports was bound by someone else before
// Prosody got to it.
var errPortTaken = errors.New("port already in use")

// start launches Prosody with the current configuration and waits until it
// listens on both ports.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}

	// Only log lines written by this process count: after a restart the
	// file still holds the previous run's "Activated" lines.
	var offset int64
	if fi, err := os.Stat(s.LogPath); err == nil {
		offset = fi.Size()
	}

	console, err := os.OpenFile(filepath.Join(s.Dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer console.Close() // the child has its own copy of the descriptor

	// -F: stay in the foreground so that the process we started is Prosody
	// itself and signals reach it.
	cmd := exec.Command(s.prosody, "--config", s.ConfigPath, "-F")
	cmd.Dir = s.Dir
	cmd.Stdout = console
	cmd.Stderr = console
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.prosody, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	if err := s.awaitListening(p, offset); err != nil {
		_ = cmd.Process.Kill()
		<-p.exited
		return err
	}
	s.proc = p
	return nil
}

// awaitListening waits until Prosody logged that it bound both ports, the
// ports accept connections, and so does the admin socket (MintToken's way
// in, which Prosody 13 may open after the ports). The log is the authority
// for the ports: a port that accepts could belong to another process, and
// "Failed to open server port" is how Prosody reports that (it keeps running
// without the listener).
func (s *Server) awaitListening(p *process, offset int64) error {
	want := []string{
		"Activated service 'c2s' on " + logAddr(s.C2SAddr),
		"Activated service 'component' on " + logAddr(s.ComponentAddr),
	}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		logText := testserver.ReadFrom(s.LogPath, offset)
		if strings.Contains(logText, "Failed to open server port") {
			return errPortTaken
		}
		if strings.Contains(logText, "Unable to bind admin socket") || strings.Contains(logText, "Unable to listen on admin socket") {
			return fmt.Errorf("prosody could not open the admin socket %s", s.adminSocket)
		}
		if testserver.ContainsAll(logText, want) && testserver.Accepts("tcp", s.C2SAddr) && testserver.Accepts("tcp", s.ComponentAddr) &&
			testserver.Accepts("unix", s.adminSocket) {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("prosody exited during start-up: %v", p.err)
		case <-deadline.C:
			return fmt.Errorf("prosody not listening on %s, %s and %s after %v", s.C2SAddr, s.ComponentAddr, s.adminSocket, startTimeout)
		case <-tick.C:
		}
	}
}

// stop ends a running Prosody gracefully, killing it after stopTimeout.
// Stopping a server that is not running is not an error.
func (s *Server) stop() error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(sigTerm); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("prosody ignored SIGTERM for %v; killed", stopTimeout)
	}
}

// ctl runs prosodyctl against this server's configuration.
func (s *Server) ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.prosodyctl, append([]string{"--config", s.ConfigPath}, args...)...)
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		// args may hold a password: name only the subcommand.
		return string(out), fmt.Errorf("prosodyctl %s: %w: %s", args[0], err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// writeConfig renders the Prosody configuration for the chosen ports.
func (s *Server) writeConfig(c2sPort, compPort int, o options) error {
	var pluginDir string
	if o.invitebotModule {
		var err error
		if pluginDir, err = ModuleDir(); err != nil {
			return err
		}
		if err := visibleInRoot(s.Root, pluginDir); err != nil {
			return err
		}
	}
	var admins []string
	if o.componentAdmin {
		admins = append(admins, s.Component)
	}
	var minter string
	if !s.minter.Equal(jid.JID{}) {
		minter = s.minter.String()
		admins = append(admins, minter)
	}
	moduleComponent := s.Component
	if o.moduleComponent != "" {
		moduleComponent = o.moduleComponent
	}
	admins = append(admins, o.admins...)
	if s.Version != "" && !s.HasRoles() {
		admins = append(admins, o.adminsNoRoles...)
	}
	var b bytes.Buffer
	err := configTemplate.Execute(&b, map[string]any{
		"PidFile":         filepath.Join(s.Dir, "prosody.pid"),
		"DataDir":         s.DataDir,
		"LogFile":         s.LogPath,
		"CertDir":         s.certDir,
		"C2SPort":         c2sPort,
		"ComponentPort":   compPort,
		"Domain":          s.Domain,
		"OtherDomain":     s.OtherDomain,
		"Component":       s.Component,
		"ModuleComponent": moduleComponent,
		"Minter":          minter,
		"ComponentSecret": s.ComponentSecret,
		"ComponentAdmin":  o.componentAdmin,
		"Admins":          admins,
		"NoNagle":         o.noNagle,
		"CustomRoles":     o.customRoles,
		"AdminSocket":     s.adminSocket,
		"PluginDir":       pluginDir,
		"Offline":         o.offline,
		"InviteExpiry":    o.inviteExpiry,
		"SQLTokens":       o.sqlTokens,
	})
	if err != nil {
		return fmt.Errorf("render config: %w", err)
	}
	return os.WriteFile(s.ConfigPath, b.Bytes(), 0o600)
}

// logTail logs the end of Prosody's log and console output to the test.
func (s *Server) logTail(t testing.TB) {
	t.Helper()
	if tail := s.tail(); tail != "" {
		t.Log(tail)
	}
}

// logAddr writes host:port the way Prosody's portmanager logs it: [host]:port.
func logAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return "[" + host + "]:" + port
}

// adminSocketPath returns where the admin socket of a server in dir goes:
// in dir if the path fits a Unix socket address, else in a fresh short
// directory (returned too, for the caller to remove), because t.TempDir
// under a long TMPDIR or test name can exceed the limit and Prosody then
// runs without the socket.
func adminSocketPath(dir string) (path, madeDir string, err error) {
	p := filepath.Join(dir, "admin.sock")
	if len(p) < maxSocketPath {
		return p, "", nil
	}
	short, err := os.MkdirTemp("/tmp", "pt")
	if err != nil {
		return "", "", fmt.Errorf("admin socket directory: %w", err)
	}
	return filepath.Join(short, "admin.sock"), short, nil
}

// luaString quotes s as a Lua string literal. Only what can appear in paths,
// host names and secrets is expected; control characters are refused rather
// than escaped.
func luaString(s string) (string, error) {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			return "", fmt.Errorf("control character in Lua string %q", s)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24; it crashes the program instead
	return hex.EncodeToString(b)
}

// tail returns the last lines of Prosody's log and anything it printed.
func (s *Server) tail() string {
	return testserver.Tail(logTailLines, s.LogPath, filepath.Join(s.Dir, "console.log"))
}
