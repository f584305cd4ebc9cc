package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/commands"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
)

// op performs one request as worker w (using that worker's client) and
// returns nil when the expected reply arrived, errLost when none arrived
// before ctx's deadline, or a *failure when the reply was something else.
type op func(ctx context.Context, w int) error

// errLost means no reply arrived in time.
var errLost = errors.New("no reply in time")

// failure is a reply that came but was not the expected one (an error
// stanza, a refusal); the text says what came.
type failure struct{ text string }

func (f *failure) Error() string { return f.text }

// failf returns a failure.
func failf(format string, a ...any) error { return &failure{text: fmt.Sprintf(format, a...)} }

// classify turns a transport error into errLost when it is the request's
// own deadline, and leaves everything else (the run being stopped, a
// broken stream) as it is.
func classify(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errLost
	}
	return err
}

// chatInvite sends "invite" to the bot and expects the reply that carries
// the XEP-0401 URI and, when image is set (the bot has a web server), the
// QR code message after it: the round trip ends when the person has both,
// as a client that shows the image needs both.
func chatInvite(cs []*prosodytest.Client, bot jid.JID, image bool) op {
	return chatOp(cs, bot, "invite", func(body string) bool { return strings.Contains(body, "preauth=") }, image)
}

// chatHelp sends "help" to the bot and expects the command list.
func chatHelp(cs []*prosodytest.Client, bot jid.JID) op {
	return chatOp(cs, bot, "help", func(body string) bool { return strings.HasPrefix(body, "Commands:") }, false)
}

// chatOp sends body to bot from worker w's client in a thread of its own
// and waits for the reply in that thread (the bot copies a request's
// thread into its replies), which ok must accept, and with image for the
// QR message in the same thread. Replies to earlier requests that gave up
// are dropped unread: they answer someone else's question, so a late reply
// can neither fail nor satisfy this request.
func chatOp(cs []*prosodytest.Client, bot jid.JID, body string, ok func(string) bool, image bool) op {
	fromBot := func(m prosodytest.Message) bool { return m.From.Bare().Equal(bot) }
	return func(ctx context.Context, w int) error {
		c := cs[w]
		dropQueued(c, fromBot)
		id := newThread()
		// An error bounced by the server keeps the request's id; the
		// bot's replies carry its thread.
		answers := func(m prosodytest.Message) bool { return fromBot(m) && (m.ID == id || inThread(m, id)) }
		if err := sendInThread(ctx, c, bot, body, id); err != nil {
			return classify(ctx, err)
		}
		m, err := c.Receive(ctx, func(m prosodytest.Message) bool {
			return answers(m) && (m.Type == stanza.ErrorMessage || (m.Body != "" && !isQRMessage(m)))
		})
		if err != nil {
			return classify(ctx, err)
		}
		if m.Type == stanza.ErrorMessage {
			return failf("error message: %.200s", m.Inner)
		}
		if !ok(m.Body) {
			return failf("unexpected reply to %q: %.200q", body, m.Body)
		}
		if !image {
			return nil
		}
		if _, err := c.Receive(ctx, func(m prosodytest.Message) bool { return answers(m) && isQRMessage(m) }); err != nil {
			return classify(ctx, err)
		}
		return nil
	}
}

// sendInThread sends body to to as a chat message whose id and thread are
// both id.
func sendInThread(ctx context.Context, c *prosodytest.Client, to jid.JID, body, id string) error {
	msg := stanza.Message{To: to, Type: stanza.ChatMessage, ID: id}
	payload := xmlstream.MultiReader(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}}),
		xmlstream.Wrap(xmlstream.Token(xml.CharData(id)), xml.StartElement{Name: xml.Name{Local: "thread"}}),
	)
	return c.Session().Send(ctx, msg.Wrap(payload))
}

// inThread reports whether m carries the thread id.
func inThread(m prosodytest.Message, id string) bool {
	return strings.Contains(m.Inner, ">"+id+"</thread>")
}

// newThread returns a fresh thread id.
func newThread() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "ib-" + hex.EncodeToString(b[:])
}

// isQRMessage reports whether m is the bot's second message after an
// invite: the QR image as an XEP-0066 link.
func isQRMessage(m prosodytest.Message) bool {
	return strings.Contains(m.Inner, "jabber:x:oob")
}

// ended is a context that has ended, for taking only what is queued.
var ended = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// dropQueued removes what the bot sent earlier from the client's queue:
// replies to requests that were given up, which would otherwise pile up.
func dropQueued(c *prosodytest.Client, fromBot func(prosodytest.Message) bool) {
	for {
		if _, err := c.Receive(ended, fromBot); err != nil {
			return
		}
	}
}

// adhocInvite executes urn:xmpp:invite#create-account at to (the bot, or
// the server itself for the direct floor) and expects the completed
// result form with the invite URI.
func adhocInvite(cs []*prosodytest.Client, to jid.JID) op {
	cmd := commands.Command{JID: to, Node: invites.NodeCreateAccount, Action: "execute"}
	return func(ctx context.Context, w int) error {
		resp, r, err := cmd.ExecuteIQ(ctx, stanza.IQ{To: to}, nil, cs[w].Session())
		if err != nil {
			var se stanza.Error
			if errors.As(err, &se) {
				return failf("error reply: %v", se)
			}
			return classify(ctx, err)
		}
		defer r.Close()
		if resp.Status != "completed" {
			return failf("command status %q", resp.Status)
		}
		uri, err := formValue(r, "uri")
		if err != nil {
			return classify(ctx, err)
		}
		if !strings.Contains(uri, "preauth=") {
			return failf("no invite URI in the result form (uri %q)", uri)
		}
		return nil
	}
}

// formValue finds the data form in a command's payload and returns the
// value of its field v.
func formValue(r xml.TokenReader, v string) (string, error) {
	d := xml.NewTokenDecoder(r)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return "", failf("no data form in the command result")
		}
		if err != nil {
			return "", err
		}
		if start, ok := tok.(xml.StartElement); ok && start.Name.Local == "x" {
			var f dataform.Form
			if err := d.DecodeElement(&f, &start); err != nil {
				return "", err
			}
			return f.Value(v), nil
		}
	}
}

// serverPing sends an XEP-0199 ping to the server: the shortest round trip
// a client has, the floor under help.
func serverPing(cs []*prosodytest.Client, server jid.JID) op {
	return func(ctx context.Context, w int) error {
		if err := ping.Send(ctx, cs[w].Session(), server); err != nil {
			var se stanza.Error
			if errors.As(err, &se) {
				return failf("ping error: %v", se)
			}
			return classify(ctx, err)
		}
		return nil
	}
}
