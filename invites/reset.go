package invites

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/policy"
)

// NodePasswordReset is Prosody 13's command that mints a password reset
// link for a local account (mod_invites_adhoc). Prosody 0.12 has none.
const NodePasswordReset = "xmpp:prosody.im/mod_invites_adhoc#password-reset"

// ActionResetCreate is the audit action of a password reset link.
const ActionResetCreate = "reset.create"

// Errors of password resets.
var (
	// ErrResetUnsupported means the server offers no reset command.
	ErrResetUnsupported = errors.New("the server offers no password reset command")
	// ErrNotLocalAccount means the account is not on the service's domain.
	ErrNotLocalAccount = errors.New("not an account of this domain")
	// ErrNotYourAccount means an inviter asked to reset an account that
	// none of their invites created (or inviters may not reset at all).
	ErrNotYourAccount = errors.New("not an account one of your invites created")
)

// ResetCreated tells an account that a password reset link was made for
// it: the one who asked may not be the owner.
type ResetCreated struct {
	// Account is the account the link resets.
	Account string
	// By is who made the link.
	By string
	// At is when.
	At time.Time
}

func (ResetCreated) isEvent() {}

// ResetIssuer is implemented by Issuers that can mint password reset
// links.
type ResetIssuer interface {
	MintReset(ctx context.Context, account jid.JID) (Minted, error)
}

// CommandLister is implemented by Issuers that can ask the server which
// commands it offers.
type CommandLister interface {
	ServerCommands(ctx context.Context) ([]string, error)
}

// DetectServerCommands asks the server which commands it offers and turns
// password resets on or off accordingly. The bot calls it whenever its link
// comes up: a server upgraded from 0.12 to 13 offers resets without a
// change to the bot's configuration.
func (s *Service) DetectServerCommands(ctx context.Context) {
	lister, ok := s.issuer.(CommandLister)
	if !ok {
		return
	}
	nodes, err := lister.ServerCommands(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "could not list the server's commands; password resets stay as they were", slog.Any("err", err))
		return
	}
	_, canMint := s.issuer.(ResetIssuer)
	on := canMint && slices.Contains(nodes, NodePasswordReset)
	if s.resets.Swap(on) != on || !on {
		s.log.InfoContext(ctx, "password resets", slog.Bool("available", on),
			slog.String("why", map[bool]string{true: "the server offers " + NodePasswordReset, false: "the server offers no password reset command (Prosody 13 does)"}[on]))
	}
}

// ResetsAvailable reports whether the server offers password resets, as
// last detected.
func (s *Service) ResetsAvailable() bool { return s.resets.Load() }

// Reset makes a password reset link for account. Admins may reset any
// account of the domain; an inviter only one that an invite of theirs
// created, unless the configuration forbids inviters resets. The server's
// reset token can also create a new account, so the link is an invite in
// every respect: single use, counted in quotas, stored before it is
// returned, listed, cancellable and tracked. The account is told.
func (s *Service) Reset(ctx context.Context, a Actor, account string) (Invite, error) {
	if err := a.may(policy.ResetPassword); err != nil {
		return Invite{}, err
	}
	target, err := jid.Parse(account)
	if err != nil || target.Domainpart() != s.domain || target.Localpart() == "" {
		return Invite{}, ErrNotLocalAccount
	}
	target = target.Bare()
	issuer, ok := s.issuer.(ResetIssuer)
	if !ok || !s.ResetsAvailable() {
		return Invite{}, ErrResetUnsupported
	}
	if !policy.Allows(a.role, policy.ResetAnyAccount) {
		invitedBy, err := s.invitedBy(ctx, target.String())
		if err != nil {
			return Invite{}, err
		}
		if !policy.CanReset(a.role, a.jid, invitedBy, s.inviterResets.Load()) {
			return Invite{}, ErrNotYourAccount
		}
	}
	mint := func(ctx context.Context) (Minted, error) { return issuer.MintReset(ctx, target) }
	inv, err := s.mintAndRecord(ctx, a, mint, minting{action: ActionResetCreate, resetFor: target.String()})
	if err != nil {
		return Invite{}, err
	}
	s.notify(ctx, target.String(), ResetCreated{Account: target.String(), By: a.jid, At: inv.Created})
	return inv, nil
}

// invitedBy returns the inviters of the account invites that created
// account (password resets of it do not count).
func (s *Service) invitedBy(ctx context.Context, account string) ([]string, error) {
	invs, err := s.store.InvitesUsedBy(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("reset: who invited %s: %w", account, err)
	}
	var out []string
	for _, inv := range invs {
		if inv.ResetFor == "" {
			out = append(out, inv.Inviter)
		}
	}
	return out, nil
}

// MintReset runs the server's password reset command for account: the
// first stage asks for the account, the answer is an XEP-0401 result form
// like create-account's.
func (a AdhocIssuer) MintReset(ctx context.Context, account jid.JID) (Minted, error) {
	return a.run(ctx, NodePasswordReset, func(f *dataform.Form) { f.Set("accountjid", account.String()) })
}

// ServerCommands lists the command nodes the server offers the component
// on the domain (XEP-0050 discovery).
func (a AdhocIssuer) ServerCommands(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, issuerTimeout)
	defer cancel()
	q := struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
		Node    string   `xml:"node,attr"`
	}{Node: "http://jabber.org/protocol/commands"}
	payload, err := marshalTokens(q)
	if err != nil {
		return nil, err
	}
	r, err := a.Link.SendIQElement(ctx, payload, stanza.IQ{Type: stanza.GetIQ, To: a.Server, From: a.From})
	if err != nil {
		return nil, fmt.Errorf("list server commands: %w", err)
	}
	defer r.Close()
	tok, err := r.Token()
	if err != nil {
		return nil, fmt.Errorf("list server commands: %w", err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return nil, errors.New("list server commands: reply is not an IQ")
	}
	if _, err := stanza.UnmarshalIQError(r, start); err != nil {
		return nil, fmt.Errorf("list server commands: %w", err)
	}
	var reply struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
		Items   []struct {
			Node string `xml:"node,attr"`
		} `xml:"item"`
	}
	if err := xml.NewTokenDecoder(r).Decode(&reply); err != nil {
		return nil, fmt.Errorf("list server commands: %w", err)
	}
	nodes := make([]string, 0, len(reply.Items))
	for _, it := range reply.Items {
		nodes = append(nodes, it.Node)
	}
	return nodes, nil
}
