package invites

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// The tree: who invited whom, as one picture. Down from a person through
// every account their invites (event links and approved requests
// included) created, and those accounts' invites in turn; up from them to
// whoever began the chain.

// Bounds of one branch. treeMaxAccounts keeps a branch from a bot wave
// readable and fast (10 k accounts read in one transaction in tens of
// milliseconds); past it the branch says it was cut. treeMaxUp bounds
// the chain above, which only damaged data makes long.
const (
	treeMaxAccounts = 20000
	treeMaxUp       = 64
)

// ErrNotInBranch means an inviter asked for the branch of someone outside
// their own.
var ErrNotInBranch = errors.New("not in your branch")

// AccountState is what an account in a branch is now, as far as the bot
// knows.
type AccountState string

// Account states.
const (
	// AccountActive: created by an invite, not suspended.
	AccountActive AccountState = "active"
	// AccountSuspended: suspended by the bot (suspend).
	AccountSuspended AccountState = "suspended"
	// AccountDeleted: the server said it no longer exists.
	AccountDeleted AccountState = "deleted"
)

// InviterState is what a JID is to the bot as an inviter.
type InviterState string

// Inviter states.
const (
	// InviterAdmin: an admin from the configuration.
	InviterAdmin InviterState = "admin"
	// InviterGranted: holds a grant now.
	InviterGranted InviterState = "granted"
	// InviterRevoked: invited before, holds no grant now.
	InviterRevoked InviterState = "revoked"
	// InviterNone: never invited anybody.
	InviterNone InviterState = "none"
)

// BranchAccount is one account in a branch.
type BranchAccount struct {
	// Account is its bare JID.
	Account string
	// Invite is the invite that created it; its Inviter is the parent.
	Invite Invite
	// Depth is 1 for the accounts the branch's root invited, 2 below
	// those, and so on.
	Depth int
	// State is the account's; Inviter what it is as an inviter.
	State   AccountState
	Inviter InviterState
	// Children counts the accounts it invited; Below all accounts under
	// it.
	Children, Below int
}

// ChainLink is one step of the chain above a branch's root: Invite
// created Account, and Invite.Inviter (whose state is InviterState) made
// it.
type ChainLink struct {
	Account      string
	Invite       Invite
	InviterState InviterState
}

// Branch is who invited whom around one person.
type Branch struct {
	// Root is the person asked about; RootInviter what they are as an
	// inviter, RootAccount their account's state when one of the bot's
	// invites created it (empty otherwise).
	Root        string
	RootInviter InviterState
	RootAccount AccountState
	// Up is the chain above Root, nearest first: Up[0] created Root's
	// account, and the last link's inviter began it.
	Up []ChainLink
	// Accounts are the branch below Root, depth first, each account's
	// children oldest first.
	Accounts []BranchAccount
	// Truncated says the branch has more accounts than were read.
	Truncated bool
}

// Depths counts the branch's accounts by depth: Depths()[0] at depth 1.
func (b Branch) Depths() []int {
	var out []int
	for _, a := range b.Accounts {
		for len(out) < a.Depth {
			out = append(out, 0)
		}
		out[a.Depth-1]++
	}
	return out
}

// Suspended counts the branch's suspended accounts.
func (b Branch) Suspended() int {
	n := 0
	for _, a := range b.Accounts {
		if a.State == AccountSuspended {
			n++
		}
	}
	return n
}

// brancher reads branches.
type brancher struct {
	*core
	roles *roles
	// checker asks the server whether an account exists; nil when the
	// Issuer cannot.
	checker AccountChecker
}

// Branch returns who's branch: the chain above them and every account
// below. Admins may ask about anybody; inviters about themselves and the
// accounts in their own branch (ErrNotInBranch otherwise).
func (br *brancher) Branch(ctx context.Context, a Actor, who string) (Branch, error) {
	if err := a.may(policy.ReadBranch); err != nil {
		return Branch{}, err
	}
	up, err := br.store.ChainUp(ctx, who, treeMaxUp)
	if err != nil {
		return Branch{}, fmt.Errorf("tree: %w", err)
	}
	if who != a.jid && !policy.Allows(a.role, policy.ReadAnyBranch) &&
		!slices.ContainsFunc(up, func(inv store.Invite) bool { return inv.Inviter == a.jid }) {
		return Branch{}, ErrNotInBranch
	}
	invs, truncated, err := br.store.BranchInvites(ctx, who, treeMaxAccounts)
	if err != nil {
		return Branch{}, fmt.Errorf("tree: %w", err)
	}
	b := Branch{Root: who, Truncated: truncated, Accounts: order(who, invs)}
	if err := br.states(ctx, &b, up); err != nil {
		return Branch{}, err
	}
	return b, nil
}

