package web

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"durare.org/invitebot/invites"
	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

// catalogs parses every embedded catalog, failing the test on a parse
// error.
func catalogs(t *testing.T) map[string]catalog {
	t.Helper()
	names, err := fs.Glob(localeFS, "locales/*.toml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no catalogs embedded (err %v)", err)
	}
	out := map[string]catalog{}
	for _, name := range names {
		data, err := fs.ReadFile(localeFS, name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCatalog(name, data)
		if err != nil {
			t.Fatal(err)
		}
		out["web/"+name] = c
	}
	return out
}

// TestCatalogsComplete fails while a catalog lacks a sentence English has,
// and prints the lines to add, with the English to translate above each.
// It is also how a new catalog starts: an empty file, then these lines.
func TestCatalogsComplete(t *testing.T) {
	english := map[string]field{}
	for _, f := range English.clone().fields() {
		english[f.key] = f
	}
	for name, c := range catalogs(t) {
		if len(c.missing) > 0 {
			var b strings.Builder
			for _, key := range c.missing {
				f := english[key]
				if f.pl != nil {
					fmt.Fprintf(&b, "# one: %s | other: %s\n%s.one = \"\"\n%s.other = \"\"\n",
						f.pl.One, f.pl.Other, tomlKey(key), tomlKey(key))
					continue
				}
				fmt.Fprintf(&b, "# %s\n%s = \"\"\n", *f.str, tomlKey(key))
			}
			t.Errorf("%s lacks %d keys that English has; add these, translated (the English is in the comments; plural forms are the CLDR categories of the language):\n%s",
				name, len(c.missing), b.String())
		}
		if len(c.unknown) > 0 {
			t.Errorf("%s has keys that English does not (misspelt, or the sentence was removed): %s",
				name, strings.Join(c.unknown, ", "))
		}
	}
}

// tomlKey quotes the parts of a dotted key that are not bare TOML keys.
func tomlKey(key string) string {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(p) {
			parts[i] = strconv.Quote(p)
		}
	}
	return strings.Join(parts, ".")
}

var verbRE = regexp.MustCompile(`%(\[\d+\])?[a-zA-Z%]`)

// verbs lists the fmt verbs of a format string, sorted, so that a
// translation may reorder them but not drop, add or change one.
func verbs(s string) []string {
	v := verbRE.FindAllString(s, -1)
	slices.Sort(v)
	return v
}

// TestCatalogsPlaceholders checks that every translation formats the same
// values as the English: a lost %[2]s would hide the date, a %[1]s where
// English has %[1]d would print %!s(int=8).
func TestCatalogsPlaceholders(t *testing.T) {
	english := English.clone().fields()
	for name, c := range catalogs(t) {
		// Both lists follow the one struct, so they pair up by index; the
		// translated platform names would not find their English key.
		for i, f := range c.text.fields() {
			en := english[i]
			f.key = en.key
			if f.str != nil {
				if got, want := verbs(*f.str), verbs(*en.str); !slices.Equal(got, want) {
					t.Errorf("%s: %s has placeholders %v, English %v", name, f.key, got, want)
				}
				if *f.str == "" {
					t.Errorf("%s: %s is empty", name, f.key)
				}
				continue
			}
			want := verbs(en.pl.Other)
			for form, s := range map[string]string{"zero": f.pl.Zero, "one": f.pl.One, "two": f.pl.Two,
				"few": f.pl.Few, "many": f.pl.Many, "other": f.pl.Other} {
				if got := verbs(s); s != "" && !slices.Equal(got, want) {
					t.Errorf("%s: %s.%s has placeholders %v, English %v", name, f.key, form, got, want)
				}
			}
		}
	}
}

// TestCatalogsPluralForms checks that each language has every plural form
// its grammar uses for the numbers the pages show, so that no count falls
// back to a form meant for other numbers.
func TestCatalogsPluralForms(t *testing.T) {
	texts := map[string]*Text{"English": &English}
	for name, c := range catalogs(t) {
		texts[name] = c.text
	}
	for name, text := range texts {
		tag := language.Make(text.Lang)
		for _, f := range text.fields() {
			if f.pl == nil {
				continue
			}
			for n := range 1000 {
				form := plural.Cardinal.MatchPlural(tag, n, 0, 0, 0, 0)
				s := map[plural.Form]string{plural.Zero: f.pl.Zero, plural.One: f.pl.One, plural.Two: f.pl.Two,
					plural.Few: f.pl.Few, plural.Many: f.pl.Many, plural.Other: f.pl.Other}[form]
				if s == "" {
					t.Errorf("%s: %s lacks the plural form %v that %s uses for %d", name, f.key, form, text.Lang, n)
					break
				}
			}
		}
	}
}

