package bot

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/internal/plaintext"
	"durare.org/invitebot/invites"
)

// paramKind says how an operation parameter is validated and which data
// form field presents it; paramKinds holds what each kind decides.
type paramKind int

const (
	// kindJID is a bare JID, normalised (case-folded) on parsing.
	kindJID paramKind = iota
	// kindInviteID is an invite id as the store hands them out.
	kindInviteID
	// kindText is free text; as the last parameter it takes the rest of the
	// chat line.
	kindText
	// kindNumber is a positive whole number.
	kindNumber
	// kindSubject is what the audit log is about: a bare JID or an invite
	// id.
	kindSubject
	// kindAccount is an account on the home domain: a bare JID, or just
	// its localpart (the handler adds the domain).
	kindAccount
	// kindPage is a page number of a long list.
	kindPage
	// kindRequestID is an account request id.
	kindRequestID
	// kindYesNo is a yes or no ("grant <jid> requests yes").
	kindYesNo
	// kindDuration is how long something stays open: a Go duration such
	// as 3h or 90m, from a second to a day.
	kindDuration
	// kindEventID is an event link id (the same shape as invite ids).
	kindEventID
	// kindAllowance is a positive whole number, or none (also written 0):
	// a right that an update can take away again, unlike kindNumber's
	// limits, which fall back to a default. Its normal form for none is
	// "0".
	kindAllowance
	// kindCap is a positive whole number that the service bounds for each
	// person (the people an event link admits: an inviter's grant says how
	// many): its parser names no bound, since the one every number has is
	// not this person's, and the service's refusal names theirs.
	kindCap
	// kindLimit is a positive whole number, or default: a grant's own
	// limit, which an update can put back on the configured default. 0 is
	// refused rather than read as default, since "per-day 0" reads like
	// "no invites". Its normal form for default is "default", so a value
	// shown again in a form parses again.
	kindLimit
	// kindDepth is how much of a branch suspend takes: "deep" for all of
	// it, "direct" (the default) for the accounts the inviter's own
	// invites created. A word that is neither is left to the next
	// parameter, the reason.
	kindDepth

	// numParamKinds is how many kinds there are, not a kind: paramKinds
	// has this length, so a kind without an entry shows as a zero spec.
	numParamKinds
)

// keywordDefault is what an admin types to put a kindLimit back on the
// configured default.
const keywordDefault = "default"

// maxNumberParam bounds numeric parameters (limits, entry counts).
const maxNumberParam = 1000

// maxTextParam bounds free-text parameters (notes) so they stay notes.
const maxTextParam = 200

// kindSpec is everything that depends on a parameter's kind, so that a new
// kind is one entry in paramKinds rather than a case in every switch.
type kindSpec struct {
	// parse validates a raw value for p and returns its normal form; the
	// normal form parses again to itself, so a value shown again in a form
	// comes back unchanged.
	parse func(p param, raw string) (string, error)
	// field is the form field type for typing a value, so clients can
	// offer their own picker (a roster for JIDs).
	field string
	// keywordValue is what chat usage shows after a keyword parameter's
	// keyword; empty shows N.
	keywordValue string
	// restOfLine lets the kind, as the last positional chat parameter,
	// take the rest of the line: free text has spaces in it.
	restOfLine bool
	// keepsUnchanged makes a form list start on valueUnchanged, and a form
	// submitted with it leave the parameter out. A yes/no setting needs
	// it: unlike a text field, a list cannot be left empty.
	keepsUnchanged bool
}

// paramKinds holds each paramKind's spec, indexed by kind.
var paramKinds = [numParamKinds]kindSpec{
	kindJID:       {parse: parseJID, field: dataform.JIDSingle},
	kindInviteID:  {parse: idParser("an invite id"), field: dataform.TextSingle},
	kindText:      {parse: parseText, field: dataform.TextSingle, restOfLine: true},
	kindNumber:    {parse: parseNumber, field: dataform.TextSingle},
	kindSubject:   {parse: parseSubject, field: dataform.TextSingle},
	kindAccount:   {parse: parseAccount, field: dataform.TextSingle},
	kindPage:      {parse: parsePage, field: dataform.TextSingle},
	kindRequestID: {parse: requestIDParser, field: dataform.TextSingle},
	kindYesNo:     {parse: parseYesNo, field: dataform.TextSingle, keywordValue: "yes|no", keepsUnchanged: true},
	kindDuration:  {parse: parseDuration, field: dataform.TextSingle},
	kindEventID:   {parse: idParser("an event link id"), field: dataform.TextSingle},
	kindAllowance: {parse: parseAllowance, field: dataform.TextSingle, keywordValue: "N|none"},
	kindLimit:     {parse: parseLimit, field: dataform.TextSingle, keywordValue: "N|" + keywordDefault},
	kindCap:       {parse: parseCap, field: dataform.TextSingle},
	kindDepth:     {parse: parseDepth, field: dataform.TextSingle},
}

