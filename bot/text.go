package bot

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/width"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/internal/plaintext"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// This file puts what the invites service returns (refusals, events, lists)
// into the words a chat or form user reads. Every sentence the bot sends is
// built in this package, so a translation has one place to start from.

// formatTime shows times in UTC to the minute: inviters and invitees are in
// any time zone, and UTC is the one everybody can convert from. It is the
// one time format of the bot's replies, in chat and in forms alike.
func formatTime(t time.Time) string {
	return t.UTC().Format(timeLayout)
}

// formatDay shows the day of t in UTC, as formatTime writes it, where a
// form has room for no more (a choice's label).
func formatDay(t time.Time) string {
	return t.UTC().Format(time.DateOnly)
}

// timeLayout is formatTime's layout.
const timeLayout = time.DateOnly + " 15:04 UTC"

// count writes n things: "1 invite", "3 invites".
func count(n int, singular, plural string) string {
	if n == 1 {
		return "1 " + singular
	}
	return strconv.Itoa(n) + " " + plural
}

// sentence makes an error message from the parsers ("missing jid") a
// sentence to show a person.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	r := []rune(msg)
	r[0] = unicode.ToUpper(r[0])
	if last := r[len(r)-1]; last != '.' && last != '?' && last != '!' {
		r = append(r, '.')
	}
	return string(r)
}

// pauseReason shows the reason an admin gave for a pause.
func pauseReason(reason string) string {
	if reason == "" {
		return "no reason given"
	}
	return reason
}

// quotaText explains which limit refused an invite and when the next one
// is possible.
func quotaText(r policy.Refusal) string {
	var msg string
	switch r.Limit {
	case policy.LimitPerDay:
		msg = fmt.Sprintf("you have created %s in the last 24 hours (cancelled ones count too); your limit is %d", count(r.Count, "invite", "invites"), r.Max)
	case policy.LimitPending:
		msg = fmt.Sprintf("you have %s; your limit is %d: cancel one or wait until one is used", count(r.Count, "pending invite", "pending invites"), r.Max)
	default:
		msg = fmt.Sprintf("this service has handed out %s in the last 24 hours, its daily limit is %d", count(r.Count, "invite", "invites"), r.Max)
	}
	if !r.Next.IsZero() {
		msg += "; next possible " + formatTime(r.Next)
	}
	return msg
}