func TestCatalogRejects(t *testing.T) {
	for _, tt := range []struct{ name, file string }{
		{"locales/de.toml", "LandingTitle.one = \"x\"\nLandingTitle.other = \"y\"\n"}, // plural where English has none
		{"locales/en.toml", "LandingTitle = \"x\"\n"},                                 // English is text.go
		{"locales/de.toml", "LandingTitle = \n"},                                      // not TOML
	} {
		if _, err := parseCatalog(tt.name, []byte(tt.file)); err == nil {
			t.Errorf("%s %q parsed without error", tt.name, tt.file)
		}
	}
	c, err := parseCatalog("locales/de.toml", []byte("LandingTitel = \"x\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.unknown, []string{"LandingTitel"}) || !slices.Contains(c.missing, "LandingTitle") {
		t.Errorf("misspelt key: unknown %v, missing has LandingTitle: %v", c.unknown, slices.Contains(c.missing, "LandingTitle"))
	}
	// What is missing keeps its English, so the page still says something.
	if c.text.LandingTitle != English.LandingTitle {
		t.Errorf("missing key: %q, want the English", c.text.LandingTitle)
	}
}

func TestNegotiation(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct{ accept, want string }{
		{"", "en"},
		{"de", "de"},
		{"de-AT,de;q=0.9,en;q=0.8", "de"},
		{"de-CH", "de"},
		{"en-GB,de;q=0.5", "en"},
		{"fr-FR,de;q=0.7,en;q=0.3", "de"},
		{"fr-FR", "en"},
		{"*", "en"},
		{"not a language;;;", "en"},
	} {
		for _, path := range []string{"/i/" + idPending, "/i/" + idUsed, "/nope"} {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			if tt.accept != "" {
				r.Header.Set("Accept-Language", tt.accept)
			}
			w := e.do(r)
			if got := w.Header().Get("Content-Language"); got != tt.want {
				t.Errorf("Accept-Language %q, %s: Content-Language %q, want %q", tt.accept, path, got, tt.want)
			}
			if !slices.Contains(w.Header().Values("Vary"), "Accept-Language") {
				t.Errorf("Accept-Language %q, %s: Vary %q lacks Accept-Language", tt.accept, path, w.Header().Values("Vary"))
			}
			if want := `<html lang="` + tt.want + `">`; !strings.Contains(w.Body.String(), want) {
				t.Errorf("Accept-Language %q, %s: page lacks %s", tt.accept, path, want)
			}
		}
	}
}

func TestPinnedText(t *testing.T) {
	de := catalogs(t)["web/locales/de.toml"].text
	e := newEnv(t, nil, func(c *Config) { c.Text = de })
	r := httptest.NewRequest(http.MethodGet, "/i/"+idPending, nil)
	r.Header.Set("Accept-Language", "en")
	w := e.do(r)
	if got := w.Header().Get("Content-Language"); got != "de" {
		t.Errorf("pinned German: Content-Language %q", got)
	}
	if v := w.Header().Values("Vary"); slices.Contains(v, "Accept-Language") {
		t.Errorf("pinned language, yet Vary %q", v)
	}
}

// TestGermanPages reads the German pages the way a visitor would get them,
// error messages of the form included.
func TestGermanPages(t *testing.T) {
	e := newEnv(t, nil)
	get := func(path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Accept-Language", "de-DE,de;q=0.9")
		return e.do(r)
	}
	body := get("/i/" + idPending).Body.String()
	for _, want := range []string{
		"<title>Einladung zu durare.test</title>",
		"carol@elsewhere.test hat dich zu durare.test eingeladen",
		"Die Einladung gilt noch 7 Tage, bis Sonntag, 8. März 2026, 12:00 Uhr UTC.",
		"In der App öffnen", "iPhone und iPad", "Mindestens 8 Zeichen.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("German landing page lacks %q", want)
		}
	}
	if body := get("/i/" + idUsed).Body.String(); !strings.Contains(body, "Diese Einladung gilt nicht mehr") {
		t.Error("German gone page not in German")
	}

	cookie, token := e.form(t, idPending)
	r := postForm(idPending, formValues(token, "alice", testPass, testPass+"x"), cookie)
	r.Header.Set("Accept-Language", "de")
	if body := e.do(r).Body.String(); !strings.Contains(body, "Die beiden Passwörter stimmen nicht überein.") {
		t.Error("German form error not in German")
	}
	r = postForm(idPending, formValues(token, "alice", testPass, testPass), cookie)
	r.Header.Set("Accept-Language", "de")
	if body := e.do(r).Body.String(); !strings.Contains(body, "Dein Konto ist bereit") ||
		!strings.Contains(body, "alice@durare.test") {
		t.Errorf("German success page:\n%s", body)
	}
}

