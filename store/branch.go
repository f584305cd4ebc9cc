package store

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// branchReader walks who invited whom: down from one inviter through the
// accounts their invites created, and up from an account to whoever began
// its chain. Both walks read one transaction, so a branch is one picture of
// the file, and both are bounded by their caller.
type branchReader struct{ *base }

// BranchInvites returns the invites that created accounts in root's branch,
// breadth first: root's own used invites, then those of the accounts they
// created, and so on. Password reset links are left out (they created no
// account). It stops once it holds limit invites and says so with
// truncated. An account met twice (a loop in damaged data, or an account
// invited twice) is walked once.
func (s branchReader) BranchInvites(ctx context.Context, root string, limit int) (invs []Invite, truncated bool, err error) {
	if limit <= 0 {
		return nil, false, fmt.Errorf("branch of %s: limit %d: %w", root, limit, ErrInvalid)
	}
	invs = []Invite{}
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		seen := map[string]bool{root: true}
		queue := []string{root}
		for len(queue) > 0 {
			who := queue[0]
			queue = queue[1:]
			created, err := usedInvitesOf(tx, who)
			if err != nil {
				return err
			}
			for _, inv := range created {
				if len(invs) == limit {
					truncated = true
					return nil
				}
				invs = append(invs, inv)
				if !seen[inv.UsedBy] {
					seen[inv.UsedBy] = true
					queue = append(queue, inv.UsedBy)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("branch of %s: %w", root, err)
	}
	return invs, truncated, nil
}

// usedInvitesOf returns inviter's invites that created an account, oldest
// first, reset links left out.
func usedInvitesOf(tx *bbolt.Tx, inviter string) ([]Invite, error) {
	var out []Invite
	if inviter == "" || bytes.IndexByte([]byte(inviter), 0) >= 0 {
		return nil, nil
	}
	prefix := inviterPrefix(inviter)
	c := tx.Bucket(bucketInvitesByInviter).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) < len(prefix)+8 {
			return nil, fmt.Errorf("malformed inviter index key %q", k)
		}
		inv, err := getInvite(tx, string(k[len(prefix)+8:]))
		if err != nil {
			return nil, fmt.Errorf("inviter index of %s: %w", inviter, err)
		}
		if inv.UsedBy != "" && inv.ResetFor == "" {
			out = append(out, inv)
		}
	}
	return out, nil
}

// ChainUp returns the invites above account, nearest first: the invite
// that created account, the one that created its inviter's account, and so
// on, at most max of them. It ends at an inviter no invite of the bot
// created (an admin, or someone on another domain) or at a loop.
func (s branchReader) ChainUp(ctx context.Context, account string, max int) ([]Invite, error) {
	out := []Invite{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		seen := map[string]bool{account: true}
		who := account
		for len(out) < max {
			inv, ok, err := creatorOf(tx, who)
			if err != nil || !ok {
				return err
			}
			out = append(out, inv)
			if seen[inv.Inviter] {
				return nil
			}
			seen[inv.Inviter] = true
			who = inv.Inviter
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chain above %s: %w", account, err)
	}
	return out, nil
}

// creatorOf returns the oldest invite that created account (not a reset
// link), if any.
func creatorOf(tx *bbolt.Tx, account string) (Invite, bool, error) {
	if account == "" {
		return Invite{}, false, nil
	}
	prefix := lenPrefix(account)
	c := tx.Bucket(bucketInvitesByUsedBy).Cursor()
	var best Invite
	found := false
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		inv, err := indexedInvite(tx, k[len(prefix):], "account index")
		if err != nil {
			return Invite{}, false, err
		}
		if inv.ResetFor != "" {
			continue
		}
		if !found || inv.Created.Before(best.Created) {
			best, found = inv, true
		}
	}
	return best, found, nil
}
