// Package mailtest starts a private mail server for tests: Debian's exim4
// (package exim4-daemon-light), as root, on a free loopback port, offering
// STARTTLS with a self-signed certificate made for the test and AUTH PLAIN
// only over TLS, taking mail only from a client that logged in, and
// delivering every message into a Maildir the test reads. A missing exim4
// fails the test: a mail test that skips in CI is no test.
package mailtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"durare.org/invitebot/internal/testcert"

	"durare.org/invitebot/internal/testwait"
)

// Tunables of the harness.
const (
	// startTimeout bounds the daemon coming up.
	startTimeout = 20 * time.Second
	// DeliveryTimeout is how long Wait waits for a mail by default: the
	// daemon delivers at once (-odi), but the machine may be busy.
	DeliveryTimeout = 30 * time.Second
	// eximUser is the account Debian's exim delivers as: exim never
	// delivers as root.
	eximUser = "Debian-exim"
)

// Server is a running private exim4.
type Server struct {
	// Addr is host:port of its SMTP port (STARTTLS, AUTH).
	Addr string
	// CAFile is the PEM of its self-signed certificate, to trust.
	CAFile string
	// Username and Password log in.
	Username, Password string

	dir, maildir string
	mu           sync.Mutex
	seen         map[string]bool
}

// Message is one delivered mail.
type Message struct {
	// To is the envelope recipient.
	To string
	// Header is the message's header as sent.
	Header mail.Header
	// Subject is the decoded subject; Body the decoded text.
	Subject, Body string
	// Raw is the message as delivered.
	Raw []byte

	// name orders the mails by delivery.
	name string
}