// eventText is the chat message that tells someone about ev.
func eventText(ev invites.Event) string {
	switch ev := ev.(type) {
	case invites.InviteUsed:
		if ev.Invite.ResetFor != "" {
			return fmt.Sprintf("Your password reset link %s for %s was used.", ev.Invite.ID, ev.Invite.ResetFor)
		}
		what := fmt.Sprintf("Your invite %s from %s", ev.Invite.ID, formatTime(ev.Invite.Created))
		if ev.Invite.Event != "" {
			what = fmt.Sprintf("Invite %s from your event link %s", ev.Invite.ID, ev.Invite.Event)
		}
		if ev.Account == "" {
			return what + " was used."
		}
		text := fmt.Sprintf("%s was used: %s joined.", what, ev.Account)
		switch {
		case ev.Requested:
			text += " They have asked to add you as a contact: accept, and you are each other's contacts. Or add them: " + rosterURI(ev.Account)
		case ev.Introduce:
			text += " Add them as a contact: " + rosterURI(ev.Account)
		}
		return text
	case invites.Welcome:
		text := fmt.Sprintf("Welcome to %s! %s invited you.", ev.Domain, ev.Inviter)
		if ev.Requested {
			return text + " They are in your contacts already and get your request; once they accept, you see each other online: " + rosterURI(ev.Inviter)
		}
		return text + " Add them as a contact: " + rosterURI(ev.Inviter)
	case invites.GrantGiven:
		text := "You may now create account invites for " + ev.Domain + ": send invite to me. Send help for more."
		if ev.Requests {
			text += " You may also answer account requests from people who know nobody here: send requests."
		}
		return text
	case invites.RequestsGranted:
		return "You may now answer account requests for " + ev.Domain + " from people who know nobody here: send requests to see the open ones."
	case invites.RequestReceived:
		return requestNotice(ev.Request, ev.Domain)
	case invites.RequestAnswered:
		return answeredNotice(ev.Request)
	case invites.RequestDecided:
		return decidedNotice(ev.Request, ev.Domain)
	case invites.ResetCreated:
		if ev.Uncancellable {
			return fmt.Sprintf("A password reset link for your account %s was created by %s at %s. If you did not ask for it, tell an admin of this service at once by replying here or to %s: this server cannot cancel the link, which works until %s.",
				ev.Account, ev.By, formatTime(ev.At), ev.By, formatTime(ev.Expires))
		}
		return fmt.Sprintf("A password reset link for your account %s was created by %s at %s. If you did not ask for it, tell an admin of this service by replying here or to %s; the link can be cancelled.",
			ev.Account, ev.By, formatTime(ev.At), ev.By)
	case invites.GrantRevoked:
		if ev.Cancelled == 0 {
			return fmt.Sprintf("Your right to create invites for %s was revoked; none of your invites was still pending.", ev.Domain)
		}
		if ev.Cancelled == 1 {
			return fmt.Sprintf("Your right to create invites for %s was revoked; your pending invite was cancelled with it.", ev.Domain)
		}
		return fmt.Sprintf("Your right to create invites for %s was revoked; your %d pending invites were cancelled with it.",
			ev.Domain, ev.Cancelled)
	case invites.InviteCancelled:
		what := fmt.Sprintf("Your invite %s from %s", ev.Invite.ID, formatTime(ev.Invite.Created))
		if ev.Invite.ResetFor != "" {
			what = fmt.Sprintf("Your password reset link %s for %s", ev.Invite.ID, ev.Invite.ResetFor)
		}
		switch {
		case ev.Invite.Unrevocable:
			return fmt.Sprintf("%s was cancelled by %s, but the server cannot cancel it: the link works until %s.", what, ev.By, formatTime(ev.Invite.Expires))
		case !ev.Invite.Revoked:
			return fmt.Sprintf("%s was cancelled by %s; the server still accepts its link for now, and the bot keeps trying to revoke it.", what, ev.By)
		}
		return fmt.Sprintf("%s was cancelled by %s; its link no longer works.", what, ev.By)
	default:
		return ""
	}
}

// rosterURI is an XEP-0147 link that opens "add contact" for the bare JID
// j in the client that shows it. Characters a URI cannot carry as they are
// are percent-encoded (RFC 5122).
func rosterURI(j string) string {
	return "xmpp:" + url.PathEscape(j) + "?roster"
}

// Bounds of list replies. With every cell cut to maxCellBytes, a page of
// pageSize rows, shown as text, as a table and as a note, stays far below
// the stanza size servers accept (Prosody closes the stream past 512 KiB),
// whatever strangers put in their JIDs.
const (
	pageSize     = 25
	maxCellBytes = 160
)

// formLines is the most text lines a form's page of a list holds: poezio
// shows a form in the rows of its window less four (title, help lines and
// the tab bar), 20 of a 24-line terminal, and cannot scroll a form that has
// only text lines (it scrolls from one input field to the next), so a line
// past the bottom could never be read.
const formLines = 20

// page is the part of a long list one reply shows.
type page struct {
	number, from, to, total int
	// count is how many pages the list has.
	count int
}

