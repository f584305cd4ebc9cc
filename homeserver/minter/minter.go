// Package minter keeps the minter account logged in: a local account of
// the server whose role lets it run the server's invite commands, so that
// the component itself needs no rights there. Its session is the IQ sender
// the server's package mints with.
package minter

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/internal/reconnect"
	"durare.org/invitebot/invites"
)

// Session tunables. Tests shorten the timing through Config.
const (
	// minterLoginTimeout bounds dialling, STARTTLS, SASL and resource
	// binding, so a server that accepts TCP and stays silent cannot stall
	// reconnection.
	minterLoginTimeout = 15 * time.Second
	// minterIQTimeout bounds one IQ on the session from its write to its
	// answer, whatever its caller's context says (see SendIQElement). It
	// is longer than any caller waits, so it only ever ends a write that
	// hangs or frees a goroutine whose caller gave up.
	minterIQTimeout = 30 * time.Second
	// minterCheckTimeout bounds the check, after each login, of whether
	// the account may run the invite command.
	minterCheckTimeout = 15 * time.Second
)

// ErrDown is returned when an IQ must go out while the minter account is
// not logged in. The service reads it as the server being unreachable.
var ErrDown = fmt.Errorf("minter session is down: %w", invites.ErrServerUnreachable)

// ErrRefused means the server refused the minter account's
// credentials (wrong password, no such account, account disabled). Run
// gives up on it, as the Link does on a rejected secret: retrying cannot
// help until someone changes a configuration.
var ErrRefused = errors.New("the server refused the minter account's login")

// permanentSASL are the SASL failure conditions (RFC 6120 6.5) that only a
// change of configuration or account cures; others, temporary-auth-failure
// above all, are retried.
var permanentSASL = map[string]bool{"not-authorized": true, "account-disabled": true, "credentials-expired": true}

// Config says as which account, where and how the minter logs in.
type Config struct {
	// Account is the bare JID of the local account that runs the server's
	// invite commands (xmpp.minter). Its domain is where the commands go.
	Account jid.JID
	// Password is the account's password. It is only handed to SCRAM and
	// never logged.
	Password string
	// Addr is host:port of the server's c2s listener.
	Addr string
	// TLS verifies the server's certificate (STARTTLS is required). An
	// empty ServerName means the account's domain.
	TLS *tls.Config

	// PingInterval, PingTimeout, MinBackoff and MaxBackoff default to the
	// component link's when zero: the two connections are kept alike.
	PingInterval, PingTimeout, MinBackoff, MaxBackoff time.Duration

	// OnUp, when set, is called after each successful login (what the
	// server offers is detected again then; tests).
	OnUp func()
	// OnDown, when set, is called with what ended each login attempt or
	// session that failed, before Run waits to try again (a check that
	// must stop at the first failure instead of retrying).
	OnDown func(error)

	// CheckRights, when set, is run after each login: it asks the server
	// what the account may run, over link, and logs what the operator must
	// change. Each server's package provides one (prosody.CheckRights,
	// ejabberd.CheckRights); nil checks nothing.
	CheckRights func(ctx context.Context, log *slog.Logger, account jid.JID, link adhoc.IQSender)
}

// Session keeps a c2s session logged in as the minter account, the way the
// component Link keeps its link: it dials, pings, and logs in again with
// exponential backoff and jitter after any drop, and gives up only when
// the server refuses the account's credentials. Through SendIQElement it
// is the IQ sender the server's Issuer mints with, so the server's
// commands run with the account's rights and the component needs none.
type Session struct {
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	cur *loginSession // nil while logged out

	reconnects atomic.Uint64
}

// loginSession is one logged-in session.
type loginSession struct {
	sess *xmpp.Session
	done chan struct{} // closed when the session has ended
}

// New returns a Session; Run starts it.
func New(cfg Config, log *slog.Logger) *Session {
	if cfg.PingInterval == 0 {
		cfg.PingInterval = reconnect.DefaultPingInterval
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = reconnect.DefaultPingTimeout
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = reconnect.DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = reconnect.DefaultMaxBackoff
	}
	cfg.Account = cfg.Account.Bare()
	return &Session{cfg: cfg, log: log}
}

