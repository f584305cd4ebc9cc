package bot

import (
	"strings"
	"testing"
	"unicode"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/policy"
)

// FuzzSubmittedForm submits arbitrary values in every field of every
// operation's form. Whatever arrives, what the bot accepts is in normal form
// (a fixed point of its parser) and free text is one line without control
// or bidi characters.
func FuzzSubmittedForm(f *testing.F) {
	for _, s := range []string{"bob@x.org", "xmpp:bob@x.org?message", "abcdefghijklmnop", "12", "0", "1001",
		"line\nbreak", "evil\u202ertl", "  spaced  ", "Ünïcödé@例え.jp", "bob@x.org/res"} {
		f.Add(s, s)
	}
	ops := operations()
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, op := range ops {
			var fields []dataform.Field
			for i, p := range op.params {
				v := a
				if i%2 == 1 {
					v = b
				}
				fields = append(fields, dataform.Field{Var: p.name, Values: []string{v}},
					dataform.Field{Var: p.name + "-other", Values: []string{b}})
			}
			form := &dataform.Form{Type: dataform.TypeSubmit, Fields: fields}
			for _, role := range []policy.Role{policy.Inviter, policy.Admin} {
				args, err := paramsFromForm(op, role, form)
				if err != nil {
					continue
				}
				for _, p := range op.params {
					v, ok := args[p.name]
					if !ok {
						continue
					}
					if again, err := parseParam(p, v); err != nil || again != v {
						t.Fatalf("%s: %s=%q is not a fixed point (%q, %v)", op.name, p.name, v, again, err)
					}
					if p.kind == kindText && strings.IndexFunc(v, func(r rune) bool {
						return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
					}) >= 0 {
						t.Fatalf("%s: %s keeps a control character: %q", op.name, p.name, v)
					}
				}
			}
		}
	})
}
