// Package policy decides who may do what. Every function here is a pure
// decision over data the caller already has: no I/O, no clock of its own, so
// the rules can be read and tested in one place.
package policy

import "time"

// Role is what a sender is to the bot, from least to most trusted.
type Role int

const (
	// Stranger is anyone who is neither an admin nor a granted inviter.
	Stranger Role = iota
	// Inviter is a JID an admin granted the right to invite.
	Inviter
	// Approver is an inviter whose grant also lets them answer account
	// requests (grant <jid> requests yes): everything an inviter may do,
	// plus approving and declining requests from people who know nobody
	// here. It sits below Admin because admins may always answer.
	Approver
	// Admin is a JID listed under admins in the configuration.
	Admin
)

// String returns the role's name as shown to people.
func (r Role) String() string {
	switch r {
	case Admin:
		return "admin"
	case Inviter:
		return "inviter"
	case Approver:
		return "approver"
	default:
		return "stranger"
	}
}

// RoleOf returns the role of the bare JID who. Admins come from the
// configuration only, so a database edit cannot make someone an admin; granted
// says whether the store holds a live grant for who, and answersRequests
// whether that grant lets them answer account requests (a flag without a
// grant means nothing: revoking a grant takes the flag with it).
func RoleOf(who string, admins map[string]bool, granted, answersRequests bool) Role {
	switch {
	case admins[who]:
		return Admin
	case granted && answersRequests:
		return Approver
	case granted:
		return Inviter
	default:
		return Stranger
	}
}

// Permission names one kind of action the bot can take for someone.
type Permission int

const (
	// ReadHelp lets anyone see what they may do.
	ReadHelp Permission = iota
	// CreateInvite mints a new account invite.
	CreateInvite
	// ListInvites shows the sender's own invites.
	ListInvites
	// CancelInvite cancels an invite (whose, see CanCancel).
	CancelInvite
	// ManageGrants grants and revokes the right to invite.
	ManageGrants
	// ListInviters shows everyone who holds a grant.
	ListInviters
	// ListAnyInvites shows the invites of any inviter.
	ListAnyInvites
	// PauseInvites switches invite creation off and on for everybody.
	PauseInvites
	// ReadAudit shows the audit log and who invited whom.
	ReadAudit
	// CancelAnyInvite cancels invites whoever issued them.
	CancelAnyInvite
	// TakeBackups writes a copy of the database on request.
	TakeBackups
	// ResetPassword makes password reset links (whose accounts, see
	// CanReset).
	ResetPassword
	// ResetAnyAccount makes reset links for any account of the domain.
	ResetAnyAccount
	// AnswerRequests lists the open account requests and approves or
	// declines them.
	AnswerRequests
	// CreateEvent makes event links (how many uses, see EventCap).
	CreateEvent
	// ListEvents shows the sender's own event links.
	ListEvents
	// ListAnyEvents shows anyone's event links.
	ListAnyEvents
	// CloseEvent closes an event link (whose, see CanCloseEvent).
	CloseEvent
	// CloseAnyEvent closes event links whoever made them.
	CloseAnyEvent
	// KeepOwnMail keeps, shows and forgets a mail address for the
	// sender's own account, for password recovery. Anyone may ask; the
	// service allows only accounts of the domain.
	KeepOwnMail
	// ReadBranch shows the sender's own branch: who invited them, and
	// every account their invites created, and those accounts' in turn.
	ReadBranch
	// ReadAnyBranch shows anyone's branch.
	ReadAnyBranch
	// SuspendAccounts suspends an inviter's branch, and lifts it again.
	SuspendAccounts
)

// minimumRole is the least trusted role holding each permission. A table,
// not a switch, so adding a permission without deciding who holds it fails
// closed (the zero value would be Stranger, so Allows checks presence).
var minimumRole = map[Permission]Role{
	ReadHelp:        Stranger,
	CreateInvite:    Inviter,
	ListInvites:     Inviter,
	CancelInvite:    Inviter,
	ManageGrants:    Admin,
	ListInviters:    Admin,
	ListAnyInvites:  Admin,
	PauseInvites:    Admin,
	ReadAudit:       Admin,
	CancelAnyInvite: Admin,
	TakeBackups:     Admin,
	ResetPassword:   Inviter,
	ResetAnyAccount: Admin,
	AnswerRequests:  Approver,
	CreateEvent:     Inviter,
	ListEvents:      Inviter,
	ListAnyEvents:   Admin,
	CloseEvent:      Inviter,
	CloseAnyEvent:   Admin,
	KeepOwnMail:     Stranger,
	ReadBranch:      Inviter,
	ReadAnyBranch:   Admin,
	SuspendAccounts: Admin,
}

