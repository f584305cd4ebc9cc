package ejabberd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/adhoc"
	"durare.org/invitebot/invites"
)

// Capabilities is what ejabberd lets the minter account do, found by
// asking (Detect).
type Capabilities struct {
	Mint   bool // urn:xmpp:invite#create-account (access_create_account)
	Resets bool // generate_reset_token
	List   bool // list_invites
	Delete bool // delete_invite_by_token
	Check  bool // check_account
}

// Detect asks ejabberd what the minter may do and remembers it. Minting:
// ejabberd lists create-account only to accounts access_create_account
// allows. The API commands it lists whether or not a call would pass (the
// configure rule on the host is checked when one runs), so each is tried
// once, in a way that changes nothing: list_invites and check_account
// only read, a reset link is asked for an account and a deletion for a
// token that do not exist. Only a refusal means no.
func (e *Issuer) Detect(ctx context.Context) (Capabilities, error) {
	nodes, err := e.Commands(ctx)
	if err != nil {
		return Capabilities{}, fmt.Errorf("detect: %w", err)
	}
	c := Capabilities{Mint: slices.Contains(nodes, invites.NodeCreateAccount)}
	probe := "invitebot-probe-" + randomHex(12)
	for _, p := range []struct {
		ok   *bool
		name string
		args []string
	}{
		{&c.List, CmdListInvites, nil},
		{&c.Check, CmdCheck, []string{"user", probe}},
		{&c.Resets, CmdResetToken, []string{"username", probe}},
		{&c.Delete, CmdDelete, []string{"token", probe}},
	} {
		if *p.ok, err = e.allowed(ctx, p.name, p.args...); err != nil {
			return Capabilities{}, fmt.Errorf("detect: %w", err)
		}
	}
	e.caps.Store(&c)
	return c, nil
}

// allowed runs an API command and reports whether ejabberd let the minter
// run it, whatever the command's own answer.
func (e *Issuer) allowed(ctx context.Context, name string, args ...string) (bool, error) {
	_, err := e.API(ctx, name, args...)
	var apiErr *APIError
	switch {
	case errors.Is(err, invites.ErrIssuerForbidden):
		return false, nil
	case err == nil, errors.As(err, &apiErr):
		return true, nil
	}
	return false, err
}

// OffersResets detects again and reports whether the minter may both
// mint reset links and check that their account exists (the service
// makes no link without the check).
func (e *Issuer) OffersResets(ctx context.Context) (bool, error) {
	c, err := e.Detect(ctx)
	if err != nil {
		return false, err
	}
	return c.Resets && c.Check, nil
}

// Capabilities returns what the last Detect found, and false before one
// answered.
func (e *Issuer) Capabilities() (Capabilities, bool) {
	c := e.caps.Load()
	if c == nil {
		return Capabilities{}, false
	}
	return *c, true
}

// CheckRights is the minter session's check after each login
// (minter.Config.CheckRights): it detects what the account may do, and
// logs what ejabberd.yml lacks when it is not everything.
func CheckRights(ctx context.Context, log *slog.Logger, account jid.JID, link adhoc.IQSender) {
	NewIssuer(account, link).CheckRights(ctx, log)
}

// CheckRights detects what the Issuer's account may run, remembers it
// (Revocation and the capabilities depend on it) and logs what
// ejabberd.yml lacks when it is not everything.
func (e *Issuer) CheckRights(ctx context.Context, log *slog.Logger) {
	account := e.From
	c, err := e.Detect(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.WarnContext(ctx, "could not ask ejabberd what the minter account may run", slog.Any("err", err))
		}
		return
	}
	attrs := []any{slog.String("minter", account.Bare().String()), slog.Bool("create_invites", c.Mint),
		slog.Bool("password_resets", c.Resets && c.Check), slog.Bool("usage_list", c.List), slog.Bool("token_deletion", c.Delete)}
	fix := Fix(account, "")
	switch {
	case !c.Mint:
		log.ErrorContext(ctx, "ejabberd does not let the minter account create invites; "+fix.Message, append(attrs, attrsAny(fix.Attrs)...)...)
	case !(c.Resets && c.Check && c.List && c.Delete):
		log.WarnContext(ctx, "ejabberd refuses the minter account some API commands; "+fix.Message, append(attrs, attrsAny(fix.Attrs)...)...)
	default:
		log.InfoContext(ctx, "the minter account may create invites", attrs...)
	}
}

func attrsAny(as []slog.Attr) []any {
	out := make([]any, len(as))
	for i, a := range as {
		out[i] = a
	}
	return out
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
