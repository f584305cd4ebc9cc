package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"durare.org/invitebot/invites"
)

// sendTimeout bounds one SMTP conversation (connect, STARTTLS, AUTH, one
// message): the page that caused it waits for the answer.
const sendTimeout = 20 * time.Second

// Config says which SMTP server sends the mails and as whom.
type Config struct {
	// SMTP is the server's host:port (submission, usually port 587).
	SMTP string
	// From is the sender address every mail carries.
	From string
	// Username and Password log in (SMTP AUTH PLAIN, only ever over
	// TLS); both empty means the server takes mail without a login.
	Username, Password string
	// ServerName is the name the server's certificate must carry; the
	// host of SMTP when empty.
	ServerName string
	// CAFile is an extra CA or self-signed certificate (PEM) to trust.
	CAFile string
	// Domain names the XMPP domain in the mails' subjects.
	Domain string
}

// Sender sends the bot's mails. It dials the server for each mail: they
// are few, and no connection is kept for a stranger to hold open.
type Sender struct {
	cfg  Config
	host string
	port int
	tls  *tls.Config
	log  *slog.Logger
}

// New checks cfg and returns a Sender. It does not dial the server.
func New(cfg Config, log *slog.Logger) (*Sender, error) {
	host, portText, err := net.SplitHostPort(cfg.SMTP)
	if err != nil {
		return nil, fmt.Errorf("mail: smtp %q: %w", cfg.SMTP, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("mail: smtp %q: bad port", cfg.SMTP)
	}
	if _, err := invites.NormalizeAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("mail: from %q: %w", cfg.From, err)
	}
	tc := &tls.Config{ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mail: ca file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mail: ca file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	return &Sender{cfg: cfg, host: host, port: port, tls: tc, log: log}, nil
}

// SendConfirmation mails the code and link that confirm address to, in
// language lang.
func (s *Sender) SendConfirmation(ctx context.Context, to, lang string, c invites.Confirmation) error {
	t := textFor(lang)
	expires := c.Expires.UTC().Format(t.DateLayout)
	if c.Account != "" {
		return s.send(ctx, to, lang, fmt.Sprintf(t.AccountSubject, s.cfg.Domain),
			fmt.Sprintf(t.AccountBody, c.Account, c.Code, expires))
	}
	return s.send(ctx, to, lang, fmt.Sprintf(t.ConfirmSubject, s.cfg.Domain),
		fmt.Sprintf(t.ConfirmBody, s.cfg.Domain, c.Link, c.Code, expires))
}

// SendReset mails a password reset link for an account to the address
// the account confirmed, in language lang.
func (s *Sender) SendReset(ctx context.Context, to, lang string, r invites.ResetMail) error {
	t := textFor(lang)
	expires := r.Expires.UTC().Format(t.DateLayout)
	return s.send(ctx, to, lang, fmt.Sprintf(t.ResetSubject, s.cfg.Domain),
		fmt.Sprintf(t.ResetBody, r.Account, r.Link, expires))
}

// send mails one plain-text message. The recipient is checked again here
// (one bare address, nothing else), so that no caller can add a header or
// a second recipient through it.
func (s *Sender) send(ctx context.Context, to, lang, subject, body string) error {
	if _, err := invites.NormalizeAddress(to); err != nil {
		return fmt.Errorf("mail: recipient: %w", err)
	}
	m := gomail.NewMsg()
	if err := m.From(s.cfg.From); err != nil {
		return fmt.Errorf("mail: from: %w", err)
	}
	if err := m.To(to); err != nil {
		return fmt.Errorf("mail: recipient: %w", err)
	}
	m.Subject(subject)
	m.SetGenHeader(gomail.HeaderContentLang, textLang(lang))
	m.SetBodyString(gomail.TypeTextPlain, body)
	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(sendTimeout),
		gomail.WithTLSConfig(s.tls),
		gomail.WithTLSPolicy(gomail.TLSMandatory),
	}
	if s.cfg.Username != "" || s.cfg.Password != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain),
			gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	// go-mail leaves the connection open when STARTTLS or the login
	// fails; the dialler keeps hold of it, so that it is closed anyway.
	var conns connections
	defer conns.closeAll()
	opts = append(opts, gomail.WithDialContextFunc(conns.dial))
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return fmt.Errorf("mail: client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("mail: send via %s: %w", s.cfg.SMTP, redact(err, s.cfg.Password))
	}
	// The address stays out of the log: which mail domain is enough to
	// follow a delivery problem.
	s.log.InfoContext(ctx, "mail sent", slog.String("to_domain", invites.AddressDomain(to)), slog.String("lang", textLang(lang)))
	return nil
}

// textLang is the language a mail for lang is written in.
func textLang(lang string) string {
	for _, l := range Languages() {
		if textFor(lang) == texts[l] {
			return l
		}
	}
	return "en"
}

// redact drops the password from an error, should a server echo it.
func redact(err error, password string) error {
	if password == "" || err == nil {
		return err
	}
	msg := err.Error()
	if !strings.Contains(msg, password) {
		return err
	}
	return errors.New("(message withheld: it contained the SMTP password)")
}

// connections dials the SMTP server and remembers what it dialled.
type connections struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (c *connections) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err == nil {
		c.mu.Lock()
		c.conns = append(c.conns, conn)
		c.mu.Unlock()
	}
	return conn, err
}

// closeAll closes every connection; those closed already say so, which
// does not matter.
func (c *connections) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		_ = conn.Close()
	}
}
