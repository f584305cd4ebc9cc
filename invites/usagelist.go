package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"durare.org/invitebot/store"
)

// Usage tracking through the server's own list of tokens (UsageLister,
// ejabberd's list_invites): one request answers for every pending invite
// and names the account each used token created, so the inviter learns
// who joined and whoinvited answers for registrations made in an app.

// listUsage settles the pending invites from the server's list of its
// tokens, and records the account of used invites the bot knew only as
// used. It reports whether the server listed its tokens: if not (Prosody,
// or ejabberd refusing the minter the command), the sweep checks tokens
// one by one as before.
func (t *tracker) listUsage(ctx context.Context) bool {
	lister, ok := t.module.issuer.(UsageLister)
	if !ok {
		return false
	}
	asked := t.now()
	usage, err := lister.ListUsage(ctx)
	if err != nil {
		if !errors.Is(err, ErrNotOffered) {
			t.log.WarnContext(ctx, "usage tracking: the server did not list its tokens; checking them one by one",
				slog.Any("err", err))
		}
		return false
	}
	byToken := make(map[string]TokenUsage, len(usage))
	for _, u := range usage {
		byToken[u.Token] = u
		if u.Account.String() != "" {
			t.recordListed(ctx, u)
		}
	}
	if err := t.settleUnlisted(ctx, byToken, asked); err != nil {
		t.log.WarnContext(ctx, "usage tracking: reading the pending invites failed", slog.Any("err", err))
	}
	return true
}

// recordListed records the account a listed token created, for an invite
// of the bot's that is pending or used by an account it does not know.
// Tokens the bot did not hand out (the server's own invites) are left
// alone without a word: the list holds them on every sweep.
func (t *tracker) recordListed(ctx context.Context, u TokenUsage) {
	inv, err := t.store.InviteByToken(ctx, u.Token)
	if err != nil || inv.UsedBy != "" || (inv.State != store.StatePending && inv.State != store.StateUsed) {
		return
	}
	if err := t.uses.RecordReport(ctx, Report{Token: u.Token, Account: u.Account.String()}); err != nil {
		t.log.WarnContext(ctx, "usage tracking: could not record the account a token created; next sweep",
			slog.String("id", inv.ID), slog.Any("err", err))
	}
}

// settleUnlisted settles the pending invites whose token the server no
// longer accepts without naming an account (expired, or used up by a
// cancel's throwaway account), or no longer lists at all. Invites made
// since the list was asked for are not in it and are left alone.
func (t *tracker) settleUnlisted(ctx context.Context, byToken map[string]TokenUsage, asked time.Time) error {
	for after := (store.PendingRef{}); ; {
		page, err := t.store.PendingPage(ctx, after, sweepPage)
		if err != nil {
			return fmt.Errorf("list usage: %w", err)
		}
		for _, ref := range page {
			if u, ok := byToken[ref.Token]; ok && u.Valid {
				continue
			}
			inv := pendingInvite(ref)
			if unlock, ok := t.uses.tryLockInvite(ctx, inv.ID); ok {
				if cur, err := t.store.Invite(ctx, inv.ID); err == nil && cur.State == store.StatePending && cur.Created.Before(asked) {
					t.settleRejected(ctx, inv)
				}
				unlock()
			}
		}
		if len(page) < sweepPage {
			return nil
		}
		after = page[len(page)-1]
	}
}
