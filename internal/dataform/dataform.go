// Package dataform encodes and decodes XEP-0004 data forms with
// encoding/xml. mellium's form package drops untyped fields of submitted
// forms and has no <reported/>/<item/> tables, both of which the bot needs,
// so forms are plain structs here.
package dataform

import (
	"encoding/xml"
	"strings"
)

// NS is the XEP-0004 namespace.
const NS = "jabber:x:data"

// Form types (XEP-0004 §3.1).
const (
	TypeForm   = "form"
	TypeSubmit = "submit"
	TypeCancel = "cancel"
	TypeResult = "result"
)

// Field types used by the bot (XEP-0004 §3.3).
const (
	Boolean    = "boolean"
	Fixed      = "fixed"
	Hidden     = "hidden"
	JIDSingle  = "jid-single"
	ListSingle = "list-single"
	TextSingle = "text-single"
)

// Form is one <x xmlns='jabber:x:data'/>.
type Form struct {
	XMLName      xml.Name `xml:"jabber:x:data x"`
	Type         string   `xml:"type,attr"`
	Title        string   `xml:"title,omitempty"`
	Instructions string   `xml:"instructions,omitempty"`
	Fields       []Field  `xml:"field"`
	// Reported and Items make a table (multi-item result).
	Reported *Reported `xml:"reported,omitempty"`
	Items    []Item    `xml:"item"`
}

// Field is one <field/>.
type Field struct {
	Var      string    `xml:"var,attr,omitempty"`
	Type     string    `xml:"type,attr,omitempty"`
	Label    string    `xml:"label,attr,omitempty"`
	Desc     string    `xml:"desc,omitempty"`
	Required *struct{} `xml:"required,omitempty"`
	Values   []string  `xml:"value"`
	Options  []Option  `xml:"option"`
}

// Option is one choice of a list field.
type Option struct {
	Label string `xml:"label,attr,omitempty"`
	Value string `xml:"value"`
}

// Reported declares the columns of a table.
type Reported struct {
	Fields []Field `xml:"field"`
}

// Item is one row of a table.
type Item struct {
	Fields []Field `xml:"field"`
}

// Value returns the first value of field name, trimmed, or "".
func (f *Form) Value(name string) string {
	if f == nil {
		return ""
	}
	for _, fld := range f.Fields {
		if fld.Var == name && len(fld.Values) > 0 {
			return strings.TrimSpace(fld.Values[0])
		}
	}
	return ""
}

// Has reports whether the form carries field name at all.
func (f *Form) Has(name string) bool {
	if f == nil {
		return false
	}
	for _, fld := range f.Fields {
		if fld.Var == name {
			return true
		}
	}
	return false
}

// Submission turns a presented form into a submit form carrying its
// defaults; nil in, nil out.
func (f *Form) Submission() *Form {
	if f == nil {
		return nil
	}
	sub := &Form{Type: TypeSubmit}
	for _, fld := range f.Fields {
		if fld.Var == "" || fld.Type == Fixed {
			continue
		}
		sub.Fields = append(sub.Fields, Field{Var: fld.Var, Values: fld.Values})
	}
	return sub
}

// Req marks a field required.
var Req = &struct{}{}

// Set gives field name the single value v, adding the field if the form
// lacks it.
func (f *Form) Set(name, v string) {
	for i := range f.Fields {
		if f.Fields[i].Var == name {
			f.Fields[i].Values = []string{v}
			return
		}
	}
	f.Fields = append(f.Fields, Field{Var: name, Values: []string{v}})
}
