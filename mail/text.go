package mail

import (
	"strings"
)

// text is the words of the mails in one language. Every placeholder is
// filled with data the bot made (a code, a link, a domain, a time), never
// with anything a requester typed.
type text struct {
	// ConfirmSubject takes the domain.
	ConfirmSubject string
	// ConfirmBody takes the domain, the link, the code and the expiry.
	ConfirmBody string
	// AccountSubject takes the domain.
	AccountSubject string
	// AccountBody takes the account, the code and the expiry.
	AccountBody string
	// ResetSubject takes the domain.
	ResetSubject string
	// ResetBody takes the account, the link and the expiry.
	ResetBody string
	// DateLayout writes expiry times (in UTC).
	DateLayout string
}

// english is the default and the fallback of every other language.
var english = text{
	ConfirmSubject: "Confirm your address for %[1]s",
	ConfirmBody: `Someone asked for an account on %[1]s and gave this address.
If it was you, open this link to confirm it:

%[2]s

Or type this code on the page where you asked: %[3]s

The code works until %[4]s. If it was not you, ignore this mail:
nothing happens without the code.
`,
	AccountSubject: "Confirm your address for password resets on %[1]s",
	AccountBody: `Your account %[1]s asked to keep this address, so that a
forgotten password can be reset by mail. To confirm, send this to the
bot in your chat app:

email confirm %[2]s

The code works until %[3]s. If it was not you, ignore this mail:
nothing is kept without the code.
`,
	ResetSubject: "Password reset for %[1]s",
	ResetBody: `Someone asked to reset the password of %[1]s.
If it was you, open this link and choose a new password:

%[2]s

The link works once, until %[3]s. If it was not you, ignore this mail:
your password stays as it is.
`,
	DateLayout: "2 January 2006 15:04 MST",
}

// german is the German mail.
var german = text{
	ConfirmSubject: "Bestätige deine Adresse für %[1]s",
	ConfirmBody: `Jemand hat ein Konto auf %[1]s angefragt und diese Adresse angegeben.
Warst du das, öffne diesen Link, um sie zu bestätigen:

%[2]s

Oder gib auf der Seite, auf der du angefragt hast, diesen Code ein: %[3]s

Der Code gilt bis %[4]s. Warst du es nicht, ignoriere diese Mail:
Ohne den Code passiert nichts.
`,
	AccountSubject: "Bestätige deine Adresse zum Zurücksetzen von Passwörtern auf %[1]s",
	AccountBody: `Dein Konto %[1]s möchte diese Adresse behalten, damit ein vergessenes
Passwort per Mail zurückgesetzt werden kann. Zum Bestätigen schick dies
dem Bot in deiner Chat-App:

email confirm %[2]s

Der Code gilt bis %[3]s. Warst du es nicht, ignoriere diese Mail:
Ohne den Code wird nichts behalten.
`,
	ResetSubject: "Passwort zurücksetzen für %[1]s",
	ResetBody: `Jemand möchte das Passwort von %[1]s zurücksetzen.
Warst du das, öffne diesen Link und wähle ein neues Passwort:

%[2]s

Der Link gilt einmal, bis %[3]s. Warst du es nicht, ignoriere diese Mail:
Dein Passwort bleibt, wie es ist.
`,
	DateLayout: "2.1.2006 15:04 MST",
}

// texts are the languages the mails are written in, by base language.
var texts = map[string]text{"en": english, "de": german}

// textFor returns the mail text for a BCP 47 tag (the language the page
// was shown in), falling back to English.
func textFor(lang string) text {
	base, _, _ := strings.Cut(strings.ToLower(lang), "-")
	if t, ok := texts[base]; ok {
		return t
	}
	return english
}

// Languages lists the languages the mails are written in.
func Languages() []string { return []string{"en", "de"} }
