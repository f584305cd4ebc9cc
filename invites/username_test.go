package invites_test

import (
	"errors"
	"strings"
	"testing"

	"durare.org/invitebot/invites"
)

func TestPrepareUsername(t *testing.T) {
	tests := []struct {
		raw  string
		want string // "" when refused
		err  error
	}{
		// The server's mapping (Nodeprep).
		{raw: "alice", want: "alice"},
		{raw: "Alice", want: "alice"},
		{raw: "straße", want: "strasse"},
		{raw: "STRASSE", want: "strasse"},
		{raw: "Λόγος", want: "λόγοσ"},
		{raw: "ｐａｕｌ", want: "paul"},       // full width, as phones type it
		{raw: "jo\u00adhn", want: "john"}, // soft hyphen mapped to nothing
		{raw: "josé", want: "josé"},
		{raw: "jose\u0301", want: "josé"}, // NFKC composes
		{raw: "chen.wei-2", want: "chen.wei-2"},
		{raw: "иван", want: "иван"},
		{raw: "山田", want: "山田"},
		{raw: "やまだ太郎", want: "やまだ太郎"},
		{raw: "김민준", want: "김민준"},
		{raw: "ali2000", want: "ali2000"},
		{raw: "محمد", want: "محمد"},

		// What an address cannot hold, or the server does not know.
		{raw: "", err: invites.ErrUsernameInvalid},
		{raw: "\u00ad", err: invites.ErrUsernameInvalid},
		{raw: "a b", err: invites.ErrUsernameInvalid},
		{raw: "a@b", err: invites.ErrUsernameInvalid},
		{raw: "a/b", err: invites.ErrUsernameInvalid},
		{raw: "a:b", err: invites.ErrUsernameInvalid},
		{raw: "a'b", err: invites.ErrUsernameInvalid},
		{raw: "a\x00b", err: invites.ErrUsernameInvalid},
		{raw: "a\u200bb", want: "ab"},                        // zero width space mapped to nothing
		{raw: "\U0001F600", err: invites.ErrUsernameInvalid}, // unassigned in Unicode 3.2
		{raw: "\u0242", err: invites.ErrUsernameInvalid},     // likewise (Latin, Unicode 5.0)
		{raw: "\u05d0a", err: invites.ErrUsernameInvalid},    // BiDi rules
		// What the page's hint does not offer.
		{raw: "a_b", err: invites.ErrUsernameInvalid},
		{raw: "a+b", err: invites.ErrUsernameInvalid},
		{raw: "a!", err: invites.ErrUsernameInvalid},

		// Length, counted after mapping.
		{raw: strings.Repeat("a", invites.MaxUsernameBytes), want: strings.Repeat("a", invites.MaxUsernameBytes)},
		{raw: strings.Repeat("a", invites.MaxUsernameBytes+1), err: invites.ErrUsernameTooLong},
		{raw: strings.Repeat("ж", invites.MaxUsernameBytes/2), want: strings.Repeat("ж", invites.MaxUsernameBytes/2)},
		{raw: strings.Repeat("ж", 50), err: invites.ErrUsernameTooLong},
		{raw: strings.Repeat("a", 1000), err: invites.ErrUsernameTooLong},
		{raw: strings.Repeat("ß", 33), err: invites.ErrUsernameTooLong}, // 66 bytes once ss

		// Look-alikes.
		{raw: "\u0430dmin", err: invites.ErrUsernameConfusable},                     // Cyrillic а
		{raw: "r\u03bfot", err: invites.ErrUsernameConfusable},                      // Greek ο
		{raw: "\u0455\u0441\u043e\u0440\u0435", err: invites.ErrUsernameConfusable}, // all Cyrillic "scope"
		{raw: "\u0430\u0441\u0435", err: invites.ErrUsernameConfusable},             // all Cyrillic "ace"
		{raw: "\u0251dmin", err: invites.ErrUsernameConfusable},                     // Latin alpha
		{raw: "adm\u0131n", err: invites.ErrUsernameConfusable},                     // dotless i
		{raw: "иванjohn", err: invites.ErrUsernameConfusable},                       // two scripts
	}
	for _, tt := range tests {
		got, err := invites.PrepareUsername(tt.raw)
		switch {
		case tt.err != nil:
			if !errors.Is(err, tt.err) || !errors.Is(err, invites.ErrUsernameRefused) {
				t.Errorf("PrepareUsername(%+q) = %q, %v; want %v", tt.raw, got, err, tt.err)
			}
		case err != nil || got != tt.want:
			t.Errorf("PrepareUsername(%+q) = %+q, %v; want %+q", tt.raw, got, err, tt.want)
		}
	}
}

// TestPrepareUsernameIdempotent: the service prepares what the web page
// already prepared; doing it twice must not change the name again.
func TestPrepareUsernameIdempotent(t *testing.T) {
	for _, raw := range []string{"Straße", "Λόγος", "ｐａｕｌ", "jose\u0301", "やまだ太郎"} {
		once, err := invites.PrepareUsername(raw)
		if err != nil {
			t.Fatalf("PrepareUsername(%q) = %v", raw, err)
		}
		if twice, err := invites.PrepareUsername(once); err != nil || twice != once {
			t.Errorf("PrepareUsername(%q) = %q, then %q, %v", raw, once, twice, err)
		}
	}
}
