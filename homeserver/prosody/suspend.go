package prosody

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/invites"
)

// This file is the bot's side of mod_invitebot's suspension verbs:
//
//	component -> server  set <suspend jid='user@domain' reason='R'/>
//	                     result <suspended how='disabled|blocked'/>
//	component -> server  set <unsuspend jid='user@domain'/>
//
// The module refuses admins of the host and accounts of other hosts
// (forbidden, bad-request) whatever the bot asks.

// Suspend asks the server to suspend account: it can no longer log in and
// its sessions end. The module says how: Prosody 13's own disabling
// ("disabled") or its own refusal at resource binding ("blocked").
func (m *Module) Suspend(ctx context.Context, account jid.JID, reason string) (invites.SuspendHow, error) {
	ctx, cancel := context.WithTimeout(ctx, moduleTimeout)
	defer cancel()
	var res struct {
		How string `xml:"how,attr"`
	}
	err := m.iq(ctx, stanza.SetIQ, "suspend", &res,
		xml.Attr{Name: xml.Name{Local: "jid"}, Value: account.Bare().String()},
		xml.Attr{Name: xml.Name{Local: "reason"}, Value: reason})
	if err != nil {
		return "", fmt.Errorf("suspend %s (mod_invitebot): %w", account, suspendError(err))
	}
	if res.How == "disabled" {
		return invites.SuspendDisabled, nil
	}
	return invites.SuspendBlocked, nil
}

// Unsuspend asks the server to lift the suspension of account that
// Suspend made; an account the module did not suspend is left as it is.
func (m *Module) Unsuspend(ctx context.Context, account jid.JID) error {
	ctx, cancel := context.WithTimeout(ctx, moduleTimeout)
	defer cancel()
	err := m.iq(ctx, stanza.SetIQ, "unsuspend", nil,
		xml.Attr{Name: xml.Name{Local: "jid"}, Value: account.Bare().String()})
	if err != nil {
		return fmt.Errorf("unsuspend %s (mod_invitebot): %w", account, suspendError(err))
	}
	return nil
}

// suspendError adds the service's sentinel to the server's refusals that
// asking again will not change.
func suspendError(err error) error {
	var se stanza.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Condition {
	case stanza.Forbidden, stanza.BadRequest, stanza.ItemNotFound:
		return fmt.Errorf("%w: %w", invites.ErrSuspendRefused, err)
	}
	return err
}