// parseDepth reads deep or direct.
func parseDepth(_ param, raw string) (string, error) {
	switch v := strings.ToLower(raw); v {
	case depthDeep, depthDirect:
		return v, nil
	}
	return "", fmt.Errorf("%s is not deep or direct", echo(raw))
}

// spec is what p's kind decides about it.
func (p param) spec() kindSpec { return paramKinds[p.kind] }

// Mistakes in parameters are said in the words of the view they were
// typed in: chat names a parameter as its usage line does ("uses", "<jid>"),
// a form by its field's label ("How many people at most").

// formWorded is an error that a form says in words of its own.
type formWorded interface {
	error
	inForm() string
}

// mistakeText is err as a sentence for chat, or for a form when form is
// set.
func mistakeText(err error, form bool) string {
	var fw formWorded
	if form && errors.As(err, &fw) {
		return sentence(fw.inForm())
	}
	return sentence(err.Error())
}

// paramError is a value refused for parameter p: what is wrong with it,
// said after the parameter's name.
type paramError struct {
	p    param
	what string
}

// refused makes a paramError; what is a format for fmt.Sprintf.
func refused(p param, what string, args ...any) error {
	return &paramError{p: p, what: fmt.Sprintf(what, args...)}
}

func (e *paramError) Error() string  { return e.p.name + " " + e.what }
func (e *paramError) inForm() string { return e.p.fieldName() + " " + e.what }

// missingError is a required parameter left out.
type missingError struct {
	p param
	// choose and typed say what the form offers for p: a list, and a
	// field to type a value that is not in it.
	choose, typed bool
}

func (e *missingError) Error() string {
	return fmt.Sprintf("missing <%s>: %s", e.p.name, lowerFirst(e.p.label))
}

func (e *missingError) inForm() string {
	head, hint := e.p.labelParts()
	text := "“" + head + "” is missing"
	switch {
	case e.typed:
		text += ": choose one or type it"
	case e.choose:
		text += ": choose one"
	}
	if hint != "" {
		text += " (" + hint + ")"
	}
	return text
}

// viewError is a mistake whose words differ in chat and in a form (a form
// offers a list where chat names a command).
type viewError struct{ chat, form string }

func (e viewError) Error() string  { return e.chat }
func (e viewError) inForm() string { return e.form }

// labelParts splits p's label into the field's name and the hint in
// brackets after it: "Open for (e.g. 3h)" is "Open for" and "e.g. 3h".
func (p param) labelParts() (head, hint string) {
	head, hint, ok := strings.Cut(p.label, " (")
	if !ok {
		return p.label, ""
	}
	return head, strings.TrimSuffix(hint, ")")
}

// fieldName is how a form's mistake names p: its label without the hint,
// in quotes.
func (p param) fieldName() string {
	head, _ := p.labelParts()
	return "“" + head + "”"
}

