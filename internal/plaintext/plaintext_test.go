package plaintext

import (
	"testing"
	"unicode/utf8"
)

func TestLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"trusted friend", "trusted friend"},
		{"  two\nlines  ", "two lines"},
		{"forged\r\n2026-11-26 10:00 UTC  admin@x  grant", "forged 2026-11-26 10:00 UTC admin@x grant"},
		{"spam wave\nInvites are allowed again.", "spam wave Invites are allowed again."},
		{"evil\u202egnp.exe", "evilgnp.exe"},
		{"isolate\u2066x\u2069", "isolatex"},
		{"tab\tand\u0000nul\u0007bell", "tab andnulbell"},
		{"line\u2028separator", "line separator"},
		{"ünïcödé 例え", "ünïcödé 例え"},
		{"\n\t ", ""},
	}
	for _, tt := range tests {
		if got := Line(tt.in); got != tt.want {
			t.Errorf("Line(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("short", 10); got != "short" {
		t.Errorf("short: %q", got)
	}
	got := Truncate("ääääää", 8) // 12 bytes
	if len(got) > 8 || !utf8.ValidString(got) || got != "ää…" {
		t.Errorf("Truncate on a rune boundary = %q (%d bytes)", got, len(got))
	}
}

func FuzzLine(f *testing.F) {
	for _, s := range []string{"a\nb", "\u202e", "x\u2066y", "ä\tö"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Line(s)
		for _, r := range got {
			if r == '\n' || r == '\r' || r == '\u202e' || r == '\u2066' {
				t.Fatalf("Line(%q) = %q keeps %U", s, got, r)
			}
		}
		if Line(got) != got {
			t.Fatalf("Line is not idempotent on %q", s)
		}
	})
}
