package invites

import (
	"errors"
	"fmt"

	"github.com/xdg-go/stringprep"
)

// The passwords a server accepts. Prosody prepares every password with
// SASLprep (RFC 4013) before it hashes it, and refuses one that fails
// ("password fails SASLprep") after the registration form has gone out, so
// a browser registration would end in a refusal the visitor cannot make
// sense of. The same rule here refuses such a password before any round
// trip, for every registration path (RegisterAccount checks it).
//
// Prosody's SASLprep (util.encodings, built on libidn's stringprep) works
// in a buffer of 1024 bytes: a password of 1024 bytes or more fails, and so
// does one whose prepared form needs 1024 bytes or more (one U+FDFA becomes
// 33 bytes). Measured on Prosody 0.12.3, 13.0.1 and 13.0.8, which answer
// alike; it allows unassigned code points (the "query" profile), so a
// password with a character newer than Unicode 3.2 (an emoji) passes.

// MaxPasswordBytes is the longest password, in bytes of UTF-8, that
// Prosody accepts, before and after SASLprep.
const MaxPasswordBytes = 1023

// Errors of CheckPassword. Both are ErrUsernameRefused: the person can
// choose another password, and the invite stays usable.
var (
	// ErrPasswordTooLong means the password, or its SASLprep form, is
	// longer than MaxPasswordBytes.
	ErrPasswordTooLong = fmt.Errorf("%w: password longer than %d bytes", ErrUsernameRefused, MaxPasswordBytes)
	// ErrPasswordInvalid means the password holds a character SASLprep
	// prohibits (a control character, a private-use or non-character code
	// point, ...), mixes right-to-left and left-to-right text the way
	// SASLprep forbids, or is nothing but characters it removes.
	ErrPasswordInvalid = fmt.Errorf("%w: password refused by SASLprep", ErrUsernameRefused)
)

// CheckPassword reports whether the server will accept password: nil, or
// ErrPasswordTooLong or ErrPasswordInvalid. The person's own rules (a
// minimum length) are the front end's to add.
func CheckPassword(password string) error {
	if len(password) > MaxPasswordBytes {
		return ErrPasswordTooLong
	}
	prepared, err := saslprepQuery.Prepare(password)
	var serr stringprep.Error
	switch {
	case errors.As(err, &serr):
		// The message only: the rune would put part of the password in a
		// log.
		return fmt.Errorf("%w: %s", ErrPasswordInvalid, serr.Msg)
	case err != nil:
		return ErrPasswordInvalid
	case prepared == "":
		return fmt.Errorf("%w: nothing left after mapping", ErrPasswordInvalid)
	case len(prepared) > MaxPasswordBytes:
		return ErrPasswordTooLong
	}
	return nil
}

// saslprepQuery is SASLprep as Prosody applies it: RFC 4013 with
// unassigned code points allowed (stringprep's "query" strings; the
// library's own SASLprep profile refuses them, and would refuse emoji
// Prosody accepts).
var saslprepQuery = stringprep.Profile{
	Mappings:  []stringprep.Mapping{stringprep.TableB1, nonASCIISpaceToSpace()},
	Normalize: true,
	Prohibits: []stringprep.Set{
		stringprep.TableC1_2, stringprep.TableC2_1, stringprep.TableC2_2, stringprep.TableC3,
		stringprep.TableC4, stringprep.TableC5, stringprep.TableC6, stringprep.TableC7,
		stringprep.TableC8, stringprep.TableC9,
	},
	CheckBiDi: true,
}

// nonASCIISpaceToSpace is RFC 4013's mapping of the non-ASCII spaces
// (stringprep table C.1.2) to SPACE.
func nonASCIISpaceToSpace() stringprep.Mapping {
	m := stringprep.Mapping{}
	for _, rr := range stringprep.TableC1_2 {
		for r := rr[0]; r <= rr[1]; r++ {
			m[r] = []rune{' '}
		}
	}
	return m
}
