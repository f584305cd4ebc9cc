// The documentation, checked: README.md and docs/*.md link only to files
// that exist inside this repository (and to headings those files have),
// every page in docs/ can be reached from the README, and the README stays
// short enough for a first read. No network: links with a scheme
// (https:, xmpp:, mailto:) are left alone.
package invitebot_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// readmeMaxLines is the first README length that fails: the README is a
// first read, and everything else belongs in docs/.
const readmeMaxLines = 200

// docFiles returns README.md and docs/*.md of the repository at root,
// relative to root.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range more {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, rel)
	}
	return files
}

// mdLink is one link or image target found in a markdown file.
type mdLink struct {
	line   int
	target string
}

var (
	// inlineLink matches [text](target) and ![alt](target), with an
	// optional <...> around the target and an optional title.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	// refDefinition matches a reference definition: [ref]: target.
	refDefinition = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	// htmlLink matches src="..." and href="..." of raw HTML.
	htmlLink = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`)
	// fence opens or closes a fenced code block.
	fence = regexp.MustCompile("^\\s*(```|~~~)")
	// scheme marks a link that leaves the repository on purpose
	// (https:, xmpp:, mailto:); it is not checked.
	scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	// atxHeading is a "# Heading" line.
	atxHeading = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	// linkMarkup is a link in a heading, whose text alone counts for its
	// anchor.
	linkMarkup = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	// htmlAnchor is an explicit <a id="..."> or <a name="...">.
	htmlAnchor = regexp.MustCompile(`(?i)<a\s[^>]*\b(?:id|name)\s*=\s*"([^"]+)"`)
)

// proseLines returns the lines of a markdown text with fenced code blocks
// and inline code spans blanked out, so that link-like text in code is not
// taken for a link. Line numbers stay as they were.
func proseLines(text string) []string {
	lines := strings.Split(text, "\n")
	inFence := ""
	for i, l := range lines {
		if m := fence.FindStringSubmatch(l); m != nil {
			switch {
			case inFence == "":
				inFence = m[1]
			case inFence == m[1]:
				inFence = ""
			}
			lines[i] = ""
			continue
		}
		if inFence != "" {
			lines[i] = ""
			continue
		}
		lines[i] = blankCodeSpans(l)
	}
	return lines
}

// blankCodeSpans replaces each `code span` of a line with spaces.
func blankCodeSpans(l string) string {
	b := []byte(l)
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		n := 0
		for i+n < len(b) && b[i+n] == '`' {
			n++
		}
		run := strings.Repeat("`", n)
		end := -1
		for j := i + n; j < len(b); {
			k := strings.Index(string(b[j:]), run)
			if k < 0 {
				break
			}
			k += j
			if (k+n == len(b) || b[k+n] != '`') && (k == 0 || b[k-1] != '`') {
				end = k
				break
			}
			j = k + 1
		}
		if end < 0 {
			i += n
			continue
		}
		for k := i; k < end+n; k++ {
			b[k] = ' '
		}
		i = end + n
	}
	return string(b)
}

// links returns every link and image target of a markdown text.
func links(text string) []mdLink {
	var out []mdLink
	for i, l := range proseLines(text) {
		for _, re := range []*regexp.Regexp{inlineLink, refDefinition, htmlLink} {
			for _, m := range re.FindAllStringSubmatch(l, -1) {
				out = append(out, mdLink{line: i + 1, target: m[1]})
			}
		}
	}
	return out
}

// slug is the anchor a heading gets on GitHub: lower case, inline code
// and link markup dropped, punctuation other than - and _ removed, spaces
// made dashes.
func slug(heading string) string {
	heading = linkMarkup.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.M, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the anchors of a markdown text: its headings' slugs
// (with GitHub's -1, -2 for repeated ones) and explicit <a id> anchors.
func anchors(text string) map[string]bool {
	set := map[string]bool{}
	seen := map[string]int{}
	inFence := ""
	for _, l := range strings.Split(text, "\n") {
		if m := fence.FindStringSubmatch(l); m != nil {
			switch {
			case inFence == "":
				inFence = m[1]
			case inFence == m[1]:
				inFence = ""
			}
			continue
		}
		if inFence != "" {
			continue
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(l, -1) {
			set[m[1]] = true
		}
		m := atxHeading.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			set[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			set[s] = true
		}
		seen[s]++
	}
	return set
}

// checkLink says what is wrong with target, a link found in the file
// from (relative to root); "" when nothing is. It returns the linked file,
// relative to root, when the link points at one.
func checkLink(root, from, target string) (problem, linked string) {
	if target == "" {
		return "empty link", ""
	}
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return "", "" // leaves the repository on purpose: not checked here
	}
	path, fragment, _ := strings.Cut(target, "#")
	path, _, _ = strings.Cut(path, "?")
	if unescaped, err := url.PathUnescape(path); err == nil {
		path = unescaped
	}
	if strings.HasPrefix(path, "/") {
		return "absolute path: link relative to the file instead", ""
	}
	file := from
	if path != "" {
		file = filepath.Join(filepath.Dir(from), filepath.FromSlash(path))
		if file == ".." || strings.HasPrefix(file, ".."+string(filepath.Separator)) {
			return "leaves the repository: only files in it exist for everyone who clones it", ""
		}
		info, err := os.Stat(filepath.Join(root, file))
		if err != nil {
			return "no such file in the repository", ""
		}
		if real, err := filepath.EvalSymlinks(filepath.Join(root, file)); err == nil {
			realRoot, _ := filepath.EvalSymlinks(root)
			if rel, err := filepath.Rel(realRoot, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return "a symbolic link out of the repository", ""
			}
		}
		if info.IsDir() {
			return "", ""
		}
	}
	if fragment != "" && strings.HasSuffix(file, ".md") {
		text, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			return err.Error(), ""
		}
		if !anchors(string(text))[fragment] {
			return fmt.Sprintf("%s has no heading for #%s", filepath.ToSlash(file), fragment), ""
		}
	}
	return "", file
}

