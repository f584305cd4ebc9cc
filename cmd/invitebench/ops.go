package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

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
// the XEP-0401 URI. The round trip ends there: the QR code message the bot
// sends after it is not waited for.
func chatInvite(cs []*prosodytest.Client, bot jid.JID) op {
	return chatOp(cs, bot, "invite", func(body string) bool { return strings.Contains(body, "preauth=") })
}

// chatHelp sends "help" to the bot and expects the command list.
func chatHelp(cs []*prosodytest.Client, bot jid.JID) op {
	return chatOp(cs, bot, "help", func(body string) bool { return strings.HasPrefix(body, "Commands:") })
}

// chatOp sends body to bot from worker w's client and waits for the next
// reply with a body, which ok must accept.
func chatOp(cs []*prosodytest.Client, bot jid.JID, body string, ok func(string) bool) op {
	fromBot := func(m prosodytest.Message) bool { return m.From.Bare().Equal(bot) }
	return func(ctx context.Context, w int) error {
		c := cs[w]
		dropQRMessages(c, fromBot)
		if err := c.Send(ctx, bot, stanza.ChatMessage, body); err != nil {
			return classify(ctx, err)
		}
		m, err := c.Receive(ctx, func(m prosodytest.Message) bool {
			return fromBot(m) && (m.Type == stanza.ErrorMessage || (m.Body != "" && !isQRMessage(m)))
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
		return nil
	}
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

// dropQRMessages removes the QR code messages of earlier invites from the
// client's queue, which would otherwise grow by one per invite.
func dropQRMessages(c *prosodytest.Client, fromBot func(prosodytest.Message) bool) {
	for {
		if _, err := c.Receive(ended, func(m prosodytest.Message) bool { return fromBot(m) && isQRMessage(m) }); err != nil {
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
