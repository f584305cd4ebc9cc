package invites

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/store"
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
//	component -> server  set <introduce jid='user@domain' contact='inviter@any'/>
//
// The module answers the component's IQs for the configured component JID
// only (forbidden for everybody else), and the bot trusts reports only from
// the domain itself.
const NSModule = "https://durare.org/ns/invitebot/0"

// Tunables for the module.
const (
	// moduleTimeout bounds one IQ to the module.
	moduleTimeout = 10 * time.Second
	// moduleSafetyNet is how often pending tokens are still checked over
	// c2s while the module reports usage: a report lost while Prosody was
	// down must not leave an invite pending forever.
	moduleSafetyNet = 15 * time.Minute
)

// ModuleState says whether the server runs mod_invitebot.
type ModuleState int32

// Module states.
const (
	// ModuleUnknown: not asked yet, or the server could not be asked.
	ModuleUnknown ModuleState = iota
	// ModuleAbsent: the server does not answer the module's IQs (or the
	// module refuses this component); the bot polls and consumes tokens.
	ModuleAbsent
	// ModulePresent: the module answers; the bot uses it.
	ModulePresent
)

// String names the state for logs and /healthz.
func (m ModuleState) String() string {
	switch m {
	case ModuleAbsent:
		return "not loaded"
	case ModulePresent:
		return "loaded"
	default:
		return "unknown"
	}
}

// ErrBadReport means a usage report is malformed or names an account on
// another domain; sending it again will not help.
var ErrBadReport = errors.New("malformed usage report")

// Module talks to mod_invitebot on the home server over the component link.
// It is safe for concurrent use.
type Module struct {
	server, from jid.JID
	link         IQSender
	log          *slog.Logger
	state        atomic.Int32
}

// NewModule returns a Module that asks server (the domain) as from (the
// component) over link. Its state is unknown until Detect runs.
func NewModule(server, from jid.JID, link IQSender, log *slog.Logger) *Module {
	return &Module{server: server, from: from, link: link, log: log}
}

// State is what the last Detect (or failed request) found.
func (m *Module) State() ModuleState { return ModuleState(m.state.Load()) }

// Detect asks the server whether mod_invitebot is loaded, logs when the
// answer changes, and returns it. When the server cannot be asked (the link
// is down) the state stays as it was and the error says why. Asking also
// makes the module send the usage reports it holds for the bot.
func (m *Module) Detect(ctx context.Context) (ModuleState, error) {
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
		m.set(ModulePresent, slog.String("version", status.Version), slog.String("queued_reports", status.Queued))
	case errors.As(err, &se) && se.Condition == stanza.Forbidden:
		// Loaded, but configured for another component: unusable.
		m.log.ErrorContext(ctx, "mod_invitebot refuses this component: set invitebot_component under the domain's VirtualHost",
			slog.String("prosody_config", fmt.Sprintf("VirtualHost %q: invitebot_component = %q", m.server.String(), m.from.String())))
		m.set(ModuleAbsent)
	case errors.As(err, &se):
		m.set(ModuleAbsent)
	default:
		return m.State(), fmt.Errorf("detect mod_invitebot: %w", err)
	}
	return m.State(), nil
}

