// Package ejabberdtest runs a private ejabberd for a test, so that what
// crosses the wire to ejabberd (minting as the minter account, API
// commands, registration with a token) is tested against the real server.
//
// Each Start gets its own temporary directory (configuration, spool, logs),
// self-signed certificate, Erlang node name and cookie, and loopback ports
// (c2s, component, Erlang distribution: no epmd, so tests in parallel
// never meet). The configuration is the harness's base (hosts, c2s,
// certificates) merged with the fragment homeserver/ejabberd gives
// operators, so the tests run what operators are told to run.
//
// ejabberd must be installed; a missing ejabberdctl fails the test
// instead of skipping it. EnvPrefix selects an installation other than the
// one on PATH and EnvVersion pins the version a run must get. ejabberdctl
// runs as root (as in the Debian 13 root of scripts/debian13-root): the
// server then runs as root too, with no user switch, like prosodytest's
// run_as_root.
package ejabberdtest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/testserver"
)

// Tunables.
const (
	// DefaultDomain is the home host, the domain invites create accounts on.
	DefaultDomain = "durare.test"
	// DefaultOtherDomain is a second host standing in for "any other
	// server" (no federation in tests).
	DefaultOtherDomain = "elsewhere.test"
	// DefaultComponent is the bot's XEP-0114 component address.
	DefaultComponent = "invites.durare.test"
	// MinterUser is the minter account's localpart on Domain.
	MinterUser = "invitebot-minter"

	// startTimeout bounds ejabberd's start-up until its listeners accept.
	// It starts in about two seconds; the rest is for loaded CI hosts.
	startTimeout = 60 * time.Second
	// stopTimeout is how long a graceful stop may take before the
	// process group is killed.
	stopTimeout = 30 * time.Second
	// ctlTimeout bounds one ejabberdctl invocation (an Erlang VM start).
	ctlTimeout = 60 * time.Second
	// startAttempts is how often Start picks new ports when another
	// process took one between choosing and binding it.
	startAttempts = 3
	// pollInterval is how often start-up progress is checked in the log.
	pollInterval = 50 * time.Millisecond
	// logTailLines is how much of ejabberd's log a failing test prints.
	logTailLines = 120
)

// Server is one running (or stopped) ejabberd private to a test.
type Server struct {
	Domain          string  // home host, where invites create accounts
	OtherDomain     string  // second host, "any other server"
	Component       string  // component JID (ejabberd_service)
	ComponentSecret string  // XEP-0114 shared secret
	ComponentAddr   string  // 127.0.0.1:PORT of the component listener
	C2SAddr         string  // 127.0.0.1:PORT of the client listener (STARTTLS)
	CACert          []byte  // PEM of the self-signed certificate, valid for all hosts
	Minter          jid.JID // the minter account, as the fragment names it
	MinterPassword  string
	Version         string // what ejabberd says it is, e.g. "26.07"

	Dir        string // temporary directory holding everything below
	ConfigPath string // ejabberd.yml
	LogPath    string // ejabberd.log (loglevel info)

	ctl      string // path of ejabberdctl
	certPath string // certificate and key in one PEM file
	spoolDir string
	logDir   string
	distPort int
	node     string // Erlang node name (without @localhost), fixed for the spool
	cookie   string // Erlang cookie, shared by the node and ejabberdctl
	roots    *x509.CertPool
	opts     options

	mu   sync.Mutex
	proc *process // nil when not running
}

// Option adjusts the server Start creates.
type Option func(*options)

type options struct {
	secret            string
	withoutPermission bool
}

// WithoutAPIPermissions leaves the fragment's api_permissions entry out:
// the minter may mint but run no API command.
func WithoutAPIPermissions() Option {
	return func(o *options) { o.withoutPermission = true }
}

// WithComponentSecret sets the component secret instead of a random one.
func WithComponentSecret(secret string) Option {
	return func(o *options) { o.secret = secret }
}