// Account returns the minter account's bare JID.
func (m *Session) Account() jid.JID { return m.cfg.Account }

// Up reports whether the account is logged in right now.
func (m *Session) Up() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur != nil
}

// Reconnects counts the logins after the first one.
func (m *Session) Reconnects() uint64 { return m.reconnects.Load() }

// Run keeps the account logged in until ctx ends, then closes the stream
// gracefully. It returns nil on a clean stop.
func (m *Session) Run(ctx context.Context) error {
	loop := reconnect.Loop{
		Backoff:   reconnect.Backoff{Min: m.cfg.MinBackoff, Max: m.cfg.MaxBackoff},
		Log:       m.log,
		What:      "minter session",
		Attrs:     []slog.Attr{slog.String("minter", m.cfg.Account.String())},
		Permanent: func(err error) bool { return errors.Is(err, ErrRefused) },
	}
	return loop.Run(ctx, func(ctx context.Context, again bool) error {
		err := m.session(ctx, again)
		if err != nil && ctx.Err() == nil && m.cfg.OnDown != nil {
			m.cfg.OnDown(err)
		}
		return err
	})
}

// session runs one session from login to drop.
func (m *Session) session(ctx context.Context, again bool) error {
	conn, sess, err := m.dial(ctx)
	if err != nil {
		return err
	}
	st := &loginSession{sess: sess, done: make(chan struct{})}
	m.mu.Lock()
	m.cur = st
	m.mu.Unlock()
	sctx, cancel := context.WithCancel(ctx)
	var checks sync.WaitGroup
	defer func() {
		cancel()
		m.mu.Lock()
		m.cur = nil
		m.mu.Unlock()
		close(st.done)
		conn.Close()
		// Nothing of this session logs after Run returned.
		checks.Wait()
	}()
	if again {
		m.reconnects.Add(1)
	}
	m.log.InfoContext(ctx, "minter session up", slog.String("minter", m.cfg.Account.String()),
		slog.String("server", m.cfg.Addr), slog.String("bound", sess.LocalAddr().String()))
	if m.cfg.OnUp != nil {
		m.cfg.OnUp()
	}

	// Not inline: the check waits for an answer, which needs the keepalive
	// below free to notice a dead session meanwhile. Its answer waits in
	// the stream until Serve reads it.
	checks.Go(func() { m.checkRights(sctx) })
	keep := reconnect.Keepalive{Log: m.log, What: "minter session", Interval: m.cfg.PingInterval, Ping: m.ping}
	// A nil handler answers IQs from others with service-unavailable and
	// drops everything else: the account only ever asks the server.
	return keep.Serve(ctx, conn, sess, nil)
}

// dial connects, requires TLS, logs in with SCRAM and binds a resource.
// The server picks the resource, so a second bot with the same account
// does not kick the first out.
func (m *Session) dial(ctx context.Context) (net.Conn, *xmpp.Session, error) {
	// The password goes to SCRAM only and into no error.
	conn, sess, err := reconnect.Dial(ctx, m.cfg.Addr, minterLoginTimeout, func(ctx context.Context, conn net.Conn) (*xmpp.Session, error) {
		return xmpp.NewClientSession(ctx, m.cfg.Account, conn,
			xmpp.StartTLS(m.tlsConfig()),
			minterSASL(m.cfg.Password),
			xmpp.BindResource(),
		)
	})
	var refused *reconnect.HandshakeError
	switch {
	case errors.As(err, &refused) && errors.Is(err, ErrRefused):
		return nil, nil, fmt.Errorf("log in as %s: %w (check xmpp.minter_password, and that the account exists: prosodyctl adduser %s)",
			m.cfg.Account, err, m.cfg.Account)
	case errors.As(err, &refused):
		return nil, nil, fmt.Errorf("log in as %s: %w", m.cfg.Account, err)
	case err != nil:
		return nil, nil, err
	}
	// mellium sends STARTTLS even when the server does not offer it; this
	// makes sure nothing, the password least of all, went in the clear.
	if sess.State()&xmpp.Secure == 0 || !sess.ConnectionState().HandshakeComplete {
		conn.Close()
		return nil, nil, fmt.Errorf("log in as %s: the stream to %s is not encrypted", m.cfg.Account, m.cfg.Addr)
	}
	return conn, sess, nil
}

