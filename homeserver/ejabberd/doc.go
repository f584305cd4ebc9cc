// Package ejabberd is the bot's side of an ejabberd server (26.07 and
// later, with mod_invites and mod_adhoc_api): minting invites as the
// minter account through XEP-0401's create-account command, and password
// reset links, usage, deletion and the account check through ejabberd's
// API commands offered as ad-hoc commands; and the ejabberd.yml fragment
// that gives the minter account exactly those rights.
//
// ejabberd serves its invite command only to accounts of the same host (a
// component gets item-not-found), so the bot always reaches ejabberd
// through the minter account's c2s session.
package ejabberd
