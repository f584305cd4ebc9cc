package ejabberd

import (
	"context"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
)

// listColumns is how many " : "-separated columns one list_invites value
// has: token, valid, created_at, expires, type, inviter, invitee,
// account_name, token_uri, landing_page.
const listColumns = 10

// ListUsage runs list_invites and returns, for every token of the domain,
// whether ejabberd still accepts it and which account used it.
func (e *Issuer) ListUsage(ctx context.Context) ([]invites.TokenUsage, error) {
	res, err := e.API(ctx, CmdListInvites)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	var out []invites.TokenUsage
	for _, fld := range res.Fields {
		if fld.Var != "invites" {
			continue
		}
		for _, v := range fld.Values {
			u, err := parseInvite(v, e.Server.Domainpart())
			if err != nil {
				return nil, fmt.Errorf("list tokens: %w", err)
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// parseInvite reads one list_invites value. The account is the invitee
// (the JID registered with an account or reset token), else the
// account_name on the domain for a roster invite that created one.
// Columns are joined by " : "; none holds a space, and the last one may
// be empty with the trailing space lost, so " :" splits them.
func parseInvite(v, domain string) (invites.TokenUsage, error) {
	cols := strings.Split(strings.TrimSpace(v), " :")
	if len(cols) != listColumns {
		// Never quote v: it holds a token.
		return invites.TokenUsage{}, fmt.Errorf("an invite of %d columns, not %d", len(cols), listColumns)
	}
	for i := range cols {
		cols[i] = strings.TrimSpace(cols[i])
	}
	u := invites.TokenUsage{Token: cols[0], Valid: cols[1] == "true"}
	invitee, accountName, typ := cols[6], cols[7], cols[4]
	var err error
	switch {
	case invitee != "":
		u.Account, err = jid.Parse(invitee)
	case typ == "roster_only" && accountName != "":
		u.Account, err = jid.New(accountName, domain, "")
	}
	if err != nil {
		return invites.TokenUsage{}, fmt.Errorf("token %s: account: %w", invites.RedactToken(u.Token), err)
	}
	u.Account = u.Account.Bare()
	return u, nil
}
