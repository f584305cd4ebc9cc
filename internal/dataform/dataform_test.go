package dataform

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestDecodeSubmittedForm(t *testing.T) {
	// Clients often omit field types in submissions; values may carry
	// white space.
	raw := `<x xmlns="jabber:x:data" type="submit"><field var="jid"><value> bob@x.org </value></field><field var="empty"/></x>`
	var f Form
	if err := xml.Unmarshal([]byte(raw), &f); err != nil {
		t.Fatal(err)
	}
	if f.Type != TypeSubmit || f.Value("jid") != "bob@x.org" || f.Value("missing") != "" {
		t.Errorf("decoded %+v", f)
	}
	if !f.Has("empty") || f.Has("missing") {
		t.Error("Has is wrong")
	}
	var nilForm *Form
	if nilForm.Value("x") != "" || nilForm.Has("x") || nilForm.Submission() != nil {
		t.Error("nil form is not empty")
	}
}

func TestEncodeFormAndTable(t *testing.T) {
	f := Form{Type: TypeForm, Title: "Grant", Fields: []Field{
		{Var: "jid", Type: JIDSingle, Label: "JID", Required: Req},
		{Type: Fixed, Values: []string{"read me"}},
		{Var: "who", Type: ListSingle, Options: []Option{{Label: "Carol", Value: "carol@x.org"}}},
	}, Reported: &Reported{Fields: []Field{{Var: "id", Label: "Id"}}}, Items: []Item{{Fields: []Field{{Var: "id", Values: []string{"abc"}}}}}}
	raw, err := xml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	got := string(raw)
	for _, want := range []string{
		`<x xmlns="jabber:x:data" type="form">`, `<title>Grant</title>`,
		`<field var="jid" type="jid-single" label="JID"><required></required></field>`,
		`<option label="Carol"><value>carol@x.org</value></option>`,
		`<reported><field var="id" label="Id"></field></reported>`, `<item><field var="id"><value>abc</value></field></item>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("encoding lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "<instructions>") {
		t.Errorf("empty instructions encoded: %s", got)
	}
	sub := f.Submission()
	if sub.Type != TypeSubmit || len(sub.Fields) != 2 || sub.Has("") {
		t.Errorf("submission %+v: want the two named, non-fixed fields", sub)
	}
}
