package invites

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"sync"
	"time"
)

// Tree links: the picture of a branch is a web page, reached by a link the
// bot sends over XMPP to the one who asked. The link is the only key the
// page needs (no web passwords), so it is unguessable (128 random bits),
// opens once, lasts treeLinkTTL, and shows the branch with the rights its
// owner holds when it is opened: an admin removed meanwhile sees nothing.
// Links live in memory only; a restart ends them.

// Tunables of tree links.
const (
	treeLinkTTL = 15 * time.Minute
	// treeLinkMax bounds the links held at once: each is a few bytes, but
	// whoever may ask for trees decides how many there are.
	treeLinkMax   = 1000
	treeLinkBytes = 16
)

// Errors of tree links.
var (
	// ErrNoSuchTreeLink means the link was never made (or the bot
	// restarted since).
	ErrNoSuchTreeLink = errors.New("no such tree link")
	// ErrTreeLinkGone means the link was opened already or expired.
	ErrTreeLinkGone = errors.New("tree link used or expired")
)

var treeTokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

type treeLink struct {
	owner, who string
	expires    time.Time
	used       bool
}

// treeLinks makes and opens the one-time links to branch pictures.
type treeLinks struct {
	*core
	roles  *roles
	branch *brancher

	mu    sync.Mutex
	links map[string]*treeLink // by token; guarded by mu
}

func newTreeLinks(c *core, rl *roles, br *brancher) *treeLinks {
	return &treeLinks{core: c, roles: rl, branch: br, links: make(map[string]*treeLink)}
}

// TreeLink makes a one-time token for the picture of who's branch, for a
// only; a may see that branch (Branch's rules) or gets its error.
func (t *treeLinks) TreeLink(ctx context.Context, a Actor, who string) (string, error) {
	if _, err := t.branch.Branch(ctx, a, who); err != nil {
		return "", err
	}
	b := make([]byte, treeLinkBytes)
	_, _ = rand.Read(b) // never fails (Go ≥ 1.24)
	token := treeTokenEncoding.EncodeToString(b)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, l := range t.links {
		if now.After(l.expires) {
			delete(t.links, k)
		}
	}
	if len(t.links) >= treeLinkMax {
		return "", errors.New("too many tree links open; try again in a few minutes")
	}
	t.links[token] = &treeLink{owner: a.jid, who: who, expires: now.Add(treeLinkTTL)}
	return token, nil
}

// OpenTreeLink spends token and returns the branch it shows, read with
// the rights its owner holds now.
func (t *treeLinks) OpenTreeLink(ctx context.Context, token string) (Branch, error) {
	t.mu.Lock()
	l, ok := t.links[token]
	var owner, who string
	gone := ok && (l.used || t.now().After(l.expires))
	if ok && !gone {
		l.used = true // kept until it expires, so a second open says gone
		owner, who = l.owner, l.who
	}
	t.mu.Unlock()
	switch {
	case !ok:
		return Branch{}, ErrNoSuchTreeLink
	case gone:
		return Branch{}, ErrTreeLinkGone
	}
	a, err := t.roles.Actor(ctx, owner)
	if err != nil {
		return Branch{}, err
	}
	return t.branch.Branch(ctx, a, who)
}
