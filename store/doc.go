// Package store keeps invitebot's durable state in a single bbolt file:
// invites, grants, the audit log, event links, account requests and the
// pause switch, plus the schema version that lets a newer program upgrade
// an older file in place. It also writes backups of the file and reads
// it back for export.
//
// Store is the one type callers use. Its methods come from small tables it
// embeds, one per kind of record, each in its own file: inviteTable
// (invites.go), quotaIndex (quota.go), usageTable (usage.go), grantTable
// (grants.go), auditLog (audit.go), eventTable (events.go), requestTable
// (requests.go), settingsTable (settings.go), backupWriter (backup.go),
// exporter (export.go) and migrator (migrate.go). They share one base
// (base.go): the open file, the clock, the id source and the transaction
// helpers, of which appendAudit lets any table write its audit entry in
// its own transaction.
//
// Layout (all values are JSON unless noted; created is 8-byte big-endian
// Unix nanoseconds, expiry the same with an unknown expiry as all ones,
// rank an 8-byte big-endian position, lenstr a string preceded by its
// uvarint length):
//
//	meta                        schema_version -> decimal ASCII
//	invites                     id -> Invite
//	invites_by_token            token -> id        (uniqueness, lookups by token)
//	invites_by_inviter          inviter 0x00 created id -> rank among the inviter's
//	invites_by_created          created id -> rank, inviter (0x00 inviter for an event link's invite)
//	event_invites_by_inviter    inviter 0x00 created id -> rank among the inviter's event link invites
//	invites_pending             expiry id -> lenstr(token) inviter (pending invites)
//	invites_pending_by_inviter  inviter 0x00 expiry id -> empty
//	pending_counts              inviter -> count (8-byte BE) of pending invites not from event links
//	invites_unrevoked           expiry id -> empty (cancelled, token not revoked)
//	invites_by_used_by          lenstr(account) id -> empty
//	grants                      bare JID -> Grant
//	audit                       seq (8-byte BE, from NextSequence) -> AuditEntry
//	audit_by_about              lenstr(actor or subject) seq -> empty
//	settings                    pause -> Pause
//	requests                    id -> Request      (account requests from the web page)
//	events                      id -> EventLink
//
// The indexes are described in indexes.go. They exist so that nothing on a
// request path or a timer reads more of the file than its answer: a
// community's history grows to hundreds of thousands of records, and a scan
// of them costs seconds and pulls the whole file into memory.
//
// Every mutation that has an audit entry writes it in the same transaction,
// so the log can never disagree with the data it describes.
//
// The store compares JIDs and tokens byte for byte; normalising them is the
// caller's business because the store must not know XMPP.
package store
