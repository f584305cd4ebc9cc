package ejabberd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/invites"
)

// Registrar is homeserver.Registrar fitted to ejabberd. Token checks get
// a new stream after each valid token: ejabberd ends a stream that sends
// preauth again after one passed (not-authorized). And ejabberd 26.07 refuses a taken name, when the
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

// DialChecker implements invites.Registrar: its checker dials again after
// a token passed (see Registrar).
func (r Registrar) DialChecker(ctx context.Context) (invites.TokenChecker, error) {
	c, err := ibr.DialChecker(ctx, r.C2S)
	if err != nil {
		return nil, err
	}
	return &checker{cfg: r.C2S, c: c}, nil
}

// checker checks tokens over one stream until a token passes, then over
// a new one. Check is safe for concurrent use.
type checker struct {
	cfg ibr.Config

	mu sync.Mutex
	c  *ibr.Checker // nil when the last stream is spent
}

// Check implements invites.TokenChecker.
func (k *checker) Check(ctx context.Context, token string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c == nil {
		c, err := ibr.DialChecker(ctx, k.cfg)
		if err != nil {
			return err
		}
		k.c = c
	}
	err := k.c.Check(ctx, token)
	if errors.Is(err, ibr.ErrTokenRejected) {
		return fmt.Errorf("%w: %w", invites.ErrTokenRejected, err)
	}
	// A token that passed spends the stream; after any other error its
	// state is unknown.
	_ = k.c.Close()
	k.c = nil
	return err
}

// Close implements invites.TokenChecker.
func (k *checker) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c == nil {
		return nil
	}
	err := k.c.Close()
	k.c = nil
	return err
}
