package prosody

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/invites"
)

// This file is the bot's side of mod_invitebot (prosody/mod_invitebot.lua),
// the optional Prosody module that makes three promises hold at the server:
// a token creates one account whatever the client does, the server reports
// which account each token created, and the bot can delete a token. The
// bot finds out whether the module is loaded and uses it when it is;
// without it everything works as before, by polling and consumption.

// NSModule is mod_invitebot's namespace. Its IQs:
//
//	server -> component  set <registered token='T' jid='user@domain' at='XEP-0082'/>
//	component -> server  get <status/>      result <status version='1' queued='N'/>
//	component -> server  set <delete token='T'/>
//	component -> server  set <purge/>       result <purged count='N'/>
//	component -> server  get <minted since='unix'/>  result <minted><token created='unix'>T</token>…</minted>
//	component -> server  set <introduce jid='user@domain' contact='inviter@any'/>
//
// The module answers the component's IQs for the configured component JID
// only (forbidden for everybody else), and the bot trusts reports only from
// the domain itself.
const NSModule = "https://durare.org/ns/invitebot/0"

// moduleTimeout bounds one IQ to the module.
const moduleTimeout = 10 * time.Second

// Module talks to mod_invitebot on the home server over the component link.
// It is safe for concurrent use.
type Module struct {
	server, from jid.JID
	link         adhoc.IQSender
	log          *slog.Logger
	state        atomic.Int32
}

// NewModule returns a Module that asks server (the domain) as from (the
// component) over link. Its state is unknown until Detect runs.
func NewModule(server, from jid.JID, link adhoc.IQSender, log *slog.Logger) *Module {
	return &Module{server: server, from: from, link: link, log: log}
}

// State is what the last Detect (or failed request) found.
func (m *Module) State() invites.ModuleState { return invites.ModuleState(m.state.Load()) }

// Detect asks the server whether mod_invitebot is loaded, logs when the
// answer changes, and returns it. When the server cannot be asked (the link
// is down) the state stays as it was and the error says why. Asking also
// makes the module send the usage reports it holds for the bot.
func (m *Module) Detect(ctx context.Context) (invites.ModuleState, error) {
	ctx, cancel := context.WithTimeout(ctx, moduleTimeout)
	defer cancel()
	var status struct {
		Version string `xml:"version,attr"`
		Queued  string `xml:"queued,attr"`
	}
	err := m.iq(ctx, stanza.GetIQ, "status", &status)
	var se stanza.Error
	switch {
	case err == nil:
		m.set(invites.ModulePresent, slog.String("version", status.Version), slog.String("queued_reports", status.Queued))
	case errors.As(err, &se) && se.Condition == stanza.Forbidden:
		// Loaded, but configured for another component: unusable.
		m.log.ErrorContext(ctx, "mod_invitebot refuses this component: set invitebot_component under the domain's VirtualHost",
			slog.String("prosody_config", fmt.Sprintf("VirtualHost %q: invitebot_component = %q", m.server.String(), m.from.String())))
		m.set(invites.ModuleAbsent)
	case errors.As(err, &se):
		m.set(invites.ModuleAbsent)
	default:
		return m.State(), fmt.Errorf("detect mod_invitebot: %w", err)
	}
	return m.State(), nil
}

// set records st and logs the change, so the log says at start (and after
// every change) which of the bot's promises hold at the server.
func (m *Module) set(st invites.ModuleState, attrs ...slog.Attr) {
	if invites.ModuleState(m.state.Swap(int32(st))) == st {
		return
	}
	switch st {
	case invites.ModulePresent:
		m.log.LogAttrs(context.Background(), slog.LevelInfo,
			"prosody module mod_invitebot loaded: one account per token, registrations reported at once, tokens deleted at the server, new accounts introduced to their inviter",
			attrs...)
	case invites.ModuleAbsent:
		m.log.LogAttrs(context.Background(), slog.LevelInfo,
			"prosody module mod_invitebot not loaded: usage found by polling tokens, cancelled tokens consumed with a throwaway account, and one token can create several accounts on one stream (see docs/security.md, known limits)",
			attrs...)
	}
}

// Delete makes the server forget token: registrations with it fail from now
// on, on streams that passed preauth earlier too. Deleting a token the
// server does not hold succeeds.
func (m *Module) Delete(ctx context.Context, token string) error {
	ctx, cancel := context.WithTimeout(ctx, moduleTimeout)
	defer cancel()
	if err := m.iq(ctx, stanza.SetIQ, "delete", nil, xml.Attr{Name: xml.Name{Local: "token"}, Value: token}); err != nil {
		return fmt.Errorf("delete token at the server (mod_invitebot): %w", err)
	}
	return nil
}

