package invites

import "context"

// Notifier tells people what became of something of theirs they did not
// ask about right then: their invite was used, their grant given or taken.
// The service says what happened; the front end (chat) says it in words.
type Notifier interface {
	Notify(ctx context.Context, to string, ev Event) error
}

// Event is one piece of news for one person. Its concrete types are below;
// a front end renders each.
type Event interface{ isEvent() }

// InviteUsed says an invite of the recipient's created an account.
type InviteUsed struct {
	// Invite is the invite as it was when it was used.
	Invite Invite
	// Account is the account it created; empty when the server did not
	// say (usage found by checking the token).
	Account string
	// Introduce says the recipient should be offered to add Account as a
	// contact (invites.introduce; only with Account).
	Introduce bool
	// Requested says Account already asked to add the recipient as a
	// contact and pre-approved the recipient's own request (the server's
	// mod_invitebot did it): accepting makes them mutual contacts.
	Requested bool
}

// Welcome greets a new account and names who invited it, so the new person
// knows whom to talk to first (invites.introduce).
type Welcome struct {
	// Domain is the server the account was created on.
	Domain string
	// Inviter is the bare JID of whoever invited them.
	Inviter string
	// Requested says the inviter is in the account's contacts already,
	// with a request sent to them (the server's mod_invitebot).
	Requested bool
}

// GrantGiven says the recipient may now create invites.
type GrantGiven struct {
	// Domain is where the invites create accounts.
	Domain string
	// Requests says they may also answer account requests.
	Requests bool
}

// GrantRevoked says the recipient may no longer create invites.
type GrantRevoked struct {
	// Domain is where the invites created accounts.
	Domain string
	// Cancelled counts the recipient's pending invites cancelled with it.
	Cancelled int
}

// InviteCancelled says someone else (an admin) cancelled an invite of the
// recipient's.
type InviteCancelled struct {
	// Invite is the invite as it was cancelled.
	Invite Invite
	// By is who cancelled it.
	By string
}

func (InviteUsed) isEvent()      {}
func (InviteCancelled) isEvent() {}
func (Welcome) isEvent()         {}
func (GrantGiven) isEvent()      {}
func (GrantRevoked) isEvent()    {}
