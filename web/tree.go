package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"durare.org/invitebot/invites"
)

// The tree page, /t/{token}: who invited whom in one branch, drawn as
// nested lists the browser folds and unfolds itself (<details>), so it
// needs no script. The token is a one-time link the bot sent over XMPP
// (invites.TreeLink): the second open, or one after 15 minutes, is gone.

// Trees is what the tree page needs from the invites service.
type Trees interface {
	// OpenTreeLink spends token and returns the branch it shows;
	// invites.ErrNoSuchTreeLink, ErrTreeLinkGone, or the branch's own
	// refusal (invites.ErrForbidden, ErrNotInBranch).
	OpenTreeLink(ctx context.Context, token string) (invites.Branch, error)
}

// Bounds of one drawing. A bot wave's branch of 10 k accounts stays a page
// a phone opens: at most treeMaxDrawn accounts are drawn, treeMaxChildren
// under one account and treeMaxDepth levels deep; the rest is counted.
// Levels below treeOpenDepth, and accounts with more than treeOpenBelow
// under them, start folded.
const (
	treeMaxDrawn    = 1500
	treeMaxChildren = 100
	treeMaxDepth    = 25
	treeOpenDepth   = 2
	treeOpenBelow   = 100
)

// TreeURL is the address of the tree page for token.
func TreeURL(publicURL, token string) string {
	return strings.TrimRight(publicURL, "/") + "/t/" + url.PathEscape(token)
}

// treeView is the tree page's part of pageData.
type treeView struct {
	Summary, Truncated, More string
	// Up is the chain above, top first, one sentence each.
	Up    []string
	Nodes []*treeNode
}

// treeNode is one account drawn.
type treeNode struct {
	Account, Meta, Below string
	// State is the account's state, a class name: active, suspended.
	State    string
	Open     bool
	Children []*treeNode
	// More says what is not drawn under it; moreN counts it.
	More  string
	moreN int
}

type treePages struct {
	site
	trees Trees
}

func (p *treePages) treePage(w http.ResponseWriter, r *http.Request) {
	br, err := p.trees.OpenTreeLink(r.Context(), r.PathValue("token"))
	switch {
	case errors.Is(err, invites.ErrTreeLinkGone):
		p.renderError(w, r, http.StatusGone, p.text.ResetGoneTitle, p.text.TreeLinkGone, "") // "This link …", not "invitation"
		return
	case errors.Is(err, invites.ErrNoSuchTreeLink):
		p.renderError(w, r, http.StatusNotFound, p.text.EventNotFoundTitle, p.text.TreeLinkUnknown, "") // "Link not found"
		return
	case errors.Is(err, invites.ErrForbidden), errors.Is(err, invites.ErrNotInBranch):
		p.renderError(w, r, http.StatusForbidden, p.text.ForbiddenTitle, p.text.TreeForbidden, "")
		return
	case err != nil:
		p.log.ErrorContext(r.Context(), "tree page", "err", err)
		p.internal(w, r)
		return
	}
	p.render(w, r, http.StatusOK, "tree", pageData{Title: fmt.Sprintf(p.text.TreeTitle, br.Root), Tree: p.view(br)})
}

// view lays the branch out for the template within the drawing's bounds.
func (p *treePages) view(br invites.Branch) *treeView {
	v := &treeView{Summary: fmt.Sprintf(p.text.TreeSummary, len(br.Accounts), len(br.Depths()), br.Suspended())}
	if br.Truncated {
		v.Truncated = p.text.TreeTruncated
	}
	for i := len(br.Up) - 1; i >= 0; i-- {
		l := br.Up[i]
		v.Up = append(v.Up, fmt.Sprintf(p.text.TreeInvitedBy, l.Invite.Inviter, l.Account, p.text.date(l.Invite.Created.UTC()))+
			" ("+p.viaText(l.Invite)+"; "+p.inviterText(l.InviterState)+")")
	}
	// parents[d] is the node drawn at depth d on the way to here; nil
	// when that level is not drawn.
	parents := []*treeNode{nil}
	drawn, notDrawn := 0, 0
	skipBelow := 0 // while > 0, accounts deeper than this are inside a subtree not drawn
	for _, acc := range br.Accounts {
		if skipBelow > 0 && acc.Depth > skipBelow {
			continue
		}
		skipBelow = 0
		parents = parents[:min(len(parents), acc.Depth)]
		var siblings *[]*treeNode
		var parent *treeNode
		if acc.Depth == 1 {
			siblings = &v.Nodes
		} else if len(parents) >= acc.Depth && parents[acc.Depth-1] != nil {
			parent = parents[acc.Depth-1]
			siblings = &parent.Children
		}
		if siblings == nil || drawn >= treeMaxDrawn || len(*siblings) >= treeMaxChildren || acc.Depth > treeMaxDepth {
			// Not drawn: counted with its subtree on the nearest drawn
			// ancestor (or the page).
			n := 1 + acc.Below
			notDrawn += n
			if parent != nil {
				parent.moreN += n
				parent.More = fmt.Sprintf(p.text.TreeMoreHere, parent.moreN)
			}
			skipBelow = acc.Depth
			continue
		}
		node := p.node(acc)
		*siblings = append(*siblings, node)
		drawn++
		for len(parents) <= acc.Depth {
			parents = append(parents, nil)
		}
		parents[acc.Depth] = node
	}
	if notDrawn > 0 {
		v.More = fmt.Sprintf(p.text.TreeMore, notDrawn)
	}
	return v
}

func (p *treePages) node(acc invites.BranchAccount) *treeNode {
	meta := []string{fmt.Sprintf(p.text.TreeCreated, p.text.date(acc.Invite.Created.UTC())), p.viaText(acc.Invite), p.stateText(acc.State)}
	if acc.Inviter != invites.InviterNone {
		meta = append(meta, p.inviterText(acc.Inviter))
	}
	n := &treeNode{Account: acc.Account, Meta: strings.Join(meta, " · "), State: string(acc.State),
		Open: acc.Depth < treeOpenDepth && acc.Below <= treeOpenBelow}
	if acc.Children > 0 {
		n.Below = fmt.Sprintf(p.text.TreeBelow, acc.Children, acc.Below)
	}
	return n
}

func (p *treePages) viaText(inv invites.Invite) string {
	switch {
	case inv.Event != "":
		return fmt.Sprintf(p.text.TreeEvent, inv.Event)
	case inv.Request != "":
		return fmt.Sprintf(p.text.TreeRequest, inv.Request)
	}
	return fmt.Sprintf(p.text.TreeInvite, inv.ID)
}

func (p *treePages) stateText(s invites.AccountState) string {
	switch s {
	case invites.AccountSuspended:
		return p.text.TreeSuspended
	case invites.AccountDeleted:
		return p.text.TreeDeleted
	}
	return p.text.TreeActive
}

func (p *treePages) inviterText(s invites.InviterState) string {
	switch s {
	case invites.InviterGranted:
		return p.text.TreeGranted
	case invites.InviterAdmin:
		return p.text.TreeAdmin
	}
	return p.text.TreeRevoked
}