// PurgeExpired has the server delete every token of the bot's that
// expired, and returns how many it deleted. Prosody never removes expired
// tokens by itself, and each one it holds makes minting slower. A module
// from before purge answers service-unavailable: that says nothing about
// whether the module is loaded, so it does not change State.
func (m *Module) PurgeExpired(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, moduleTimeout)
	defer cancel()
	var purged struct {
		Count int `xml:"count,attr"`
	}
	if err := m.exchange(ctx, stanza.SetIQ, "purge", &purged); err != nil {
		return 0, fmt.Errorf("purge expired tokens at the server (mod_invitebot): %w", err)
	}
	return purged.Count, nil
}

// MintedSince asks the server for the unexpired tokens the bot minted
// since since (at most the newest 500). A module from before this answers
// service-unavailable, which leaves State alone.
func (m *Module) MintedSince(ctx context.Context, since time.Time) ([]invites.ServerToken, error) {
	ctx, cancel := context.WithTimeout(ctx, moduleTimeout)
	defer cancel()
	var list struct {
		Tokens []struct {
			Created int64  `xml:"created,attr"`
			Token   string `xml:",chardata"`
		} `xml:"token"`
	}
	err := m.exchange(ctx, stanza.GetIQ, "minted", &list,
		xml.Attr{Name: xml.Name{Local: "since"}, Value: strconv.FormatInt(since.Unix(), 10)})
	if err != nil {
		return nil, fmt.Errorf("tokens minted since %s (mod_invitebot): %w", since.UTC().Format(time.RFC3339), err)
	}
	out := make([]invites.ServerToken, 0, len(list.Tokens))
	for _, t := range list.Tokens {
		out = append(out, invites.ServerToken{Token: t.Token, Created: time.Unix(t.Created, 0)})
	}
	return out, nil
}

// Introduce asks the server to put contact in account's roster with a
// subscription request sent to contact and contact's own request
// pre-approved. The server accepts it only for accounts that registered
// with an invite lately.
func (m *Module) Introduce(ctx context.Context, account, contact string) error {
	ctx, cancel := context.WithTimeout(ctx, moduleTimeout)
	defer cancel()
	err := m.iq(ctx, stanza.SetIQ, "introduce", nil,
		xml.Attr{Name: xml.Name{Local: "jid"}, Value: account},
		xml.Attr{Name: xml.Name{Local: "contact"}, Value: contact})
	if err != nil {
		return fmt.Errorf("introduce %s to %s (mod_invitebot): %w", account, contact, err)
	}
	return nil
}

// iq sends one IQ with an empty <local xmlns=NSModule/> payload carrying
// attrs, and decodes the answer's payload into v when v is not nil. An
// error answer is returned as a stanza.Error; one saying the server has no
// such handler marks the module absent.
func (m *Module) iq(ctx context.Context, typ stanza.IQType, local string, v any, attrs ...xml.Attr) error {
	err := m.exchange(ctx, typ, local, v, attrs...)
	var se stanza.Error
	if errors.As(err, &se) && (se.Condition == stanza.ServiceUnavailable || se.Condition == stanza.FeatureNotImplemented) {
		m.set(invites.ModuleAbsent) // unloaded while the link stayed up
	}
	return err
}

// exchange is iq without its conclusion about the module's state.
func (m *Module) exchange(ctx context.Context, typ stanza.IQType, local string, v any, attrs ...xml.Attr) error {
	payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSModule, Local: local}, Attr: attrs})
	r, err := m.link.SendIQElement(ctx, payload, stanza.IQ{Type: typ, To: m.server, From: m.from})
	if err != nil {
		return err
	}
	defer r.Close()
	tok, err := r.Token()
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return errors.New("reply is not an IQ")
	}
	if _, err := stanza.UnmarshalIQError(r, start); err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	for {
		tok, err := r.Token()
		if err != nil {
			return nil // an empty result is a result
		}
		if el, ok := tok.(xml.StartElement); ok {
			return xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(el), r)).Decode(v)
		}
	}
}

// nameReport is mod_invitebot's usage report: the server says which
// account an invite token created, as soon as it is registered.
var nameReport = xml.Name{Space: NSModule, Local: "registered"}

// ReadReport reads a usage report from the payload of an IQ set the server
// sent; ok is false when the payload is not one. The attributes are taken
// as they are: the service checks the report.
func (m *Module) ReadReport(payload xml.StartElement) (r invites.Report, ok bool) {
	if payload.Name != nameReport {
		return invites.Report{}, false
	}
	for _, a := range payload.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "token":
			r.Token = a.Value
		case "jid":
			r.Account = a.Value
		case "at":
			if at, err := time.Parse(time.RFC3339, a.Value); err == nil {
				r.At = at
			}
		}
	}
	return r, true
}