// lineCount counts lines as wc -l does, plus an unterminated last line.
func lineCount(text string) int {
	n := strings.Count(text, "\n")
	if text != "" && !strings.HasSuffix(text, "\n") {
		n++
	}
	return n
}

// readmeTooLong says why a README text is too long for a first read; ""
// when it is not.
func readmeTooLong(text string) string {
	if n := lineCount(text); n >= readmeMaxLines {
		return fmt.Sprintf("README.md has %d lines; keep it under %d and move detail to docs/", n, readmeMaxLines)
	}
	return ""
}

// docProblems checks the links of every file of the repository at root.
// Each problem names file and line.
func docProblems(root string, files []string) ([]string, error) {
	var problems []string
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, err
		}
		for _, l := range links(string(text)) {
			if p, _ := checkLink(root, f, l.target); p != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: link %q: %s", filepath.ToSlash(f), l.line, l.target, p))
			}
		}
	}
	return problems, nil
}

// unreachable returns the files in docs that no chain of links from
// README.md reaches.
func unreachable(root string, files []string) ([]string, error) {
	reached := map[string]bool{"README.md": true}
	queue := []string{"README.md"}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		text, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, err
		}
		for _, l := range links(string(text)) {
			if _, linked := checkLink(root, f, l.target); linked != "" && !reached[linked] && slices.Contains(files, linked) {
				reached[linked] = true
				queue = append(queue, linked)
			}
		}
	}
	var out []string
	for _, f := range files {
		if !reached[f] {
			out = append(out, filepath.ToSlash(f))
		}
	}
	return out, nil
}

func TestDocsLinksResolveInsideRepo(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	files := docFiles(t, root)
	if len(files) < 2 {
		t.Fatalf("found %v: the docs/ pages are missing, so the check would prove nothing", files)
	}
	problems, err := docProblems(root, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

func TestReadmeUnder200Lines(t *testing.T) {
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if why := readmeTooLong(string(text)); why != "" {
		t.Error(why)
	}
}

func TestDocsReachableFromReadme(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	lost, err := unreachable(root, docFiles(t, root))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range lost {
		t.Errorf("%s: no link from README.md leads there", f)
	}
}

// TestLinkCheckerCatchesBrokenLinks runs the checks on a made-up
// repository, so that a checker that finds nothing cannot pass for docs
// that are fine.
func TestLinkCheckerCatchesBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/ok.md", "# Ok page\n\n## A `heading`: here\n\nBack to [the README](../README.md#the-top).\n")
	write("docs/shot.png", "")
	write("docs/lost.md", "# Nobody links here\n")
	write("README.md", strings.Join([]string{
		"# The top",
		"[fine](docs/ok.md) [fine anchor](docs/ok.md#a-heading-here) ![fine image](docs/shot.png)",
		"[web](https://xmpp.org/extensions/) [chat](xmpp:room@example.org?join) [here](#the-top)",
		"`[in code](nowhere.md)` and [dir](docs/)",
		"```",
		"[in a fence](nowhere.md)",
		"```",
		"[missing](docs/missing.md)",               // line 8
		"[outside](../shared/DESIGN.md)",           // line 9
		"![missing image](docs/nope.png)",          // line 10
		"[absolute](/etc/passwd)",                  // line 11
		"[bad anchor](docs/ok.md#no-such-heading)", // line 12
		"[sneaky](docs/../../elsewhere/x.md)",      // line 13
		`<img src="docs/gone.png" alt="">`,         // line 14
		"[ref]: ../outside.md",                     // line 15
		"[own anchor](#nope)",                      // line 16
	}, "\n")+"\n")

	files := []string{"README.md", "docs/lost.md", "docs/ok.md"}
	problems, err := docProblems(root, files)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"README.md:8:", "README.md:9:", "README.md:10:", "README.md:11:", "README.md:12:",
		"README.md:13:", "README.md:14:", "README.md:15:", "README.md:16:",
	}
	var got []string
	for _, p := range problems {
		got = append(got, p[:strings.Index(p, " ")])
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems found:\n%s\nwant one on each of %v", strings.Join(problems, "\n"), want)
	}

	lost, err := unreachable(root, files)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lost, []string{"docs/lost.md"}) {
		t.Errorf("unreachable = %v, want [docs/lost.md]", lost)
	}

	if why := readmeTooLong(strings.Repeat("line\n", readmeMaxLines)); why == "" {
		t.Errorf("a README of %d lines passed", readmeMaxLines)
	}
	if why := readmeTooLong(strings.Repeat("line\n", readmeMaxLines-2) + "last line, unterminated"); why != "" {
		t.Errorf("a README of %d lines failed: %s", readmeMaxLines-1, why)
	}
}