// set records st and logs the change, so the log says at start (and after
// every change) which of the bot's promises hold at the server.
func (m *Module) set(st ModuleState, attrs ...slog.Attr) {
	if ModuleState(m.state.Swap(int32(st))) == st {
		return
	}
	switch st {
	case ModulePresent:
		m.log.LogAttrs(context.Background(), slog.LevelInfo,
			"prosody module mod_invitebot loaded: one account per token, registrations reported at once, tokens deleted at the server, new accounts introduced to their inviter",
			attrs...)
	case ModuleAbsent:
		m.log.LogAttrs(context.Background(), slog.LevelInfo,
			"prosody module mod_invitebot not loaded: usage found by polling tokens, cancelled tokens consumed with a throwaway account, and one token can create several accounts on one stream (see README, known limits)",
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
		var se stanza.Error
		if errors.As(err, &se) && (se.Condition == stanza.ServiceUnavailable || se.Condition == stanza.FeatureNotImplemented) {
			m.set(ModuleAbsent) // unloaded while the link stayed up
		}
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

// revocation is how a token is revoked right now: deleted through
// mod_invitebot while the server runs it, else the Issuer's own way
// (consumption for Prosody). It is asked per revocation, so loading or
// unloading the module changes it without a restart.
func (s *Service) revocation() Revocation {
	if s.modulePresent() {
		return RevokeByDeletion
	}
	if r, ok := s.issuer.(Revoker); ok {
		return r.Revocation()
	}
	return RevokeUnsupported
}

// deleteToken deletes token at the server: through mod_invitebot while it
// is loaded, else through the Issuer when it can.
func (s *Service) deleteToken(ctx context.Context, token string) error {
	if s.modulePresent() {
		return s.srvmod.m.Delete(ctx, token)
	}
	if d, ok := s.issuer.(Deleter); ok {
		return d.Delete(ctx, token)
	}
	return errors.New("the server cannot delete tokens (mod_invitebot gone?); the next try revokes it another way")
}

// serverModule is the service's use of mod_invitebot.
type serverModule struct {
	// m is nil when the bot never asks for the module (tests, other
	// servers).
	m *Module
	// introduce makes new accounts and their inviters acquainted
	// (invites.introduce).
	introduce bool

	mu       sync.Mutex
	lastPoll time.Time // guarded by mu
}

func newServerModule(o Options) *serverModule {
	return &serverModule{m: o.Module, introduce: o.Introduce}
}

// ServerModule says whether the server runs mod_invitebot, as far as the
// bot knows.
func (s *Service) ServerModule() ModuleState {
	if s.srvmod.m == nil {
		return ModuleAbsent
	}
	return s.srvmod.m.State()
}

func (s *Service) modulePresent() bool { return s.ServerModule() == ModulePresent }

// refreshModule asks the server again whether the module is loaded: an
// admin may load or unload it with a reload that leaves the link up.
func (s *Service) refreshModule(ctx context.Context) {
	if s.srvmod.m == nil {
		return
	}
	if _, err := s.srvmod.m.Detect(ctx); err != nil {
		s.log.DebugContext(ctx, "could not ask for mod_invitebot", slog.Any("err", err))
	}
}

// pollDue reports whether this usage check should ask the server about
// every pending token: always without the module, which is then the only
// way to learn of usage, and every moduleSafetyNet with it.
func (s *Service) pollDue() bool {
	if !s.modulePresent() {
		return true
	}
	sm := s.srvmod
	sm.mu.Lock()
	defer sm.mu.Unlock()
	now := s.now()
	if !sm.lastPoll.IsZero() && now.Sub(sm.lastPoll) < moduleSafetyNet {
		return false
	}
	sm.lastPoll = now
	return true
}

// Report is what mod_invitebot tells the bot about one registration.
type Report struct {
	// Token is the invite token the account was registered with.
	Token string
	// Account is the new account's bare JID.
	Account string
	// At is when the server registered it; zero if it did not say.
	At time.Time
}

// RecordReport records the account a token created, as the server reported
// it: the invite becomes used by that account (also when usage tracking had
// already marked it used without knowing by whom), the inviter is told at
// once, and the two are introduced. Reports about tokens the bot did not
// hand out are ignored. It returns ErrBadReport for a report that cannot be
// right, and an error when it could not be recorded (the server then sends
// it again).
func (s *Service) RecordReport(ctx context.Context, r Report) error {
	account, err := jid.Parse(r.Account)
	if err != nil || r.Token == "" || account.Localpart() == "" || account.Resourcepart() != "" ||
		account.Domainpart() != s.domain {
		return fmt.Errorf("%w: account %q on %s", ErrBadReport, r.Account, s.domain)
	}
	acct := account.String()
	inv, err := s.store.InviteByToken(ctx, r.Token)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.log.DebugContext(ctx, "server reported a registration with a token the bot did not hand out",
			slog.String("account", acct), slog.String("token", RedactToken(r.Token)))
		return nil
	case err != nil:
		return fmt.Errorf("record report: %w", err)
	}
	// A browser registration, cancel or usage check of this invite
	// finishes first (a browser registration records this very account);
	// then the invite is read again.
	unlock, err := s.lockInvite(ctx, inv.ID)
	if err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	defer unlock()
	if inv, err = s.store.Invite(ctx, inv.ID); err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	switch {
	case inv.UsedBy == acct:
		return nil // recorded already (the browser registration, or a repeated report)
	case inv.State == store.StateCancelled, inv.UsedBy != "":
		// The token worked after the invite was cancelled (before the server
		// refused it), or twice (before the module was loaded). Say so
		// where admins look.
		s.log.WarnContext(ctx, "server reported an account created with an invite that is cancelled or already used",
			slog.String("id", inv.ID), slog.String("state", string(inv.State)), slog.String("account", acct),
			slog.String("inviter", inv.Inviter))
		s.audit(ctx, acct, ActionInviteUse, inv.ID,
			fmt.Sprintf("account created although the invite was %s (reported by the server); invited by %s", inv.State, inv.Inviter))
		return nil
	}
	detail := "registered by an app, reported by the server; invited by " + inv.Inviter
	if inv.ResetFor != "" {
		detail = "a new account made with the password reset link for " + inv.ResetFor + ", reported by the server; link made by " + inv.Inviter
	}
	used, prev, err := s.store.MarkUsedBy(ctx, inv.ID, acct, store.AuditEntry{
		Time: s.now().UTC(), Actor: acct, Action: ActionInviteUse, Subject: inv.ID, Detail: detail,
	})
	if errors.Is(err, store.ErrNotPending) {
		// Settled meanwhile without the invite's lock: a bug, but asking
		// the server to send the report again would not help.
		s.log.ErrorContext(ctx, "invite settled by something else while its report held it",
			slog.String("id", inv.ID), slog.String("account", acct), slog.Any("err", err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("record report: %w", err)
	}
	if prev != store.StateUsed {
		s.observer.InviteUsed()
	}
	s.log.InfoContext(ctx, "account registered with invite", slog.String("id", inv.ID),
		slog.String("account", acct), slog.String("inviter", inv.Inviter), slog.String("reported_by", "server"))
	s.announceUse(ctx, viewOf(used), acct)
	return nil
}

// announceUse tells the inviter which account their invite created and,
// with invites.introduce, welcomes the new account naming its inviter;
// with the module, the new account also asks the inviter to be a contact,
// the inviter's request pre-approved.
func (s *Service) announceUse(ctx context.Context, inv Invite, account string) {
	// A password reset link "used" by its own account introduces nobody.
	used := InviteUsed{Invite: inv, Account: account, Introduce: s.srvmod.introduce && inv.ResetFor == ""}
	if used.Introduce && s.modulePresent() {
		if err := s.srvmod.m.Introduce(ctx, account, inv.Inviter); err != nil {
			s.log.WarnContext(ctx, "the server could not add the inviter to the new account's contacts",
				slog.String("account", account), slog.String("inviter", inv.Inviter), slog.Any("err", err))
		} else {
			used.Requested = true
		}
	}
	s.notify(ctx, inv.Inviter, used)
	if used.Introduce && !strings.EqualFold(account, inv.Inviter) {
		s.notify(ctx, account, Welcome{Domain: s.domain, Inviter: inv.Inviter, Requested: used.Requested})
	}
}
