package web

// Translations. English lives in text.go as a Go value, so the compiler
// checks every use of a sentence. Every other language is a go-i18n message
// catalog, locales/<tag>.toml, keyed by the names of Text's fields: a
// translator edits a flat file and never touches Go. At start each catalog
// becomes a complete Text, and a visitor gets the one their browser's
// Accept-Language matches best.
//
// Keys, from Text's fields:
//
//	string        FieldName = "..."
//	Plural        [FieldName] one = "..." other = "..." (the CLDR categories the language has)
//	MonthNames    [Months] January = "..." ... December = "..."
//	WeekdayNames  [Weekdays] Sunday = "..." ... Saturday = "..."
//	Platforms     [Platforms] "<English platform name>" = "..."
//	              [Login] "<app name>" = "..." (the app's sign-in step)
//
// Lang is not a key: it comes from the file name. The list of apps is the
// same in every language; a catalog translates only what is said about it.

import (
	"cmp"
	"embed"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

//go:embed locales/*.toml
var localeFS embed.FS

// languages are the texts the pages are offered in. English comes first:
// it is what visitors get when none of their languages is on offer.
var languages = mustLoadLanguages()

// mustLoadLanguages reads every embedded catalog. A catalog that does not
// parse is a programming error; one that lacks keys still loads, with the
// English for what is missing, so a new English sentence does not take the
// site down before it is translated (TestCatalogsComplete fails meanwhile).
func mustLoadLanguages() []*Text {
	texts := []*Text{&English}
	names, err := fs.Glob(localeFS, "locales/*.toml")
	if err != nil {
		panic(err)
	}
	for _, name := range names {
		data, err := fs.ReadFile(localeFS, name)
		if err != nil {
			panic(err)
		}
		c, err := parseCatalog(name, data)
		if err != nil {
			panic(fmt.Sprintf("web: %v", err))
		}
		texts = append(texts, c.text)
	}
	return texts
}

// catalog is one parsed message file and what it lacks.
type catalog struct {
	text *Text
	// missing are the keys English has and the file does not; their
	// English stands in.
	missing []string
	// unknown are keys of the file that English does not have: typos, or
	// sentences that were removed.
	unknown []string
}

// parseCatalog turns the message file name (locales/<tag>.toml) into a Text.
func parseCatalog(name string, data []byte) (catalog, error) {
	f, err := i18n.ParseMessageFileBytes(data, name,
		map[string]i18n.UnmarshalFunc{"toml": toml.Unmarshal})
	if err != nil {
		return catalog{}, fmt.Errorf("catalog %s: %w", name, err)
	}
	if f.Tag == language.Und || f.Tag == language.English {
		return catalog{}, fmt.Errorf("catalog %s: name it after a language other than English, e.g. de.toml", name)
	}
	msgs := make(map[string]*i18n.Message, len(f.Messages))
	for _, m := range f.Messages {
		msgs[m.ID] = m
	}
	t := English.clone()
	t.Lang = f.Tag.String()
	var c catalog
	for _, fld := range t.fields() {
		m, ok := msgs[fld.key]
		if !ok {
			c.missing = append(c.missing, fld.key)
			continue
		}
		delete(msgs, fld.key)
		if err := fld.set(m); err != nil {
			return catalog{}, fmt.Errorf("catalog %s: %s: %w", name, fld.key, err)
		}
	}
	for id := range msgs {
		c.unknown = append(c.unknown, id)
	}
	slices.Sort(c.unknown)
	c.text = t
	return c, nil
}

// clone copies t deeply enough that setting the copy's strings leaves t
// alone.
func (t *Text) clone() *Text {
	c := *t
	c.Platforms = make([]Platform, len(t.Platforms))
	for i, p := range t.Platforms {
		p.Clients = slices.Clone(p.Clients)
		c.Platforms[i] = p
	}
	return &c
}

// field is one catalog key of a Text and where its value goes.
type field struct {
	key string
	str *string // a plain sentence
	pl  *Plural // or a sentence with plural forms
}

// set stores message m in the field, refusing a plural where a plain
// sentence is expected and the other way round.
func (f field) set(m *i18n.Message) error {
	forms := Plural{Zero: m.Zero, One: m.One, Two: m.Two, Few: m.Few, Many: m.Many, Other: m.Other}
	if f.pl != nil {
		*f.pl = forms
		return nil
	}
	if forms != (Plural{Other: m.Other}) {
		return fmt.Errorf("has plural forms, but English has a plain sentence")
	}
	*f.str = m.Other
	return nil
}

// fields lists t's catalog keys in the order of the struct, pointing into
// t. The keys of Platforms come from their current names, so call it on
// the English text or a fresh clone of it.
func (t *Text) fields() []field {
	var out []field
	v := reflect.ValueOf(t).Elem()
	for i := range v.NumField() {
		sf, fv := v.Type().Field(i), v.Field(i)
		switch p := fv.Addr().Interface().(type) {
		case *string:
			if sf.Name != "Lang" { // the file name says it
				out = append(out, field{key: sf.Name, str: p})
			}
		case *Plural:
			out = append(out, field{key: sf.Name, pl: p})
		case *MonthNames:
			for m := range p {
				out = append(out, field{key: sf.Name + "." + time.Month(m+1).String(), str: &p[m]})
			}
		case *WeekdayNames:
			for d := range p {
				out = append(out, field{key: sf.Name + "." + time.Weekday(d).String(), str: &p[d]})
			}
		case *[]Platform:
			for i := range *p {
				pf := &(*p)[i]
				out = append(out, field{key: "Platforms." + pf.Name, str: &pf.Name})
				for j := range pf.Clients {
					c := &pf.Clients[j]
					out = append(out, field{key: "Login." + c.Name, str: &c.Login})
				}
			}
		default:
			// Caught by every test, since the languages load at init.
			panic(fmt.Sprintf("web: Text.%s is a %s, which catalogs cannot hold", sf.Name, sf.Type))
		}
	}
	return out
}

// negotiator picks the text for a request.
type negotiator struct {
	texts   []*Text
	matcher language.Matcher
}

func newNegotiator(texts []*Text) *negotiator {
	tags := make([]language.Tag, len(texts))
	for i, t := range texts {
		tags[i] = language.Make(t.Lang)
	}
	return &negotiator{texts: texts, matcher: language.NewMatcher(tags)}
}

// pick returns the text that best matches an Accept-Language header. The
// matcher knows that a de-AT reader is served by de and that en is no
// help to someone asking only for fr, in which case the first text wins.
func (n *negotiator) pick(acceptLanguage string) *Text {
	prefs, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(prefs) == 0 {
		return n.texts[0]
	}
	_, i, _ := n.matcher.Match(prefs...)
	return n.texts[i]
}

// Plural is a sentence whose wording depends on a number, one format
// string per CLDR plural category. A language fills the categories it has
// (English and German: One and Other; Polish also Few and Many), each
// formatting the number with %[1]d.
type Plural struct {
	Zero, One, Two, Few, Many, Other string
}

// format picks the form lang uses for n, falling back to Other.
func (p Plural) format(lang string, n int) string {
	form := p.Other
	switch plural.Cardinal.MatchPlural(language.Make(lang), n, 0, 0, 0, 0) {
	case plural.Zero:
		form = cmp.Or(p.Zero, p.Other)
	case plural.One:
		form = cmp.Or(p.One, p.Other)
	case plural.Two:
		form = cmp.Or(p.Two, p.Other)
	case plural.Few:
		form = cmp.Or(p.Few, p.Other)
	case plural.Many:
		form = cmp.Or(p.Many, p.Other)
	}
	return fmt.Sprintf(form, n)
}

// MonthNames are the months, January first.
type MonthNames [12]string

// WeekdayNames are the days of the week, Sunday first like time.Weekday.
type WeekdayNames [7]string

// Placeholders for names in a layout: control characters, which no
// time.Format directive contains, so they pass through unchanged.
const (
	monthMark   = "\x01"
	weekdayMark = "\x02"
)

// date formats tm with DateLayout in the text's language: the layout's
// "January" and "Monday" become the text's own names.
func (t *Text) date(tm time.Time) string {
	layout := strings.NewReplacer("January", monthMark, "Monday", weekdayMark).Replace(t.DateLayout)
	s := tm.Format(layout)
	return strings.NewReplacer(monthMark, t.Months[tm.Month()-1], weekdayMark, t.Weekdays[tm.Weekday()]).Replace(s)
}

// timeLeft says how long until an expiry d away, in the largest unit that
// still makes a count of two or more: "7 more days", "30 more hours",
// "1 more minute". Days and hours are rounded, since the exact time follows;
// minutes round up, so the last one is not "0 more minutes".
func (t *Text) timeLeft(d time.Duration) string {
	if days := int((d + 12*time.Hour) / (24 * time.Hour)); days >= 2 {
		return t.TimeLeftDays.format(t.Lang, days)
	}
	if hours := int((d + 30*time.Minute) / time.Hour); hours >= 2 {
		return t.TimeLeftHours.format(t.Lang, hours)
	}
	return t.TimeLeftMinutes.format(t.Lang, max(1, int((d+time.Minute-1)/time.Minute)))
}