// Start runs exim4 for the test and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("exim4")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/exim4"); serr == nil {
			bin = "/usr/sbin/exim4"
		} else {
			t.Fatalf("mailtest: exim4 not found (install Debian's exim4-daemon-light): %v", err)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatalf("mailtest: exim4 must be started as root (it then delivers as %s)", eximUser)
	}
	u, err := user.Lookup(eximUser)
	if err != nil {
		t.Fatalf("mailtest: user %s (made by exim4's package): %v", eximUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// A directory of its own, not t.TempDir: exim's delivery runs as
	// eximUser, who cannot pass the test's private temporary folders.
	dir, err := os.MkdirTemp("", "mailtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{dir: dir, maildir: filepath.Join(dir, "Maildir"), Username: "invitebot",
		Password: randomHex(12), seen: make(map[string]bool)}
	for _, d := range []string{filepath.Join(dir, "spool"), s.maildir} {
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := writeCertificate(certFile, keyFile, gid); err != nil {
		t.Fatalf("mailtest: certificate: %v", err)
	}
	s.CAFile = certFile
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := filepath.Join(dir, "exim.conf")
	if err := os.WriteFile(conf, []byte(s.config(port, certFile, keyFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Output goes to a file, not a pipe: exim's children hold a pipe
	// open after the daemon ends, and Wait would wait for them.
	outFile := filepath.Join(dir, "exim.out")
	out, err := os.Create(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, "-C", conf, "-bdf", "-odi", "-oX", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	// A process group of its own: the daemon and the children it forks
	// for each connection end together, and nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("mailtest: start exim4: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			output, _ := os.ReadFile(outFile)
			log, _ := os.ReadFile(filepath.Join(dir, "spool", "mainlog"))
			t.Logf("exim4 output:\n%s\nexim4 mainlog:\n%s", output, log)
		}
	})
	testwait.ForNil(t, startTimeout, "exim4 to listen on "+s.Addr, func() error {
		select {
		case <-exited:
			output, _ := os.ReadFile(outFile)
			t.Fatalf("mailtest: exim4 exited at start:\n%s", output)
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return s
}

// config is the exim configuration: every recipient delivered to one
// Maildir, mail taken only from a client that logged in over TLS.
func (s *Server) config(port int, cert, key string) string {
	return fmt.Sprintf(`primary_hostname = localhost
exim_user = %[1]s
exim_group = %[1]s
spool_directory = %[2]s/spool
log_file_path = %[2]s/spool/%%slog
daemon_smtp_ports = %[3]d
local_interfaces = 127.0.0.1
never_users = root
keep_environment =
domainlist local_domains = *
tls_advertise_hosts = *
tls_certificate = %[4]s
tls_privatekey = %[5]s
auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}
acl_smtp_mail = acl_mail
acl_smtp_rcpt = acl_rcpt
begin acl
acl_mail:
  deny message = authentication required
       !authenticated = *
  accept
acl_rcpt:
  accept
begin routers
all:
  driver = accept
  transport = box
begin transports
box:
  driver = appendfile
  maildir_format
  directory = %[6]s
  user = %[1]s
  group = %[1]s
  envelope_to_add
  return_path_add
begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and {{eq{$auth2}{%[7]s}}{eq{$auth3}{%[8]s}}}}
  server_set_id = $auth2
`, eximUser, s.dir, port, cert, key, s.maildir, s.Username, s.Password)
}

// Messages returns every mail delivered to the envelope recipient to (all
// of them when to is empty), oldest first.
func (s *Server) Messages(t testing.TB, to string) []Message {
	t.Helper()
	var out []Message
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(s.maildir, sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatalf("mailtest: read maildir: %v", err)
		}
		for _, e := range entries {
			raw, err := os.ReadFile(filepath.Join(s.maildir, sub, e.Name()))
			if err != nil {
				t.Fatalf("mailtest: read mail: %v", err)
			}
			m, err := parse(e.Name(), raw)
			if err != nil {
				t.Fatalf("mailtest: mail %s: %v", e.Name(), err)
			}
			if to == "" || strings.EqualFold(m.To, to) {
				out = append(out, m)
			}
		}
	}
	// Maildir names begin with the delivery time in seconds and
	// microseconds (M), which order the mails.
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Wait waits for the next mail to to that Wait has not returned before,
// and returns it; it fails the test after DeliveryTimeout.
func (s *Server) Wait(t testing.TB, to string) Message {
	t.Helper()
	var got Message
	testwait.For(t, DeliveryTimeout, "a mail to "+to, func() bool {
		for _, m := range s.Messages(t, to) {
			s.mu.Lock()
			fresh := !s.seen[m.name]
			s.seen[m.name] = true
			s.mu.Unlock()
			if fresh {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// Count returns how many mails were delivered to to.
func (s *Server) Count(t testing.TB, to string) int {
	t.Helper()
	return len(s.Messages(t, to))
}

// parse reads a delivered mail.
func parse(name string, raw []byte) (Message, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return Message{}, err
	}
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		if body, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body))); err != nil {
			return Message{}, err
		}
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return Message{}, err
	}
	return Message{To: strings.Trim(m.Header.Get("Envelope-to"), "<> "), Header: m.Header, Subject: subject,
		Body: strings.ReplaceAll(string(body), "\r\n", "\n"), Raw: raw, name: maildirOrder(name)}, nil
}

// maildirOrder makes a Maildir file name sortable by delivery time:
// "<seconds>.M<micro>P<pid>.<host>".
func maildirOrder(name string) string {
	sec, rest, _ := strings.Cut(name, ".")
	micro := ""
	if strings.HasPrefix(rest, "M") {
		end := strings.IndexFunc(rest[1:], func(r rune) bool { return r < '0' || r > '9' })
		if end >= 0 {
			micro = rest[1 : 1+end]
		}
	}
	return fmt.Sprintf("%012s.%06s.%s", sec, micro, name)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeCertificate makes a self-signed certificate for localhost and
// 127.0.0.1, its own CA so that a Go client can trust it, with the key
// readable by the group exim's processes run in.
func writeCertificate(certFile, keyFile string, gid int) error {
	certPEM, keyPEM, err := testcert.New("invitebot mailtest", "localhost")
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o640); err != nil {
		return err
	}
	return os.Chown(keyFile, 0, gid)
}
