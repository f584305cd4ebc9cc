package prosodytest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// ModuleFile is the repository's Prosody module, relative to the root.
const ModuleFile = "prosody/mod_invitebot.lua"

// ModuleDir returns the absolute path of the repository's prosody/ folder,
// the plugin_paths entry WithInvitebotModule uses. It is found from this
// source file, or else upwards from the working directory (go test runs in
// the package's folder).
func ModuleDir() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, ModuleFile)); err == nil {
				return filepath.Join(dir, filepath.Dir(ModuleFile)), nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("%s not found above %q", ModuleFile, starts)
}

// regTimeout bounds one RegistrationStream operation.
const regTimeout = 15 * time.Second

// RegistrationStream is an unauthenticated c2s stream secured with
// STARTTLS, on which a test sends XEP-0445 preauth and XEP-0077
// registrations one by one, the way a client following an invite URI does.
// Unlike ibr.Register, it keeps the stream open between them, which is what
// shows whether one token can create several accounts on one stream.
type RegistrationStream struct {
	srv   *Server
	sess  *xmpp.Session
	conn  net.Conn
	ended chan struct{}
}

// OpenRegistration opens a RegistrationStream to Domain and closes it in
// t.Cleanup.
func OpenRegistration(t testing.TB, srv *Server) *RegistrationStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", srv.C2SAddr)
	if err != nil {
		srv.fatalf(t, "registration stream: dial: %v", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sess, err := xmpp.NewClientSession(ctx, jid.MustParse(srv.Domain), conn,
		xmpp.StartTLS(srv.TLSConfig(srv.Domain)),
		informationalFeature("http://jabber.org/features/iq-register", "register"),
		informationalFeature("urn:xmpp:ibr-token:0", "register"),
		informationalFeature("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms"),
	)
	if !stop() || err != nil {
		conn.Close()
		srv.fatalf(t, "registration stream: negotiate: %v", err)
	}
	r := &RegistrationStream{srv: srv, sess: sess, conn: conn, ended: make(chan struct{})}
	go func() {
		defer close(r.ended)
		_ = sess.Serve(nil)
	}()
	t.Cleanup(func() {
		_ = sess.Close()
		select {
		case <-r.ended:
		case <-time.After(clientCloseGrace):
		}
		conn.Close()
		<-r.ended
	})
	return r
}

// informationalFeature lets mellium accept a stream feature it cannot
// negotiate, so that the session is returned secure and unauthenticated.
func informationalFeature(space, local string) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:      xml.Name{Space: space, Local: local},
		Necessary: xmpp.Secure,
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, interface{}, error) {
			return false, nil, d.Skip()
		},
	}
}

// Preauth presents token (XEP-0445). A refusal is returned as the server's
// stanza.Error.
func (r *RegistrationStream) Preauth(token string) error {
	return r.iq(xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: "urn:xmpp:pars:0", Local: "preauth"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "token"}, Value: token}},
	}))
}

// Register asks for username@Domain with password (XEP-0077). A refusal is
// returned as the server's stanza.Error.
func (r *RegistrationStream) Register(username, password string) error {
	field := func(name, value string) xml.TokenReader {
		return xmlstream.Wrap(xmlstream.Token(xml.CharData(value)), xml.StartElement{Name: xml.Name{Local: name}})
	}
	return r.iq(xmlstream.Wrap(
		xmlstream.MultiReader(field("username", username), field("password", password)),
		xml.StartElement{Name: xml.Name{Space: "jabber:iq:register", Local: "query"}},
	))
}

func (r *RegistrationStream) iq(payload xml.TokenReader) error {
	ctx, cancel := context.WithTimeout(context.Background(), regTimeout)
	defer cancel()
	err := r.sess.UnmarshalIQElement(ctx, payload, stanza.IQ{Type: stanza.SetIQ}, nil)
	var se stanza.Error
	if err != nil && !errors.As(err, &se) {
		return fmt.Errorf("%s: registration stream: %w", r.srv.tag(), err)
	}
	return err
}

// MintResetToken creates a password reset link for account the way an
// admin would (prosodyctl shell invite create_reset, Prosody 13) and
// returns its token. Prosody 0.12 has no password resets: there it returns
// an error.
func (s *Server) MintResetToken(account jid.JID) (string, error) {
	out, err := s.ctl("shell", "invite", "create_reset", account.Bare().String())
	if err != nil {
		return "", err
	}
	m := preauthRE.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no preauth token in prosodyctl output %q", out)
	}
	return m[1], nil
}

// moduleMinter is the localpart of the minter account of a server with
// mod_invitebot.
const moduleMinter = "invitebot-minter"

// nodeCreateAccount is XEP-0401's command that mints an account invite.
const nodeCreateAccount = "urn:xmpp:invite#create-account"

// mintAsMinter logs in as the minter account and runs the server's
// create-account command, the way a bot with xmpp.minter mints, and
// returns the token of the invite URI in the result form.
func (s *Server) mintAsMinter() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), regTimeout)
	defer cancel()
	c, err := Dial(ctx, s, s.minter, s.minterPass)
	if err != nil {
		return "", fmt.Errorf("%s: log in as the minter: %w", s.tag(), err)
	}
	defer c.Close()
	token, err := RunMintCommand(ctx, c.Session(), jid.MustParse(s.Domain), nodeCreateAccount)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s.tag(), err)
	}
	return token, nil
}

// RunMintCommand executes the one-stage ad-hoc command node at server
// over sess and returns the preauth token in the URI it answers with. It
// is how the bot mints (create-account), as the component or as an
// account.
func RunMintCommand(ctx context.Context, sess *xmpp.Session, server jid.JID, node string) (string, error) {
	payload := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: "http://jabber.org/protocol/commands", Local: "command"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "node"}, Value: node},
			{Name: xml.Name{Local: "action"}, Value: "execute"},
		},
	})
	r, err := sess.SendIQElement(ctx, payload, stanza.IQ{Type: stanza.SetIQ, To: server})
	if err != nil {
		return "", fmt.Errorf("run %s: %w", node, err)
	}
	defer r.Close()
	var text strings.Builder
	for {
		tok, err := r.Token()
		if err != nil {
			break
		}
		switch tok := tok.(type) {
		case xml.CharData:
			text.Write(tok)
			text.WriteByte(' ')
		case xml.StartElement:
			if tok.Name.Local == "error" {
				return "", fmt.Errorf("run %s: error reply", node)
			}
		}
	}
	m := preauthRE.FindStringSubmatch(text.String())
	if m == nil {
		return "", fmt.Errorf("run %s: no preauth token in the answer %q", node, text.String())
	}
	return m[1], nil
}
