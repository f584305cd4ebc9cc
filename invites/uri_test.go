package invites

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		in      string
		want    InviteURI
		wantErr bool
	}{
		{in: "xmpp:durare.test?register;preauth=abc123", want: InviteURI{"durare.test", "abc123"}},
		{in: "xmpp:durare.test?register;ibr=y;preauth=a%2Bb", want: InviteURI{"durare.test", "a+b"}},
		{in: "xmpp:durare.test?register", wantErr: true},
		{in: "xmpp:durare.test?roster;preauth=abc", wantErr: true},
		{in: "https://durare.test/?register;preauth=abc", wantErr: true},
		{in: "xmpp:?register;preauth=abc", wantErr: true},
		{in: "%zz", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseURI(tc.in)
		if tc.wantErr {
			if !errors.Is(err, ErrBadURI) {
				t.Errorf("ParseURI(%q) error = %v, want ErrBadURI", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseURI(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestRedactToken(t *testing.T) {
	if got := RedactToken("abcdefghijkl"); got != "abcd…" {
		t.Errorf("RedactToken = %q", got)
	}
	if got := RedactToken("abc"); got != "…" {
		t.Errorf("RedactToken(short) = %q", got)
	}
}

// FuzzParseURI: any input either parses into a non-empty token or fails
// with ErrBadURI, and an error never carries the token (errors reach logs).
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"xmpp:d.org?register;preauth=T", "xmpp:d.org?register;preauth=%zz", "xmpp:%zz?register;preauth=secret", "::", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if !errors.Is(err, ErrBadURI) {
				t.Fatalf("ParseURI(%q) error %v is not ErrBadURI", s, err)
			}
			if _, secret, ok := strings.Cut(s, "preauth="); ok && len(secret) >= 4 && strings.Contains(err.Error(), secret) {
				t.Fatalf("error quotes the token: %v", err)
			}
			return
		}
		if u.Token == "" || u.Domain == "" {
			t.Fatalf("ParseURI(%q) = %+v without error", s, u)
		}
	})
}