// pageNumber reads a "page" argument (1-based; empty means 1).
func pageNumber(arg string) int {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// pageOf picks page n (from a "page" argument) of a list of total rows,
// pageSize rows a page.
func pageOf(arg string, total int) page {
	n := pageNumber(arg)
	from := min((n-1)*pageSize, total)
	return page{number: n, from: from, to: min(from+pageSize, total), total: total,
		count: max(1, (total+pageSize-1)/pageSize)}
}

// empty reports whether the page asked for lies past the end.
func (p page) empty() bool { return p.from >= p.total && p.total > 0 }

// beyond is the reply for a page past the end of the list.
func (p page) beyond() reply {
	return refusal(stanza.ItemNotFound, fmt.Sprintf("There is no page %d: the list has %s.", p.number, count(p.count, "page", "pages")))
}

// column is one column of a table reply: its name in the form's field
// names and the label its facts carry in a form.
type column struct{ name, label string }

// table builds a reply that is a list: lines of chat text under a heading,
// or, for a form, the same rows as a result form of short text lines, one
// fact each.
//
// The form has no <reported/> table: Gajim 1.7 (Debian 12) cannot show one
// at all (nbxmpp's extend_form makes such a form a MultipleDataForm, which
// has no iter_fields, and Gajim's FormGrid calls it: the command hangs at
// "Executing…"), and console clients show none. Every client shows fixed
// fields, so each line is one (see textFields). A form's page holds as
// many whole rows as fit in formLines, fewer than chat's pageSize.
type table struct {
	title, heading string
	cols           []column
	rows           []tableRow
}

// tableRow is one entry: its chat line and its form lines.
type tableRow struct {
	chat  string
	lines []string
}

// newTable starts a table titled title (the form's title) whose chat text
// and form begin with heading.
func newTable(title, heading string, cols ...column) *table {
	return &table{title: title, heading: heading, cols: cols}
}

// row adds one entry: line is its chat text, cells its values in column
// order. Both are cut to a bounded length. In the form the first cell
// heads the entry and each other cell that is not empty is a fact of its
// own, "label: value", wrapped into short lines.
func (t *table) row(line string, cells ...string) {
	r := tableRow{chat: plaintext.Truncate(line, len(cells)*maxCellBytes)}
	for i, v := range cells {
		v = plaintext.Truncate(v, maxCellBytes)
		switch {
		case i == 0:
			r.lines = append(r.lines, wrapLine(v, "")...)
		case v != "":
			r.lines = append(r.lines, wrapLine(t.cols[i].label+": "+v, "  ")...)
		}
	}
	t.rows = append(t.rows, r)
}

// reply is the page the request asks for ("page" argument), as chat text
// or, for a form, as a form of text lines. more is the chat command for
// the next page, without "page N"; footer is said after the rows (how to
// answer them). A page past the end is refused.
func (t *table) reply(req request, more, footer string) reply {
	if req.form {
		return t.formPage(req, footer)
	}
	p := pageOf(req.args["page"], len(t.rows))
	if p.empty() {
		return p.beyond()
	}
	var text strings.Builder
	text.WriteString(t.heading)
	for _, r := range t.rows[p.from:p.to] {
		text.WriteString("\n  " + r.chat)
	}
	if line := p.where(); line != "" {
		if p.to < p.total {
			line += fmt.Sprintf(" For more, send: %s page %d", more, p.number+1)
		}
		text.WriteString("\n  " + line)
	}
	if footer != "" {
		text.WriteString("\n  " + footer)
	}
	return reply{text: text.String()}
}

// where says which rows a page of a longer list shows, or nothing for a
// list of one page.
func (p page) where() string {
	if p.from == 0 && p.to == p.total {
		return ""
	}
	return fmt.Sprintf("Showing %d–%d of %d.", p.from+1, p.to, p.total)
}

// formMore is what a form's page says to show the next one.
func formMore(next int) string {
	return fmt.Sprintf(" For more, run it again with page %d.", next)
}

// formPage is a page of the table as a result form of at most formLines
// text lines: the heading, as many whole rows as fit, where the page is in
// the list with how to see the next, and the footer. A row too long for a
// page of its own is cut.
func (t *table) formPage(req request, footer string) reply {
	head := wrapLine(t.heading, "")
	var foot []string
	if footer != "" {
		foot = wrapLine(footer, "")
	}
	// Room for the rows, less the longest paging line the list can need.
	total := len(t.rows)
	worst := len(wrapLine(page{from: total - 1, to: total, total: total}.where()+formMore(total+1), ""))
	room := max(1, formLines-len(head)-len(foot)-worst)
	var pages []page
	for from := 0; from < total; {
		to, used := from, 0
		for to < total && (to == from || used+len(t.rows[to].lines) <= room) {
			used += len(t.rows[to].lines)
			to++
		}
		pages = append(pages, page{number: len(pages) + 1, from: from, to: to, total: total})
		from = to
	}
	n := pageNumber(req.args["page"])
	if n > len(pages) {
		return page{number: n, count: len(pages)}.beyond()
	}
	p := pages[n-1]
	lines := head
	for _, r := range t.rows[p.from:p.to] {
		rl := r.lines
		if len(rl) > room {
			rl = append(slices.Clip(rl[:room-1]), "  …")
		}
		lines = append(lines, rl...)
	}
	if line := p.where(); line != "" {
		if p.to < p.total {
			line += formMore(p.number + 1)
		}
		lines = append(lines, wrapLine(line, "")...)
	}
	lines = append(lines, foot...)
	form := &dataform.Form{Type: dataform.TypeResult, Title: t.title, Fields: textFields(fixedVarText, lines)}
	if len(pages) > 1 {
		form.Title += fmt.Sprintf(" (page %d of %d)", p.number, len(pages))
	}
	return reply{text: t.heading, form: form}
}

// textFields makes lines, each at most maxLineColumns wide (see wrapLine),
// the text lines of a form: fixed fields named name-1, name-2, … (for
// poezio's sake, see fixedVarError), with one value each (profanity shows
// only the first, poezio none of several).
func textFields(name string, lines []string) []dataform.Field {
	fields := make([]dataform.Field, 0, len(lines))
	for i, line := range lines {
		fields = append(fields, dataform.Field{Var: fmt.Sprintf("%s-%d", name, i+1), Type: dataform.Fixed, Values: []string{line}})
	}
	return fields
}

// markupLookalikes replaces the characters that make text Pango markup
// with ones that look alike: Gajim shows a fixed field's value (and a
// form's instructions) as markup, unescaped. A line with "<id>" or "&" in
// it failed to show at all (Gajim showed the field's name instead), and
// "<big>" in a note someone typed was taken as markup. Escaping them would
// show "&lt;" in every other client, which reads the text as it is.
var markupLookalikes = strings.NewReplacer("<", "‹", ">", "›", "&", "＆")

// markupSafe is s as a form's text line shows it: see markupLookalikes.
func markupSafe(s string) string { return markupLookalikes.Replace(s) }

// wrapLine cuts s into a form's text lines of at most maxLineColumns,
// between words where it can: the first line begins with indent, the others
// with two more spaces. It is where every text line of a form is made, so
// it also makes the text safe for clients that read it as markup
// (markupSafe).
func wrapLine(s, indent string) []string {
	s = markupSafe(s)
	var lines []string
	line, prefix := indent, indent
	empty := true
	flush := func() {
		lines = append(lines, line)
		prefix = indent + "  "
		line, empty = prefix, true
	}
	for _, word := range strings.Fields(s) {
		for columns(prefix)+columns(word) > maxLineColumns {
			// A word longer than a line: cut it.
			if !empty {
				flush()
			}
			head, rest := cutColumns(word, maxLineColumns-columns(prefix))
			line += head
			empty = false
			flush()
			word = rest
		}
		sep := " "
		if empty {
			sep = ""
		}
		if !empty && columns(line)+1+columns(word) > maxLineColumns {
			flush()
			sep = ""
		}
		line += sep + word
		empty = false
	}
	if !empty || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

// cutColumns splits s after at most n columns (at least one character).
func cutColumns(s string, n int) (string, string) {
	w := 0
	for i, r := range s {
		w += columns(string(r))
		if w > n && i > 0 {
			return s[:i], s[i:]
		}
	}
	return s, ""
}

// requestNotice tells an approver about a new account request. Each thing
// the requester wrote stands behind a label of ours, so none of it starts a
// line (where "> " would quote), and goes through inert.
func requestNotice(r invites.Request, domain string) string {
	var t strings.Builder
	fmt.Fprintf(&t, "New account request %s for %s, open until %s:\n", r.ID, domain, formatTime(r.Expires))
	fmt.Fprintf(&t, "  Name: %s\n", requesterName(r))
	fmt.Fprintf(&t, "  Contact: %s\n", requesterContact(r))
	fmt.Fprintf(&t, "  Says: %s\n", inert(r.Message))
	fmt.Fprintf(&t, "To answer: approve %s, or deny %s [reason]", r.ID, r.ID)
	return t.String()
}

// answeredNotice tells the other approvers who answered a request.
func answeredNotice(r invites.Request) string {
	if r.State == invites.RequestApproved {
		return fmt.Sprintf("Account request %s by %s was approved by %s (invite %s).", r.ID, requesterName(r), r.AnsweredBy, r.Invite)
	}
	return fmt.Sprintf("Account request %s by %s was declined by %s (%s).", r.ID, requesterName(r), r.AnsweredBy, denyReason(r.Reason))
}

// decidedNotice tells a requester, at the address they gave, how their
// request went. It carries no link: the address is unverified, and the
// invitation is for whoever holds the status page.
func decidedNotice(r invites.Request, domain string) string {
	if r.State == invites.RequestApproved {
		return fmt.Sprintf("Your request for an account on %s was approved. Open the page you were given when you asked: it now holds your invitation.", domain)
	}
	if r.Reason != "" {
		return fmt.Sprintf("Your request for an account on %s was declined. The reason given: %s", domain, r.Reason)
	}
	return fmt.Sprintf("Your request for an account on %s was declined.", domain)
}

// answeredText answers an approval or denial of a request that was
// answered already, saying by whom: the first answer wins.
func answeredText(r invites.Request) string {
	switch r.State {
	case invites.RequestApproved:
		return fmt.Sprintf("Request %s was already approved by %s at %s.", r.ID, r.AnsweredBy, formatTime(r.Answered))
	case invites.RequestDenied:
		return fmt.Sprintf("Request %s was already declined by %s at %s.", r.ID, r.AnsweredBy, formatTime(r.Answered))
	default:
		return fmt.Sprintf("Request %s expired at %s without an answer.", r.ID, formatTime(r.Expires))
	}
}

// denyReason shows the reason an approver gave for declining.
func denyReason(reason string) string {
	if reason == "" {
		return "no reason given"
	}
	return "reason: " + reason
}

// requesterName is the name a requester gave, inert and in quotes, so it
// reads as their words.
func requesterName(r invites.Request) string {
	return "“" + inert(r.Name) + "”"
}

// requesterContact is the address a requester gave, inert, or a note that
// they gave none.
func requesterContact(r invites.Request) string {
	if r.Contact == "" {
		return "none given"
	}
	return inert(r.Contact) + " (not verified)"
}

// Characters that clients read as the dot of a domain, the at of an
// address or the colon of a URI scheme (ASCII, full-width, small and
// ideographic forms).
var (
	inertDots   = ".。．｡﹒․"
	inertAts    = "@＠﹫"
	inertColons = ":：﹕"
)

// inert makes text a stranger wrote safe to show to approvers in chat:
// clients turn URIs (scheme:…), addresses (name@host) and domains
// (host.tld) into links, and a link the approver did not write must not
// appear. A bracket around each such dot, at and colon breaks every form,
// visibly, the way security reports write "example[.]org": the reader
// still sees what was written. The text is already one plain line
// (plaintext.Line); styling is left to the unstyled hint the messages
// carry.
func inert(s string) string {
	runes := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	wordy := func(i int) bool {
		return i >= 0 && i < len(runes) && (unicode.IsLetter(runes[i]) || unicode.IsDigit(runes[i]) || unicode.IsMark(runes[i]))
	}
	solid := func(i int) bool { return i >= 0 && i < len(runes) && !unicode.IsSpace(runes[i]) }
	for i, r := range runes {
		var defang bool
		switch {
		case strings.ContainsRune(inertDots, r):
			defang = solid(i-1) && wordy(i+1)
		case strings.ContainsRune(inertAts, r):
			defang = solid(i-1) && solid(i+1)
		case strings.ContainsRune(inertColons, r):
			defang = wordy(i-1) && solid(i+1)
		}
		if defang {
			b.WriteString("[" + string(r) + "]")
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// maxLineColumns is the widest text line a form shows: poezio gives each
// field's text half of its window, which its vertical tab list narrows by
// 20 columns: 30 columns of 80, the last one not written, and it cuts the
// rest.
const maxLineColumns = 29

// maxOptionColumns is the widest choice of a form's list: poezio draws it
// centred in the field's 30 columns, between an arrow in the first column
// and one in the last, and one wider than the field as nothing at all.
const maxOptionColumns = 28

// columns is how many terminal columns s takes: wide characters (East
// Asian, emoji) two, combining marks none.
func columns(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
		case width.LookupRune(r).Kind() == width.EastAsianWide || width.LookupRune(r).Kind() == width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}