// tlsConfig is cfg.TLS with the defaults filled in, without changing it.
func (m *Session) tlsConfig() *tls.Config {
	tc := &tls.Config{}
	if m.cfg.TLS != nil {
		tc = m.cfg.TLS.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = m.cfg.Account.Domainpart()
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	return tc
}

// minterSASL logs in with SCRAM only, so the password never crosses the
// wire even inside TLS, and marks a refusal of the credentials with
// ErrRefused.
func minterSASL(password string) xmpp.StreamFeature {
	f := xmpp.SASL("", password, sasl.ScramSha256Plus, sasl.ScramSha1Plus, sasl.ScramSha256, sasl.ScramSha1)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if cond := saslCondition(err); permanentSASL[cond] {
			err = fmt.Errorf("%w (%s): %w", ErrRefused, cond, err)
		}
		return mask, rw, err
	}
	return f
}

// saslCondition returns the condition of the SASL failure err is, "" if
// it is none. mellium returns the server's <failure/> as a value of an
// internal type whose Error() gives the server's text instead of the
// condition, so the condition is read from its exported field.
func saslCondition(err error) string {
	if err == nil {
		return ""
	}
	v := reflect.ValueOf(err)
	if v.Kind() != reflect.Struct {
		return ""
	}
	f := v.FieldByName("Condition")
	if !f.IsValid() || !f.CanInterface() {
		return ""
	}
	if c, ok := f.Interface().(fmt.Stringer); ok {
		return c.String()
	}
	return ""
}

// ping proves the session carries stanzas both ways: any answer counts.
func (m *Session) ping(ctx context.Context) error {
	return reconnect.Ping(ctx, m, stanza.IQ{To: m.cfg.Account.Domain()}, m.cfg.PingTimeout)
}

func (m *Session) current() (*loginSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur == nil {
		return nil, ErrDown
	}
	return m.cur, nil
}

// SendIQElement sends an IQ as the minter account and waits for the
// answer until ctx ends. It is an adhoc.IQSender. The IQ's from is
// dropped: the server stamps a client's stanzas with the session's JID.
func (m *Session) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	st, err := m.current()
	if err != nil {
		return nil, err
	}
	iq.From = jid.JID{}
	type answer struct {
		r   xmlstream.TokenReadCloser
		err error
	}
	answers := make(chan answer, 1)
	go func() {
		// mellium arms the shared connection's write deadline from the
		// context given to SendIQ while it writes; a caller's context
		// ending then would put the deadline in the past under whatever
		// write is on the wire, and mellium's buffered encoder would fail
		// every later write (the pitfall the Link's writer avoids). So the
		// IQ gets a context of its own, and the caller only stops waiting.
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), minterIQTimeout)
		defer cancel()
		r, err := st.sess.SendIQElement(ictx, payload, iq)
		answers <- answer{r, err}
	}()
	giveUp := func() {
		// An answer that still comes holds the read loop until closed.
		go func() {
			if a := <-answers; a.r != nil {
				a.r.Close()
			}
		}()
	}
	select {
	case a := <-answers:
		return a.r, a.err
	case <-st.done:
		giveUp()
		return nil, fmt.Errorf("%w: it dropped before the answer from %s came", ErrDown, iq.To)
	case <-ctx.Done():
		giveUp()
		return nil, fmt.Errorf("await answer from %s: %w", iq.To, ctx.Err())
	}
}

// checkRights runs Config.CheckRights after a login: the operator learns
// what the server's configuration lacks at start, not from the first
// inviter turned away.
func (m *Session) checkRights(ctx context.Context) {
	if m.cfg.CheckRights == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, minterCheckTimeout)
	defer cancel()
	m.cfg.CheckRights(ctx, m.log, m.cfg.Account, m)
}
