// Package mail sends the bot's few mails through an SMTP server: the
// confirmation of an address given on the account request page, and a
// password reset link. It owns the SMTP client (github.com/wneessen/go-mail,
// always over STARTTLS, with credentials from the configuration) and
// the words of the mails with their translations.
//
// It implements what invites names as a Confirmer and a RecoveryMailer, so
// a later SMS gateway fits beside it. Every mail is fixed text: the
// requester chooses only the recipient, which invites has checked to be one
// plain address, and the language, which picks among the built-in texts. So
// the bot cannot be made into a relay for anyone else's words or headers.
package mail
