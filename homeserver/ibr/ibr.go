// Package ibr registers accounts on the home server with an invite token, the
// way a client following an XEP-0401 preauth URI would: XEP-0445 preauth, then
// XEP-0077 In-Band Registration, on a client-to-server stream secured with
// STARTTLS.
//
// The bot needs this for three things the server offers no other API for:
// registering an account from the browser form, consuming a token it revoked
// (by registering a throwaway account and removing it), and checking whether
// tokens it handed out are still unused.
//
// Nothing in this package logs; errors never contain passwords or tokens.
package ibr

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// DefaultTimeout bounds one operation (dial, TLS, the IQs and closing the
// stream) when Config.Timeout is zero. A browser is waiting on the other end
// of Register, so it is short enough to answer within a page load.
const DefaultTimeout = 20 * time.Second

// closeGrace is how long to wait for the server to end its side of the stream
// after we ended ours, before dropping the TCP connection anyway. Waiting at
// all lets the server finish processing what we sent, e.g. an account removal.
const closeGrace = 2 * time.Second

// XML namespaces used on the wire.
const (
	nsPreauth         = "urn:xmpp:pars:0"                        // XEP-0379/0445 preauth payload
	nsIBRToken        = "urn:xmpp:ibr-token:0"                   // XEP-0445 stream feature
	nsRegister        = "jabber:iq:register"                     // XEP-0077 payload
	nsRegisterFeature = "http://jabber.org/features/iq-register" // XEP-0077 stream feature
	nsSASL            = "urn:ietf:params:xml:ns:xmpp-sasl"
)

// Config says how to reach the server's client port.
type Config struct {
	// Addr is host:port of the server's c2s listener, e.g. 127.0.0.1:5222.
	// It is dialled directly: no SRV lookup, the operator knows where the server is.
	Addr string

	// Domain is the XMPP domain the accounts live on (the stream "to").
	Domain string

	// TLS configures STARTTLS, which is always required: registration sends a
	// password, so a server that does not offer TLS is refused. A nil TLS uses
	// the system roots; an empty ServerName defaults to Domain.
	TLS *tls.Config

	// Timeout bounds each operation; zero means DefaultTimeout. A deadline on
	// the caller's context that is earlier still wins.
	Timeout time.Duration
}

// Errors callers can act on, matched with errors.Is. The returned errors wrap
// them together with the server's stanza error (a stanza.Error) when there is
// one.
var (
	// ErrTokenRejected means the server refused the preauth token: it is
	// unknown, already used, or expired. Prosody answers forbidden, XEP-0445
	// says item-not-found.
	ErrTokenRejected = errors.New("ibr: invite token rejected")

	// ErrConflict means the username is already taken (XEP-0077 conflict).
	ErrConflict = errors.New("ibr: username already registered")

	// ErrNotAcceptable means the server refused the username or password
	// (not-acceptable, bad-request, jid-malformed or policy-violation), or
	// could not create that account (feature-not-implemented: Prosody's
	// "Error saving to storage" for a name whose file name is too long).
	// The error text includes the server's explanation when it gave one.
	ErrNotAcceptable = errors.New("ibr: username or password not acceptable")

	// ErrTokenBound means the server accepts the token for one username
	// only, the one it was made for, and refused another: Prosody 13.0.8
	// answers so for a password reset token ("Incorrect username for
	// password reset") and for an invite made for one username. Such a
	// token cannot be used up by registering some other account. It wraps
	// ErrNotAcceptable: to the person typing a name, it is a name refused.
	ErrTokenBound = fmt.Errorf("%w: the token registers only the username it was made for", ErrNotAcceptable)

	// ErrTLS means no secure stream could be set up: the server offers no
	// STARTTLS, refuses it, or its certificate does not verify. It points at
	// configuration (CA, server name, port), not at the user's input.
	ErrTLS = errors.New("ibr: secure connection failed")

	// ErrUnsupported means the server does not advertise what the operation
	// needs after TLS: XEP-0445 tokens (Prosody: mod_invites_register) or
	// XEP-0077 registration.
	ErrUnsupported = errors.New("ibr: server does not offer invite registration")

	// ErrAuthFailed means Remove could not log in as the account.
	ErrAuthFailed = errors.New("ibr: authentication failed")
)