// Start runs a private ejabberd for the test and stops it in t.Cleanup.
// It returns once the c2s and component listeners accept connections and
// the minter account exists. Under -short it skips: these tests need the
// real server.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("ejabberd tests need a full run")
	}
	ctl, err := ejabberdctl()
	if err != nil {
		t.Fatalf("ejabberdtest%s: %v", wantedVersion(), err)
	}
	o := options{secret: randomHex(16)}
	for _, opt := range opts {
		opt(&o)
	}
	s, err := prepare(t.TempDir(), ctl, o)
	if err != nil {
		s.fatalf(t, "%v", err)
	}
	// Registered after t.TempDir, so it runs before the directory is
	// removed (cleanups run last-in first-out): ejabberd must be gone first.
	t.Cleanup(func() {
		if t.Failed() {
			if s.Version != "" {
				t.Logf("%s: test failed against ejabberd %s", s.tag(), s.Version)
			}
			if tail := s.tail(); tail != "" {
				t.Log(tail)
			}
		}
		if err := s.stop(); err != nil {
			t.Errorf("%s: stop: %v", s.tag(), err)
		}
	})
	if err := s.launch(t.Logf); err != nil {
		s.fatalf(t, "%v", err)
	}
	return s
}

// prepare lays out a server in dir without starting it. The returned
// Server is never nil, so that a caller can name it after a failure.
func prepare(dir, ctl string, o options) (*Server, error) {
	s := &Server{
		Domain:          DefaultDomain,
		OtherDomain:     DefaultOtherDomain,
		Component:       DefaultComponent,
		ComponentSecret: o.secret,
		Minter:          jid.MustParse(MinterUser + "@" + DefaultDomain),
		MinterPassword:  randomHex(16),
		Dir:             dir,
		ConfigPath:      filepath.Join(dir, "ejabberd.yml"),
		logDir:          filepath.Join(dir, "logs"),
		spoolDir:        filepath.Join(dir, "spool"),
		certPath:        filepath.Join(dir, "cert.pem"),
		ctl:             ctl,
		opts:            o,
		node:            "ejabberdtest-" + randomHex(6),
		cookie:          randomHex(16),
	}
	s.LogPath = filepath.Join(s.logDir, "ejabberd.log")
	for _, d := range []string{s.logDir, s.spoolDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return s, err
		}
	}
	var err error
	s.CACert, err = writeCertificate(s.certPath, s.Domain, s.OtherDomain, s.Component)
	if err != nil {
		return s, err
	}
	s.roots = x509.NewCertPool()
	s.roots.AppendCertsFromPEM(s.CACert)
	return s, s.writeCtlConfig()
}

// launch picks ports, writes the configuration, starts ejabberd and
// creates the minter account, picking other ports when someone took one.
func (s *Server) launch(logf func(format string, args ...any)) error {
	for attempt := 1; ; attempt++ {
		ports, err := testserver.FreePorts(3)
		if err != nil {
			return err
		}
		s.C2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		s.ComponentAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		s.distPort = ports[2]
		if err := s.writeCtlConfig(); err != nil {
			return err
		}
		if err := s.writeConfig(ports[0], ports[1]); err != nil {
			return err
		}
		err = s.start()
		if err == nil {
			err = s.checkVersion()
		}
		if err == nil {
			if _, err = s.Register(s.Minter.Localpart(), s.Domain, s.MinterPassword); err != nil {
				err = fmt.Errorf("minter account: %w", err)
			}
		}
		if err == nil {
			logf("%s: started, c2s %s, component %s, erlang distribution %d", s.tag(), s.C2SAddr, s.ComponentAddr, s.distPort)
			return nil
		}
		if errors.Is(err, errPortTaken) && attempt < startAttempts {
			logf("%s: %v; retrying with other ports", s.tag(), err)
			continue
		}
		return fmt.Errorf("start ejabberd: %w\n%s", err, s.tail())
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

// AddUser creates user@host with pass (ejabberdctl register) and returns
// the bare JID.
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
	if _, err := s.run("register", user, host, pass); err != nil {
		return jid.JID{}, fmt.Errorf("add user %s: %w", j, err)
	}
	return j, nil
}

// Stop shuts ejabberd down gracefully (ejabberdctl stop), as an operator
// would.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		s.fatalf(t, "stop: %v", err)
	}
}

// Restart starts ejabberd again on the same ports, configuration and
// spool, stopping it first if it runs, and returns once its listeners
// accept.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		s.fatalf(t, "restart: stop: %v", err)
	}
	if err := s.start(); err != nil {
		s.fatalf(t, "restart: %v\n%s", err, s.tail())
	}
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