// lowerFirst lowers the first letter of s, unless its first word is an
// abbreviation (JID).
func lowerFirst(s string) string {
	word, _, _ := strings.Cut(s, " ")
	if word == "" || strings.ToUpper(word) == word {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// maxEcho bounds how much of a refused value a refusal repeats: a form
// can carry far more than a chat line, and a 100 KB value was sent back
// twice (in the note and in the form's error field).
const maxEcho = 40

// echo quotes a refused value for the refusal, cut to maxEcho bytes.
func echo(raw string) string {
	return strconv.Quote(plaintext.Truncate(raw, maxEcho))
}

// parseParam validates one raw argument for p and returns its normal form.
func parseParam(p param, raw string) (string, error) {
	return p.spec().parse(p, raw)
}

func parseJID(_ param, raw string) (string, error) {
	return parseBareJID(raw)
}

// parseAccount reads an account on the home domain; a localpart alone
// stays one, and the handler adds the domain.
func parseAccount(_ param, raw string) (string, error) {
	if !strings.Contains(raw, "@") && !strings.HasPrefix(raw, "xmpp:") {
		// A localpart alone: check it the way a JID's is checked.
		j, err := jid.New(raw, "localpart.invalid", "")
		if err != nil || j.Localpart() == "" {
			return "", fmt.Errorf("%s is not a username or a bare JID", echo(raw))
		}
		return j.Localpart(), nil
	}
	return parseBareJID(raw)
}

func parsePage(p param, raw string) (string, error) {
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxNumberParam {
		return "", refused(p, "must be a number from 1 to %d, not %s", maxNumberParam, echo(raw))
	}
	return strconv.Itoa(n), nil
}

// idParser reads an id of the one shape the store gives invites, account
// requests and event links; notID says which was expected, so that the
// refusal names it.
func idParser(notID string) func(param, string) (string, error) {
	return func(_ param, raw string) (string, error) {
		id := strings.ToLower(raw)
		if !invites.ValidID(id) {
			return "", fmt.Errorf("%s is not %s", echo(raw), notID)
		}
		return id, nil
	}
}

// requestIDParser reads an account request id; its refusal points to the
// list of open requests the way the view it was typed in offers it.
func requestIDParser(_ param, raw string) (string, error) {
	id := strings.ToLower(raw)
	if !invites.ValidID(id) {
		return "", viewError{chat: echo(raw) + " is not a request id; send requests to list them",
			form: echo(raw) + " is not a request id; choose one from the list"}
	}
	return id, nil
}

// parseYesNo accepts the ways people and clients write a boolean.
func parseYesNo(p param, raw string) (string, error) {
	switch strings.ToLower(raw) {
	case "yes", "y", "true", "on", "1":
		return "yes", nil
	case "no", "n", "false", "off", "0":
		return "no", nil
	}
	return "", refused(p, "must be yes or no, not %s", echo(raw))
}

func parseNumber(p param, raw string) (string, error) {
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxNumberParam {
		return "", refused(p, "must be a number from 1 to %d, not %s", maxNumberParam, echo(raw))
	}
	return strconv.Itoa(n), nil
}

// parseCap reads a kindCap value. A number too large for an int is kept as
// the largest one, for the service to refuse with the bound that applies.
func parseCap(p param, raw string) (string, error) {
	n, err := strconv.Atoi(raw)
	if errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(raw, "-") {
		n, err = math.MaxInt32, nil
	}
	if err != nil || n < 1 {
		return "", refused(p, "must be a whole number, such as 20, not %s", echo(raw))
	}
	return strconv.Itoa(min(n, math.MaxInt32)), nil
}

// parseAllowance reads a kindAllowance value; none and 0 both take the
// right away, and "0" is the normal form of both.
func parseAllowance(p param, raw string) (string, error) {
	if strings.EqualFold(raw, "none") {
		return "0", nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 || n > maxNumberParam {
		return "", refused(p, "must be a number from 1 to %d, or none, not %s", maxNumberParam, echo(raw))
	}
	return strconv.Itoa(n), nil
}

// parseLimit reads a kindLimit value. An admin who types 0 most likely
// wants either the default or no invites at all, and the two are far
// apart; the answer names the keyword for the first (revoke is the other).
func parseLimit(p param, raw string) (string, error) {
	if strings.EqualFold(raw, keywordDefault) {
		return keywordDefault, nil
	}
	n, err := strconv.Atoi(raw)
	switch {
	case err == nil && n == 0:
		return "", refused(p, "must be at least 1; for the configured default, write %s", keywordDefault)
	case err != nil || n < 1 || n > maxNumberParam:
		return "", refused(p, "must be a number from 1 to %d, or %s, not %s", maxNumberParam, keywordDefault, echo(raw))
	}
	return strconv.Itoa(n), nil
}

// parseSubject reads what the audit log is about. An id is tried first:
// ids have no @, so the two cannot be confused.
func parseSubject(_ param, raw string) (string, error) {
	if id := strings.ToLower(raw); invites.ValidID(id) {
		return id, nil
	}
	if strings.Contains(raw, "@") {
		if bare, err := parseBareJID(raw); err == nil {
			return bare, nil
		}
	}
	return "", fmt.Errorf("%s is neither a bare JID nor an invite id", echo(raw))
}

// parseText reads free text. It comes back in lists and refusals: one
// line, no control or bidi characters, whatever the client sent.
func parseText(p param, raw string) (string, error) {
	text := plaintext.Line(raw)
	if len(text) > maxTextParam {
		return "", refused(p, "is longer than %d bytes", maxTextParam)
	}
	return text, nil
}

// parseBareJID reads a bare JID typed by a person, with or without an
// xmpp: scheme (copied from a link), and returns its normal form.
func parseBareJID(raw string) (string, error) {
	trimmed := strings.TrimPrefix(raw, "xmpp:")
	if i := strings.IndexByte(trimmed, '?'); i >= 0 {
		trimmed = trimmed[:i]
	}
	j, err := jid.Parse(trimmed)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		return "", fmt.Errorf("%s is not a bare JID like someone@example.org", echo(raw))
	}
	return j.String(), nil
}
