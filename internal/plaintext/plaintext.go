// Package plaintext makes free text typed by people safe to show again as
// one line: in a chat reply, an audit entry, a list of inviters. It is the
// one place every front end normalises free text on the way in.
package plaintext

import (
	"strings"
	"unicode"
)

// Line returns s as a single line of plain text: line breaks and tabs
// become spaces, control characters and bidirectional overrides (which can
// forge lines or reorder what a reader sees) are dropped, runs of white
// space collapse to one space, and the ends are trimmed.
func Line(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r),
			r == '\u2028', r == '\u2029', r == '\ufeff', r == unicode.ReplacementChar:
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// Truncate cuts s to at most max bytes on a character boundary, marking a
// cut with "…" (counted in max).
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !startsRune(s[cut]) {
		cut--
	}
	if cut < 0 {
		cut = 0
	}
	return s[:cut] + ellipsis
}

// startsRune reports whether b can begin a UTF-8 encoded character.
func startsRune(b byte) bool { return b&0xC0 != 0x80 }
