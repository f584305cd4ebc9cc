// Package web is the bot's HTTP face: a landing page per invite with the
// xmpp: link, a QR code and client recommendations, registration in the
// browser for clients that cannot use preauth URIs, the account request
// form and its status pages (requests.go), the event link pages that hand
// each visitor an invite of their own (event.go), and the operations
// endpoints /healthz and /metrics.
//
// It holds no invite logic: it looks invites up and asks the invites
// service to register accounts, through small interfaces (Invites,
// Requests, Events, Health). Passwords pass through to the service and
// are never logged or kept.
//
// Each kind of page is a type of its own that owns its state
// (invitePages, requestPages, eventPages), and all embed the site they
// share: configuration, templates, CSRF and the language of the request
// being served. Every request is served by a copy of its page type, so
// the language chosen for one request never reaches another.
package web
