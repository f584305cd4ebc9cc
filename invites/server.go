package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"mellium.im/xmpp/jid"
)

// This file names what the service needs from the home server. The
// homeserver packages implement it, one per kind of server; the service
// never sees a stanza. Optional abilities are separate interfaces, found by
// asking (a type assertion), so that a server without them still mints.

// Minted is what a server hands back for one new account invite.
type Minted struct {
	// URI is the XEP-0401 URI exactly as the server returned it.
	URI string
	// Token is the preauth token taken from URI.
	Token string
	// LandingURL is the server's own landing page, empty when it has none.
	LandingURL string
	// Expires is when the server stops accepting the token; zero if the
	// server did not say.
	Expires time.Time
}

// Issuer mints account invites on the home server. The server does the
// minting because only it can honour the token at registration.
type Issuer interface {
	Mint(ctx context.Context) (Minted, error)
}

// ResetIssuer is implemented by Issuers whose server can mint password
// reset links.
type ResetIssuer interface {
	// OffersResets asks the server whether it offers password resets to
	// the bot right now (a server upgraded in place starts offering them
	// without a change to the bot's configuration).
	OffersResets(ctx context.Context) (bool, error)
	// MintReset mints a reset link for account.
	MintReset(ctx context.Context, account jid.JID) (Minted, error)
}

// AccountChecker is implemented by Issuers whose server can say whether an
// account exists. A password reset link for an account that does not exist
// would create it, untracked, so the service makes none unless the server
// said the account exists.
type AccountChecker interface {
	// AccountExists reports whether account (a bare JID of the domain)
	// exists at the server. An error means the server did not say.
	AccountExists(ctx context.Context, account jid.JID) (bool, error)
}

// Revocation is how an Issuer makes a token unusable at the server.
type Revocation int

const (
	// RevokeUnsupported: the token stays valid at the server until it
	// expires or is used.
	RevokeUnsupported Revocation = iota
	// RevokeByDeletion: the server deletes tokens on request (ejabberd's
	// delete_invite_by_token); the Issuer also implements Deleter.
	RevokeByDeletion
	// RevokeByConsumption: the server offers no deletion (Prosody), so the
	// token is used up by registering a throwaway account with it and
	// removing that account at once.
	RevokeByConsumption
)

// Revoker is implemented by Issuers that can say how their tokens are
// revoked. Issuers without it are RevokeUnsupported.
type Revoker interface {
	Revocation() Revocation
}

// Deleter is implemented by Issuers whose server deletes tokens.
type Deleter interface {
	Delete(ctx context.Context, token string) error
}

// TokenUsage is what the server records about one token it minted.
type TokenUsage struct {
	// Token is the preauth token.
	Token string
	// Valid says whether the server still accepts it.
	Valid bool
	// Account is the account the token created (or whose password it
	// reset); zero while the token is unused.
	Account jid.JID
}

// ErrNotOffered is what a method of an optional ability returns when the
// implementation has the ability only for some servers (one that serves
// whichever server it finds) and the current one lacks it.
var ErrNotOffered = errors.New("the server does not offer this")

// UsageLister is implemented by Issuers whose server lists its tokens
// with the account each one created (ejabberd's list_invites), so that
// usage tracking learns who used a token without a server module.
type UsageLister interface {
	// ListUsage returns every token the server holds for the domain.
	ListUsage(ctx context.Context) ([]TokenUsage, error)
}

// Registrar reaches the server's client port the way a new account's app
// does: it registers accounts with a token (browser registration,
// consuming a cancelled token) and checks tokens (usage tracking). Errors
// wrap ErrTokenRejected, ErrUsernameTaken and ErrUsernameRefused where
// those apply.
type Registrar interface {
	// Register creates username with password, token as the invitation,
	// and returns the account the server was asked for.
	Register(ctx context.Context, token, username, password string) (jid.JID, error)
	// BoundJID logs in as account and returns the address the server
	// gives it: the server maps usernames by its own rules.
	BoundJID(ctx context.Context, account jid.JID, password string) (jid.JID, error)
	// Remove deletes account, logged in as it.
	Remove(ctx context.Context, account jid.JID, password string) error
	// DialChecker opens a stream on which many tokens can be checked.
	DialChecker(ctx context.Context) (TokenChecker, error)
}

