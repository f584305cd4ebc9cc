package invites

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"github.com/xdg-go/stringprep"
	"golang.org/x/text/secure/precis"
)

// MaxUsernameBytes bounds a username, in bytes after the server's mapping.
// RFC 7622 allows 1023, but servers keep accounts in files named after the
// username: Prosody writes every byte outside [A-Za-z0-9] as %xx, so 50
// Cyrillic letters already make a file name longer than the 255 bytes a
// file system allows, and the server answers "Error saving to storage".
// 64 bytes stay below that whatever the characters, and are more than
// anyone types as an address.
const MaxUsernameBytes = 64

// maxRawUsernameBytes bounds the input before any mapping, so that a huge
// form field costs nothing; mapping can shrink a string (it drops soft
// hyphens and the like), but not by this much in any sane input.
const maxRawUsernameBytes = 4 * MaxUsernameBytes

// Username errors. Each is an ErrUsernameRefused, so a front end that does
// not tell them apart still shows the user a refusal they can fix.
var (
	// ErrUsernameInvalid means the name has a character an address cannot
	// hold (space, @, /, …), one the server does not know, or one the page
	// does not offer (only letters, digits, dots and dashes).
	ErrUsernameInvalid = fmt.Errorf("%w: invalid username", ErrUsernameRefused)
	// ErrUsernameTooLong means the name is longer than MaxUsernameBytes
	// once mapped.
	ErrUsernameTooLong = fmt.Errorf("%w: username longer than %d bytes", ErrUsernameRefused, MaxUsernameBytes)
	// ErrUsernameConfusable means the name mixes scripts (a Cyrillic а in
	// a Latin name) or is written in letters that imitate plain Latin
	// ones, so it could pass for another person's address.
	ErrUsernameConfusable = fmt.Errorf("%w: username mixes scripts or imitates another", ErrUsernameRefused)
)

// nodeprep is RFC 6122's Nodeprep profile of stringprep (RFC 3454), which
// Prosody (0.12 and 13) and ejabberd apply to a username before creating
// the account: case folded with ß → ss and ς → σ, NFKC, prohibited
// characters refused. Prosody's registration uses it strictly, refusing
// code points unassigned in Unicode 3.2 (table A.1), and so does this.
var nodeprep = stringprep.Profile{
	Mappings:  []stringprep.Mapping{stringprep.TableB1, stringprep.TableB2},
	Normalize: true,
	Prohibits: []stringprep.Set{
		stringprep.TableA1,
		stringprep.TableC1_1, stringprep.TableC1_2, stringprep.TableC2_1, stringprep.TableC2_2,
		stringprep.TableC3, stringprep.TableC4, stringprep.TableC5, stringprep.TableC6,
		stringprep.TableC7, stringprep.TableC8, stringprep.TableC9,
		nodeprepProhibited,
	},
	CheckBiDi: true,
}

// nodeprepProhibited is what Nodeprep prohibits beyond stringprep's tables:
// " & ' / : < > @ (sorted, as stringprep.Set needs).
var nodeprepProhibited = stringprep.Set{
	{'"', '"'}, {'&', '\''}, {'/', '/'}, {':', ':'}, {'<', '<'}, {'>', '>'}, {'@', '@'},
}

// PrepareUsername maps a username typed by a person the way the server will
// (so "Straße" becomes the "strasse" Prosody creates) and refuses names
// that cannot or should not become an address: errors are
// ErrUsernameInvalid, ErrUsernameTooLong and ErrUsernameConfusable.
//
// The rules: the server's Nodeprep mapping must accept it; once mapped it
// holds at most MaxUsernameBytes; it must also be a valid PRECIS username
// that PRECIS leaves unchanged, so the JID library and a PRECIS server see
// the same name; it holds only letters, combining marks, digits, dots and
// dashes, as the page's hint says; and it is not confusable (see
// confusable).
func PrepareUsername(raw string) (string, error) {
	if len(raw) > maxRawUsernameBytes {
		return "", ErrUsernameTooLong
	}
	name, err := nodeprep.Prepare(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUsernameInvalid, err)
	}
	if name == "" {
		return "", ErrUsernameInvalid
	}
	if len(name) > MaxUsernameBytes {
		return "", ErrUsernameTooLong
	}
	if p, err := precis.UsernameCaseMapped.String(name); err != nil || p != name {
		return "", fmt.Errorf("%w: not stable under PRECIS", ErrUsernameInvalid)
	}
	for _, r := range name {
		if !unicode.In(r, unicode.L, unicode.M, unicode.Nd) && r != '.' && r != '-' {
			return "", fmt.Errorf("%w: %q is neither letter, digit, dot nor dash", ErrUsernameInvalid, r)
		}
	}
	if err := confusable(name); err != nil {
		return "", err
	}
	return name, nil
}

// scriptMixes are the scripts that may share a name: besides names in one
// script, those UTS #39 calls "highly restrictive" (Japanese, Chinese and
// Korean writing mix these as a matter of course).
var scriptMixes = []map[string]bool{
	{"Latin": true, "Han": true, "Hiragana": true, "Katakana": true},
	{"Latin": true, "Han": true, "Bopomofo": true},
	{"Latin": true, "Han": true, "Hangul": true},
}

// errNonASCIILookalike names the second way of imitating a name.
var errNonASCIILookalike = errors.New("looks like a plain Latin name but is not one")

// confusable refuses the two kinds of look-alike names UTS #39 describes,
// with Unicode's own data rather than a list of our own: mixed-script names
// (Script property, from the standard library's tables) and whole-script
// confusables, detected as a name that is not plain ASCII but whose
// skeleton (UTS #39's confusables.txt mapping) is, like an all-Cyrillic
// "раураl". ASCII names are left alone: they are what the others imitate.
func confusable(name string) error {
	scripts := map[string]bool{}
	for _, r := range name {
		if s := scriptOf(r); s != "" {
			scripts[s] = true
		}
	}
	if len(scripts) > 1 && !allowedMix(scripts) {
		return fmt.Errorf("%w: %d scripts", ErrUsernameConfusable, len(scripts))
	}
	if !isASCII(name) && isASCII(confusables.Skeleton(name)) {
		return fmt.Errorf("%w: %w", ErrUsernameConfusable, errNonASCIILookalike)
	}
	return nil
}

// scriptOf returns the Unicode script of r, or "" for Common and Inherited
// (digits, punctuation, combining marks), which go with any script.
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if unicode.IsLetter(r) {
			return "Latin"
		}
		return ""
	}
	if unicode.In(r, unicode.Common, unicode.Inherited) {
		return ""
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

// allowedMix reports whether the scripts all fit one of scriptMixes.
func allowedMix(scripts map[string]bool) bool {
	for _, mix := range scriptMixes {
		fits := true
		for s := range scripts {
			fits = fits && mix[s]
		}
		if fits {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