// CheckToken reports whether token would currently be accepted for
// registration: nil when it is valid, an error wrapping ErrTokenRejected when
// it is unknown, used or expired, any other error when the question could not
// be asked. Checking does not consume the token.
func CheckToken(ctx context.Context, cfg Config, token string) error {
	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()
	c, err := DialChecker(ctx, cfg)
	if err != nil {
		return err
	}
	// The answer is in once Check returns; a close error changes nothing.
	defer func() { _ = c.Close() }()
	return c.Check(ctx, token)
}

// Register creates the account username@Domain with password, using token as
// the invitation: the preauth IQ and the XEP-0077 set go out on the same
// stream, because Prosody remembers the validated token per stream. It returns
// the new bare JID. The server consumes the token only when the account is
// created; after ErrConflict or ErrNotAcceptable it stays valid (measured on
// Prosody 0.12), so the user can pick another name.
//
// No XEP-0077 get precedes the set: Prosody accepts the legacy username and
// password fields without one, and a server that wants more fields answers
// not-acceptable, which surfaces as ErrNotAcceptable with its text.
func Register(ctx context.Context, cfg Config, token, username, password string) (jid.JID, error) {
	if token == "" {
		return jid.JID{}, fmt.Errorf("register: %w: empty token", ErrTokenRejected)
	}
	// Prepare the JID first: a username that cannot be a localpart is the
	// user's mistake and needs no round trip.
	account, err := jid.New(username, cfg.Domain, "")
	if err != nil || username == "" {
		return jid.JID{}, fmt.Errorf("register: %w: invalid username", ErrNotAcceptable)
	}
	if password == "" {
		return jid.JID{}, fmt.Errorf("register: %w: empty password", ErrNotAcceptable)
	}

	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()

	s, err := dialUnauthenticated(ctx, cfg)
	if err != nil {
		return jid.JID{}, fmt.Errorf("register: %w", err)
	}
	// Once the server has answered, the outcome is decided; failing to end
	// the stream politely must not turn a created account into an error.
	defer func() { _ = s.close() }()
	if !s.hasFeature(nsRegisterFeature) {
		return jid.JID{}, fmt.Errorf("register: %w: no XEP-0077 stream feature", ErrUnsupported)
	}

	if err := s.preauth(ctx, token); err != nil {
		return jid.JID{}, fmt.Errorf("register: %w", err)
	}

	query := xmlstream.Wrap(
		xmlstream.MultiReader(
			textElement("username", username),
			textElement("password", password),
		),
		xml.StartElement{Name: xml.Name{Space: nsRegister, Local: "query"}},
	)
	err = s.iq(ctx, stanza.SetIQ, query)
	var serr stanza.Error
	switch {
	case err == nil:
		return account, nil
	case !errors.As(err, &serr):
		return jid.JID{}, fmt.Errorf("register: %w", err)
	case serr.Condition == stanza.Conflict:
		return jid.JID{}, fmt.Errorf("register: %w: %w", ErrConflict, serr)
	case serr.Condition == stanza.Forbidden:
		// mod_invitebot refuses a token that was used or deleted after
		// this stream's preauth with the answer preauth itself gives.
		return jid.JID{}, fmt.Errorf("register: %w (%s): %w", ErrTokenRejected, serr.Condition, serr)
	case serr.Condition == stanza.NotAcceptable && boundTokenRefusal(serr):
		return jid.JID{}, fmt.Errorf("register: %w (%s): %w", ErrTokenBound, serr.Condition, serr)
	case serr.Condition == stanza.NotAcceptable, serr.Condition == stanza.BadRequest,
		serr.Condition == stanza.JIDMalformed, serr.Condition == stanza.PolicyViolation,
		// Prosody answers this when its user manager cannot create the
		// account, which for a valid name means storage refused the name
		// (measured on 0.12: a file name past 255 bytes). No account
		// exists and the token is kept, so another name may work.
		serr.Condition == stanza.FeatureNotImplemented:
		return jid.JID{}, fmt.Errorf("register: %w (%s): %w", ErrNotAcceptable, serr.Condition, serr)
	default:
		return jid.JID{}, fmt.Errorf("register: server refused (%s): %w", serr.Condition, serr)
	}
}

