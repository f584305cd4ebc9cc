package invites

import "testing"

func TestNormalizeAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{" Frank@Example.NET ", "Frank@example.net"},
		{"frank+chat@example.net", "frank+chat@example.net"},
		{"a.b-c_d@sub.example.org", "a.b-c_d@sub.example.org"},
		{"frank@example", ""},
		{"frank", ""},
		{"@example.org", ""},
		{"frank@@example.org", ""},
		{"frank@example.org\r\nBcc: x@y.org", ""},
		{"Frank <frank@example.org>", ""},
		{"frank@example.org, eve@example.org", ""},
		{"fr ank@example.org", ""},
		{".frank@example.org", ""},
		{"fr..ank@example.org", ""},
		{"frank@exa_mple.org", ""},
		{"frank@-example.org", ""},
		{"\"frank\"@example.org", ""},
	}
	for _, tt := range tests {
		got, err := NormalizeAddress(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeAddress(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCanonicalAddressIsOnePerPerson(t *testing.T) {
	same := []string{"frank@example.net", "Frank@example.net", "FRANK+chat@Example.NET", "frank+x+y@example.net"}
	for _, s := range same {
		if addressKey(s) != addressKey(same[0]) {
			t.Errorf("%q and %q count as two addresses", s, same[0])
		}
	}
	if addressKey("frank@example.net") == addressKey("frank@example.org") || addressKey("frank@example.net") == addressKey("frankie@example.net") {
		t.Error("different addresses count as one")
	}
	if CanonicalAddress("+x@example.net") != "+x@example.net" {
		t.Errorf("a local part that is all tag is kept: %q", CanonicalAddress("+x@example.net"))
	}
}

func TestBlocklist(t *testing.T) {
	b, err := NewBlocklist([]string{"Spam.Example", "@junk.example"})
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{
		"mailinator.com": true, "MAILINATOR.COM": true, "eu.yopmail.com": true, "spam.example": true,
		"a.b.spam.example": true, "junk.example": true, "example.com": false, "notmailinator.com": false,
		"mailinator.com.example.org": false,
	} {
		if got := b.Blocked(d); got != want {
			t.Errorf("Blocked(%q) = %v, want %v", d, got, want)
		}
	}
	if _, err := NewBlocklist([]string{"not a domain"}); err == nil {
		t.Error("a blocked domain that is no domain name was taken")
	}
}

func TestCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		c := newCode()
		if _, ok := cleanCode(c); !ok {
			t.Fatalf("newCode() = %q, not six digits", c)
		}
		seen[c] = true
	}
	if len(seen) < 45 {
		t.Errorf("50 codes, %d distinct", len(seen))
	}
	for in, want := range map[string]string{"123456": "123456", " 123 456 ": "123456", "123-456": "123456", "12345": "", "12345a": "", "1234567": ""} {
		got, ok := cleanCode(in)
		if ok != (want != "") || got != want {
			t.Errorf("cleanCode(%q) = %q, %v", in, got, ok)
		}
	}
	if codeHash("secret1", "123456") == codeHash("secret2", "123456") {
		t.Error("the code hash does not depend on the status page secret")
	}
}

func TestMaskAddress(t *testing.T) {
	if got := MaskAddress("Gus@example.net"); got != "G•••@example.net" {
		t.Errorf("MaskAddress = %q", got)
	}
}