// TokenChecker asks the server whether tokens are still accepted, without
// consuming them, over one stream.
type TokenChecker interface {
	// Check returns nil for a valid token and an error wrapping
	// ErrTokenRejected for one that is unknown, used or expired.
	Check(ctx context.Context, token string) error
	// Close ends the stream.
	Close() error
}

// ServerModule is the optional module on the server that makes three
// promises hold there (mod_invitebot on Prosody): one account per token,
// a report of which account each token created, and deletion of tokens.
type ServerModule interface {
	// State is what the last Detect (or failed request) found.
	State() ModuleState
	// Detect asks the server whether the module is loaded. When the server
	// cannot be asked the state stays as it was and the error says why.
	Detect(ctx context.Context) (ModuleState, error)
	// Delete makes the server forget token, also on streams that passed
	// preauth with it earlier.
	Delete(ctx context.Context, token string) error
	// Introduce puts contact in account's roster with subscriptions asked
	// and pre-approved both ways.
	Introduce(ctx context.Context, account, contact string) error
}

// ModuleState says whether the server runs the module.
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

// XEP-0401 names: the bot serves the same command and form to its users as
// the server serves to the bot.
const (
	NodeCreateAccount = "urn:xmpp:invite#create-account"
	FormTypeInvite    = "urn:xmpp:invite#invitation"
)

// Errors an Issuer returns, so callers can tell an operator what to fix.
var (
	// ErrIssuerForbidden means the server refused to let the component or
	// the minter account run its invite command: the component is not an
	// admin, or the account lacks the role. A *RefusedError says which.
	ErrIssuerForbidden = errors.New("server refused to mint an invite")
	// ErrIssuerUnsupported means the server has no invite command.
	ErrIssuerUnsupported = errors.New("server offers no invite command")
	// ErrServerUnreachable means the request could not reach the server:
	// the component link or the minter's session is down.
	ErrServerUnreachable = errors.New("server unreachable")
)

// RefusedError is the detail of ErrIssuerForbidden: which command the
// server refused to whom, and what the server's configuration needs. What
// an operator must grant depends on both (admins for a component, a role
// for an account), so the front end that logs it needs them as data.
type RefusedError struct {
	// Node is the command that was refused.
	Node string
	// As is who ran it: the component (no localpart) or the minter account.
	As jid.JID
	// Condition is the server's error condition (forbidden, ...).
	Condition string
	// Err is the server's error (a stanza error).
	Err error
	// Fix says, for the operator's log, what to change on the server so
	// that As may run Node. The server implementation fills it in; its
	// Message is empty when it knows no fix.
	Fix Remedy
}

// Remedy is a log message and its attributes that tell an operator what to
// change on the server.
type Remedy struct {
	Message string
	Attrs   []slog.Attr
}

// Error implements error.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("%v (%s): %s ran %s: %v", ErrIssuerForbidden, e.Condition, e.As, e.Node, e.Err)
}

// Unwrap makes errors.Is match ErrIssuerForbidden and the server's error.
func (e *RefusedError) Unwrap() []error { return []error{ErrIssuerForbidden, e.Err} }

// errNoRegistrar is what a service without a Registrar answers: it cannot
// reach the server's client port, so tokens count as live (cancelling is
// then the safe choice) and browser registration fails.
var errNoRegistrar = errors.New("no client port configured to reach the server")

// noRegistrar is the Registrar of a service given none (tests, tools).
type noRegistrar struct{}

func (noRegistrar) Register(context.Context, string, string, string) (jid.JID, error) {
	return jid.JID{}, errNoRegistrar
}

func (noRegistrar) BoundJID(context.Context, jid.JID, string) (jid.JID, error) {
	return jid.JID{}, errNoRegistrar
}

func (noRegistrar) Remove(context.Context, jid.JID, string) error { return errNoRegistrar }

func (noRegistrar) DialChecker(context.Context) (TokenChecker, error) { return nil, errNoRegistrar }
