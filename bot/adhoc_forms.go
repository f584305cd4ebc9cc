package bot

import (
	"context"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/internal/plaintext"
	"durare.org/invitebot/policy"
)

// The data forms of ad-hoc commands: presenting an operation's parameters,
// and reading them back from what a client submits.

// submitted picks the submitted (or cancelled) form of a request.
func submitted(forms []dataform.Form) *dataform.Form {
	for i := range forms {
		if forms[i].Type == dataform.TypeSubmit || forms[i].Type == dataform.TypeCancel {
			return &forms[i]
		}
	}
	return nil
}

func visibleParams(op operation, role policy.Role) []param {
	var ps []param
	for _, p := range op.params {
		if p.visible(role) {
			ps = append(ps, p)
		}
	}
	return ps
}

// Names of a form's text lines (see textFields), numbered: error-1, … for
// what is wrong with a form shown again, text-1, … for the rest. XEP-0004
// lets a fixed field go without a name, but poezio turns every note into a
// nameless fixed field of its own, with the text as a label it does not
// show, and slixmpp keeps a form's fields by name: the note's empty field
// then takes the place of a nameless one of ours, and the text is gone.
const (
	fixedVarError = "error"
	fixedVarText  = "text"
)

// optionLabel labels a choice in a form list with its id and a few words
// of ours. Never with text people typed (a note, a requester's name):
// poezio draws a label that holds an emoji as nothing, so the choices
// looked alike and the wrong event link was closed, and it draws one
// wider than maxOptionColumns as nothing too, so the words stay few.
func optionLabel(id, words string) string {
	label := id + ", " + words
	if columns(label) > maxOptionColumns {
		return shortLabel(id)
	}
	return label
}

// shortLabel is s as a choice's label: whole when it fits in
// maxOptionColumns, else its start and its end around "...", where a JID
// differs most from its neighbours. ASCII dots: an ellipsis is one column
// or two, as the terminal pleases.
func shortLabel(s string) string {
	if columns(s) <= maxOptionColumns {
		return s
	}
	const dots = "..."
	r := []rune(s)
	room := maxOptionColumns - len(dots)
	head, tail := room/2, room-room/2
	for columns(string(r[:head]))+columns(string(r[len(r)-tail:])) > room {
		if head > tail {
			head--
		} else {
			tail--
		}
	}
	return string(r[:head]) + dots + string(r[len(r)-tail:])
}

// formFields presents parameter p, pre-filled with value (going back with
// prev keeps what was entered).
func formFields(ctx context.Context, b *Bot, p param, r request, value string) ([]dataform.Field, error) {
	f := dataform.Field{Var: p.name, Label: p.label}
	if value != "" {
		f.Values = []string{value}
	}
	typed := p.offersTyping(r.role())
	if p.required && !typed {
		f.Required = dataform.Req
	}
	if p.choices == nil {
		f.Type = p.spec().field
		return []dataform.Field{f}, nil
	}
	opts, err := p.choices(ctx, b, r)
	if err != nil {
		return nil, err
	}
	f.Type, f.Options = dataform.ListSingle, opts
	if p.spec().keepsUnchanged && value == "" {
		f.Values = []string{valueUnchanged}
	}
	fields := []dataform.Field{f}
	if typed {
		other := dataform.Field{Var: p.name + "-other", Type: p.spec().field, Label: "or type it"}
		fields = append(fields, other)
	}
	return fields, nil
}

// typedValues is what a submitted form holds for the parameters role may
// set, unchecked, to fill the form in again.
func typedValues(op operation, role policy.Role, form *dataform.Form) map[string]string {
	vals := make(map[string]string)
	for _, p := range visibleParams(op, role) {
		if v := form.Value(p.name); v != "" {
			vals[p.name] = plaintext.Truncate(plaintext.Line(v), maxTextParam)
		}
	}
	return vals
}

// paramsFromForm validates a submitted form against the parameters role
// may set.
func paramsFromForm(op operation, role policy.Role, form *dataform.Form) (map[string]string, error) {
	args := make(map[string]string)
	for _, p := range visibleParams(op, role) {
		raw := form.Value(p.name)
		if p.offersTyping(role) {
			if other := form.Value(p.name + "-other"); other != "" {
				raw = other
			}
		}
		if raw == "" || (p.spec().keepsUnchanged && raw == valueUnchanged) {
			if p.required {
				return nil, &missingError{p: p, choose: p.choices != nil, typed: p.offersTyping(role)}
			}
			continue
		}
		v, err := parseParam(p, raw)
		if err != nil {
			return nil, err
		}
		args[p.name] = v
	}
	return args, nil
}
