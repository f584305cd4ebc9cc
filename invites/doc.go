// Package invites is the domain of invitebot: what an invite is, the
// operations every front end shares (create, list, cancel, grant, revoke,
// pause, audit), the abuse controls around them, usage tracking, and the
// Issuers that mint tokens on the home server. It knows nothing of chat
// text, forms or pages: it returns data and errors, and the front ends put
// them into words.
//
// Service is what the front ends hold. It composes one type per feature,
// each owning its own state, over a small shared core (store, clock, log,
// observer, notifier): roles (admins and default limits), quotaGate (pause
// and quotas at admission, the count of invites being minted), minter
// (admit, mint, record or revoke), canceller, grants, eventLinks,
// requestDesk (account requests), resetLinks (password resets), backups,
// registration (accounts made in the browser), useLedger (the invites'
// lifecycle locks and the uses recorded through them), tracker (usage
// tracking), revoker and serverModule (mod_invitebot, and so how tokens
// are revoked). A feature reaches another only through a field naming it,
// so what depends on what can be read off the types.
package invites
