// Package bot is invitebot's XMPP side: the connections to the server and
// the commands people send over them. It turns stanzas into calls on
// invites.Service and never touches the database itself, so the rules live
// in one place whichever way a request arrives.
//
// A Link holds the XEP-0114 component connection, reconnecting and pinging
// it. A Bot is the Link's stanza handler: it serves chat commands, XEP-0050
// ad-hoc commands with their data forms, service discovery and the usage
// reports of the server's module, on a bounded set of workers shared
// fairly between senders. What the server's own protocol looks like is the
// homeserver packages' business; cmd/invitebot wires them in. A Notifier sends people news they did not
// ask for right then (an invite of theirs was used).
//
// Every command is one entry in the operation table (ops.go): the chat
// grammar, help, the ad-hoc command list and its forms are all derived
// from it.
package bot
