package ejabberd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/invites"
)

// Registrar is homeserver.Registrar with ejabberd's answers given the
// service's meaning: ejabberd 26.07 refuses a taken name, when the
// registration carries an invite token, with internal-server-error
// ("Unexpected error condition: {stanza_error,cancel,undefined,conflict,
// ...}") instead of conflict: mod_invites wraps mod_register's answer.
type Registrar struct {
	homeserver.Registrar
}

// Register implements invites.Registrar.
func (r Registrar) Register(ctx context.Context, token, username, password string) (jid.JID, error) {
	account, err := r.Registrar.Register(ctx, token, username, password)
	var se stanza.Error
	if err != nil && errors.As(err, &se) && se.Condition == stanza.InternalServerError && takenText(se) {
		return jid.JID{}, fmt.Errorf("%w: %w", invites.ErrUsernameTaken, err)
	}
	return account, err
}

// takenText reports whether the error's text is ejabberd's for a name
// that exists: mod_register's conflict (or its exists reason) quoted
// inside mod_invites's "Unexpected error condition".
func takenText(se stanza.Error) bool {
	for _, t := range se.Text {
		t = strings.TrimSpace(t)
		if !strings.HasPrefix(t, "Unexpected error condition:") {
			continue
		}
		if strings.Contains(t, ",conflict,") || strings.HasSuffix(t, ": exists") {
			return true
		}
	}
	return false
}