// order lays the branch's invites out depth first from root, counting
// each account's children and descendants.
func order(root string, invs []store.Invite) []BranchAccount {
	children := make(map[string][]store.Invite)
	for _, inv := range invs {
		children[inv.Inviter] = append(children[inv.Inviter], inv)
	}
	for _, c := range children {
		slices.SortStableFunc(c, func(x, y store.Invite) int { return x.Created.Compare(y.Created) })
	}
	out := make([]BranchAccount, 0, len(invs))
	placed := map[string]bool{root: true}
	// An explicit stack: a bot wave's chain can be deeper than is wise to
	// recurse.
	type frame struct {
		inv    store.Invite
		depth  int
		parent int // index in out, -1 for root's
	}
	var stack []frame
	push := func(who string, depth, parent int) {
		c := children[who]
		for i := len(c) - 1; i >= 0; i-- {
			stack = append(stack, frame{c[i], depth, parent})
		}
	}
	push(root, 1, -1)
	var parents []int
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if placed[f.inv.UsedBy] {
			continue
		}
		placed[f.inv.UsedBy] = true
		out = append(out, BranchAccount{Account: f.inv.UsedBy, Invite: viewOf(f.inv), Depth: f.depth, State: AccountActive})
		parents = append(parents, f.parent)
		if f.parent >= 0 {
			out[f.parent].Children++
		}
		push(f.inv.UsedBy, f.depth+1, len(out)-1)
	}
	// Children come after their parent: summing backwards is one pass.
	for i := len(out) - 1; i >= 0; i-- {
		if p := parents[i]; p >= 0 {
			out[p].Below += 1 + out[i].Below
		}
	}
	return out
}

// states fills in what every account and inviter of b is now.
func (br *brancher) states(ctx context.Context, b *Branch, up []store.Invite) error {
	accounts := make([]string, 0, len(b.Accounts)+1)
	accounts = append(accounts, b.Root)
	for _, acc := range b.Accounts {
		accounts = append(accounts, acc.Account)
	}
	suspended, err := br.store.SuspendedAccounts(ctx, accounts)
	if err != nil {
		return fmt.Errorf("tree: %w", err)
	}
	for i := range b.Accounts {
		acc := &b.Accounts[i]
		if _, ok := suspended[acc.Account]; ok {
			acc.State = AccountSuspended
		}
		if acc.Inviter, err = br.inviterState(ctx, acc.Account, acc.Children > 0); err != nil {
			return err
		}
	}
	if b.RootInviter, err = br.inviterState(ctx, b.Root, len(b.Accounts) > 0); err != nil {
		return err
	}
	if len(up) > 0 {
		b.RootAccount = AccountActive
		if _, ok := suspended[b.Root]; ok {
			b.RootAccount = AccountSuspended
		}
	}
	for _, inv := range up {
		st, err := br.inviterState(ctx, inv.Inviter, true)
		if err != nil {
			return err
		}
		b.Up = append(b.Up, ChainLink{Account: inv.UsedBy, Invite: viewOf(inv), InviterState: st})
	}
	return nil
}

// inviterState says what who is as an inviter; invited says they created
// accounts (so hold no grant only because it was taken).
func (br *brancher) inviterState(ctx context.Context, who string, invited bool) (InviterState, error) {
	if br.roles.IsAdmin(who) {
		return InviterAdmin, nil
	}
	_, err := br.store.Grant(ctx, who)
	switch {
	case err == nil:
		return InviterGranted, nil
	case !errors.Is(err, store.ErrNotFound):
		return "", fmt.Errorf("tree: %w", err)
	case invited:
		return InviterRevoked, nil
	}
	return InviterNone, nil
}

// Bounds of asking the server which accounts of a branch still exist: one
// request per account, so only the accounts a reply shows.
const (
	treeCheckMax      = 50
	treeCheckParallel = 4
	treeCheckTimeout  = 5 * time.Second
)

// CheckAccounts asks the server whether the accounts b.Accounts[from:to]
// (at most treeCheckMax of them) still exist and marks those it says are
// gone as deleted. A server that cannot say, or does not answer in time,
// leaves the states as they were: this only adds what the bot cannot
// know by itself.
func (br *brancher) CheckAccounts(ctx context.Context, b *Branch, from, to int) {
	if br.checker == nil {
		return
	}
	from, to = max(0, from), min(len(b.Accounts), to, from+treeCheckMax)
	ctx, cancel := context.WithTimeout(ctx, treeCheckTimeout)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, treeCheckParallel)
	for i := from; i < to; i++ {
		acc := &b.Accounts[i]
		j, err := jid.Parse(acc.Account)
		if err != nil || j.Domainpart() != br.domain {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if ok, err := br.checker.AccountExists(ctx, j); err == nil && !ok {
				acc.State = AccountDeleted // each goroutine writes its own element
			}
		}()
	}
	wg.Wait()
}