// boundTokenRefusals are the texts with which Prosody's
// mod_invites_register refuses a username a token was not made for
// (13.0.8; 13.0.1 lets a reset token register any name). They are the
// server's answer to read, whatever its version number says.
var boundTokenRefusals = []string{
	"Incorrect username for password reset",
	"The chosen username is not valid with this invitation",
}

// boundTokenRefusal reports whether serr is the server refusing a username
// because the token belongs to another one.
func boundTokenRefusal(serr stanza.Error) bool {
	for _, text := range serr.Text {
		for _, want := range boundTokenRefusals {
			if strings.Contains(text, want) {
				return true
			}
		}
	}
	return false
}

// BoundJID logs in as account with password (SCRAM over TLS) and returns
// the bare JID the server binds, which is the account's real address:
// servers map usernames their own way (Prosody's nodeprep makes straße
// into strasse, and logs "straße" in as strasse too), so after a
// registration this is how to learn which account the server created.
// An error wrapping ErrAuthFailed means the login was refused.
func BoundJID(ctx context.Context, cfg Config, account jid.JID, password string) (jid.JID, error) {
	if account.Localpart() == "" || account.Domainpart() != cfg.Domain {
		return jid.JID{}, fmt.Errorf("log in: account %q is not an account on %s", account, cfg.Domain)
	}
	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()
	s, err := dialAuthenticated(ctx, cfg, account.Bare(), password)
	if err != nil {
		return jid.JID{}, fmt.Errorf("log in as %s: %w", account.Bare(), err)
	}
	// The answer is in once the stream is bound.
	defer func() { _ = s.close() }()
	bound := s.sess.LocalAddr().Bare()
	if bound.Localpart() == "" || bound.Domainpart() != cfg.Domain {
		return jid.JID{}, fmt.Errorf("log in as %s: server bound %q", account.Bare(), bound)
	}
	return bound, nil
}

// Remove logs in as account (SCRAM over TLS) and deletes it with XEP-0077
// <remove/>. The bot uses it to clean up an account it registered only to
// burn a revoked token. An error wrapping ErrAuthFailed means the password
// was wrong or the account does not exist.
func Remove(ctx context.Context, cfg Config, account jid.JID, password string) error {
	if account.Localpart() == "" {
		return fmt.Errorf("remove: account %q has no localpart", account)
	}
	if account.Domainpart() != cfg.Domain {
		return fmt.Errorf("remove: account %s is not on %s", account, cfg.Domain)
	}

	ctx, cancel := withTimeout(ctx, cfg)
	defer cancel()

	s, err := dialAuthenticated(ctx, cfg, account.Bare(), password)
	if err != nil {
		return fmt.Errorf("remove %s: %w", account.Bare(), err)
	}
	defer func() {
		// The server ends the stream itself once the account is gone (Prosody
		// with a not-authorized stream error); that is expected, not a failure.
		_ = s.close()
	}()

	query := xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "remove"}}),
		xml.StartElement{Name: xml.Name{Space: nsRegister, Local: "query"}},
	)
	if err := s.iq(ctx, stanza.SetIQ, query); err != nil {
		return fmt.Errorf("remove %s: %w", account.Bare(), err)
	}
	return nil
}

// withTimeout applies cfg's per-operation bound to ctx.
func withTimeout(ctx context.Context, cfg Config) (context.Context, context.CancelFunc) {
	d := cfg.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	return context.WithTimeout(ctx, d)
}

// textElement is <name>text</name> in the enclosing element's namespace.
func textElement(name, text string) xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Token(xml.CharData(text)),
		xml.StartElement{Name: xml.Name{Local: name}},
	)
}