func TestTimeLeft(t *testing.T) {
	de := catalogs(t)["web/locales/de.toml"].text
	for _, tt := range []struct {
		d      time.Duration
		en, de string
	}{
		{7 * 24 * time.Hour, "7 more days", "noch 7 Tage"},
		{6*24*time.Hour + 23*time.Hour, "7 more days", "noch 7 Tage"}, // rounded: the date follows
		{36 * time.Hour, "2 more days", "noch 2 Tage"},
		{36*time.Hour - time.Second, "36 more hours", "noch 36 Stunden"},
		{90 * time.Minute, "2 more hours", "noch 2 Stunden"},
		{90*time.Minute - time.Second, "90 more minutes", "noch 90 Minuten"},
		{61 * time.Second, "2 more minutes", "noch 2 Minuten"},
		{time.Minute, "1 more minute", "noch 1 Minute"},
		{time.Second, "1 more minute", "noch 1 Minute"},
	} {
		if got := English.timeLeft(tt.d); got != tt.en {
			t.Errorf("English timeLeft(%v) = %q, want %q", tt.d, got, tt.en)
		}
		if got := de.timeLeft(tt.d); got != tt.de {
			t.Errorf("German timeLeft(%v) = %q, want %q", tt.d, got, tt.de)
		}
	}
}

func TestDate(t *testing.T) {
	de := catalogs(t)["web/locales/de.toml"].text
	tm := time.Date(2026, 5, 3, 9, 5, 0, 0, time.UTC) // a Sunday in May: both names short in English
	if got, want := English.date(tm), "Sunday 3 May 2026, 09:05 UTC"; got != want {
		t.Errorf("English date %q, want %q", got, want)
	}
	if got, want := de.date(tm), "Sonntag, 3. Mai 2026, 09:05 Uhr UTC"; got != want {
		t.Errorf("German date %q, want %q", got, want)
	}
}

// TestAddressesBreak checks that the landing page lets long addresses wrap
// at their dots and "@" rather than mid-word.
func TestAddressesBreak(t *testing.T) {
	e := newEnv(t, nil)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/i/"+idPending, nil)) // not e.do, which drops the hints
	for _, want := range []string{
		`<h1><span class="addr"><bdi>carol<wbr>@elsewhere<wbr>.test</bdi></span> invited you to <span class="addr"><bdi>durare<wbr>.test</bdi></span></h1>`,
		`<span><span class="addr"><bdi><wbr>@durare<wbr>.test</bdi></span></span>`,
		// The full stop stays with the address.
		`will be <span class="addr">name@<bdi>durare<wbr>.test</bdi>.</span></p>`,
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
}

func TestBreakable(t *testing.T) {
	for in, want := range map[string]string{
		"alice@durare.test": `<span class="addr"><bdi>alice<wbr>@durare<wbr>.test</bdi></span>`,
		"plain":             `<span class="addr"><bdi>plain</bdi></span>`,
		`<b>x</b>@e.org`:    `<span class="addr"><bdi>&lt;b&gt;x&lt;/b&gt;<wbr>@e<wbr>.org</bdi></span>`,
	} {
		if got := string(breakable(in)); got != want {
			t.Errorf("breakable(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tt := range []struct {
		format string
		addrs  []string
		want   string
	}{
		{"<%[2]s> & %[1]s", []string{"a.b", "c@d"},
			`<span class="addr">&lt;<bdi>c<wbr>@d</bdi>&gt;</span> &amp; <span class="addr"><bdi>a<wbr>.b</bdi></span>`},
		{"no address here.", nil, "no address here."},
	} {
		if got := string(withAddrs(tt.format, tt.addrs...)); got != tt.want {
			t.Errorf("withAddrs(%q) = %q, want %q", tt.format, got, tt.want)
		}
	}
}

// TestLanguagePerRequest serves every kind of page to readers of different
// languages at once: each page type is copied per request to carry its
// language, and no reader may get another's (nor, under -race, may the
// copies share what one request writes).
func TestLanguagePerRequest(t *testing.T) {
	reqs := &fakeRequests{byKey: map[string]invites.Request{}}
	e, _ := newEventEnv(t, func(c *Config) { c.Requests, c.RequestForm = reqs, true })
	paths := []string{"/i/" + idPending, "/i/" + idUsed, "/request", "/e/" + evOpen, "/nope"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				lang := []string{"en", "de"}[(g+i)%2]
				path := paths[(g+i)%len(paths)]
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.Header.Set("Accept-Language", lang)
				w := e.do(r)
				if got := w.Header().Get("Content-Language"); got != lang {
					t.Errorf("%s in %s: Content-Language %q", path, lang, got)
				}
				if want := `<html lang="` + lang + `">`; !strings.Contains(w.Body.String(), want) {
					t.Errorf("%s in %s: page lacks %s", path, lang, want)
				}
			}
		})
	}
	wg.Wait()
}