// Allows reports whether role r holds permission p. Unknown permissions are
// refused.
func Allows(r Role, p Permission) bool {
	min, ok := minimumRole[p]
	return ok && r >= min
}

// CanCancel reports whether actor, holding role r, may cancel an invite
// issued by inviter: holders of CancelAnyInvite any invite, holders of
// CancelInvite only their own.
func CanCancel(r Role, actor, inviter string) bool {
	return Allows(r, CancelAnyInvite) || (Allows(r, CancelInvite) && actor == inviter)
}

// RefusalInterval is how often a sender without rights is told no. Replying
// to every message would let anyone who can forge or flood stanzas use the
// bot to reflect traffic at a third party.
const RefusalInterval = time.Hour

// CanReset reports whether actor, holding role r, may make a password reset
// link for an account that the invites of invitedBy created: holders of
// ResetAnyAccount for any account, holders of ResetPassword for accounts
// their own invites created, when inviterResets allows inviters that.
func CanReset(r Role, actor string, invitedBy []string, inviterResets bool) bool {
	if Allows(r, ResetAnyAccount) {
		return true
	}
	if !Allows(r, ResetPassword) || !inviterResets {
		return false
	}
	for _, who := range invitedBy {
		if who == actor {
			return true
		}
	}
	return false
}

// MaxEventDuration is the longest an event link may stay open. An event
// link admits strangers without anyone vouching for each: it is for the
// room someone is in today, not a standing door.
const MaxEventDuration = 24 * time.Hour

// EventCap is the largest cap an actor with role r may give any one event
// link: admins up to maxUses (the configured policy.event_max_uses),
// inviters up to their grant's own allowance (grantEvents, none when zero)
// and never above maxUses, everybody else none. Zero means no event links
// at all. What an inviter's links already hand out lowers it further
// (EventCapNow).
func EventCap(r Role, grantEvents, maxUses int) int {
	switch {
	case r == Admin:
		return maxUses
	case Allows(r, CreateEvent):
		return max(0, min(grantEvents, maxUses))
	default:
		return 0
	}
}

// EventShareDivisor bounds what one inviter's event links may take of the
// service's daily limit: at most GlobalPerDay/EventShareDivisor invites
// per QuotaWindow, whatever their grant says, so that one inviter cannot
// lock everybody else out for a day.
const EventShareDivisor = 2

// EventAllowance is how many invites the event links of an actor with role
// r may hand out together per QuotaWindow, and whether any such bound
// applies: inviters their grant's allowance (grantEvents), never more than
// lim.GlobalPerDay/EventShareDivisor; admins none (their links answer to
// the global limit only, as their own invites answer to nothing).
func EventAllowance(r Role, grantEvents int, lim Limits) (int, bool) {
	if r == Admin {
		return 0, false
	}
	if !Allows(r, CreateEvent) {
		return 0, true
	}
	return max(0, min(grantEvents, lim.GlobalPerDay/EventShareDivisor)), true
}

// EventUsage is what counts against an inviter's event allowance,
// gathered by the caller from their event links.
type EventUsage struct {
	// HandedOut counts the invites the inviter's event links handed out in
	// the QuotaWindow ending now, those being minted included.
	HandedOut int
	// Held counts what the inviter's open event links may still hand out:
	// their caps less what they handed out. It is held for them, so that
	// links already made can always give what they promised.
	Held int
}

// EventCapNow is the largest cap an actor with role r may give a new event
// link now: EventCap, and for an inviter no more than their allowance
// (EventAllowance) leaves after u. Zero means no new link now.
func EventCapNow(r Role, grantEvents int, lim Limits, u EventUsage) int {
	c := EventCap(r, grantEvents, lim.EventMaxUses)
	if n, limited := EventAllowance(r, grantEvents, lim); limited {
		c = min(c, max(0, n-u.HandedOut-u.Held))
	}
	return c
}

// CanCloseEvent reports whether actor, holding role r, may close an event
// link made by creator: holders of CloseAnyEvent any link, holders of
// CloseEvent only their own.
func CanCloseEvent(r Role, actor, creator string) bool {
	return Allows(r, CloseAnyEvent) || (Allows(r, CloseEvent) && actor == creator)
}
