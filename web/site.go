package web

import (
	"bytes"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"durare.org/invitebot/invites"
)

// site is what every page shares: the configuration, where the pages live,
// the language of the request being served, and the means to answer it.
// Each kind of page (invitePages, requestPages, eventPages) embeds it by
// value, so that the per-request copy made by localized carries its own
// text and no language leaks between concurrent requests.
type site struct {
	cfg    Config
	base   string // path prefix taken from PublicURL, no trailing slash
	secure bool   // PublicURL is https
	log    *slog.Logger
	now    func() time.Time
	// text is the language of the request being served: each request
	// gets its own copy of the page type (see localized), so that every
	// page method just reads h.text.
	text   *Text
	langs  *negotiator // nil when Config.Text pins the language
	pages  map[string]*template.Template
	csrf   *csrf
	origin *http.CrossOriginProtection
}

// shared gives localized the site inside any page type that embeds one.
func (s *site) shared() *site { return s }

// localized serves page in the language the request asks for, through a
// shallow copy of p whose text is that language: the page methods stay
// unaware of negotiation, and a copy, not p, is what changes.
func localized[P any, PP interface {
	*P
	shared() *site
}](p PP, page func(PP, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		langs := p.shared().langs
		if langs == nil {
			page(p, w, r)
			return
		}
		// Caches (and the browser's back button) must not hand a German
		// page to an English reader.
		w.Header().Add("Vary", "Accept-Language")
		lp := *p
		PP(&lp).shared().text = langs.pick(r.Header.Get("Accept-Language"))
		page(&lp, w, r)
	}
}

// pageData is what every template gets; each page uses its part.
type pageData struct {
	T     *Text
	Title string
	Base  string

	// landing
	Headline    template.HTML // the text escaped, with line breaks allowed in addresses
	Expiry      string
	Domain      string
	URI         template.URL
	QRPNG       string
	Form        formData
	MinPassword int
	MaxPassword int
	MaxUsername int

	// ResetFor is the account a password reset link is for; empty on an
	// invitation.
	ResetFor string

	// success
	JID string

	// error
	Message string
	Hint    string

	// Account requests: the request form; on the landing page, the line
	// that says why it is shown and where its form posts (empty: to the
	// page itself); on the status page, its own address to keep and the
	// way to ask again.
	Request   requestForm
	Notice    string
	Action    string
	StatusURL string
	AskAgain  string
	// event: how many invitations the link may still hand out.
	Left string
	// confirm: the form that takes the code from the mail (signup.go).
	Code codeForm
	// recover: the password recovery form (recover.go).
	Recover recoverForm
	// tree: the branch drawn (tree.go).
	Tree *treeView
}

// formData is the registration form's state. It never holds a password.
type formData struct {
	CSRF     string
	Username string
	Error    string
	// Field is the id of the field Error is about ("username",
	// "password", "password2"); empty when it is about none.
	Field string
}

// fieldARIA is the aria attributes of form field id: aria-describedby
// naming its hint (if it has one) and, when the form's error is about
// this field (errField), the error as well, with aria-invalid, so that a
// screen reader on the field says what is wrong with it.
func fieldARIA(id, errField, hint string) template.HTMLAttr {
	var refs []string
	if hint != "" {
		refs = append(refs, hint)
	}
	invalid := id != "" && id == errField
	if invalid {
		refs = append(refs, "form-error")
	}
	var b strings.Builder
	if len(refs) > 0 {
		b.WriteString(`aria-describedby="` + template.HTMLEscapeString(strings.Join(refs, " ")) + `"`)
	}
	if invalid {
		b.WriteString(` aria-invalid="true"`)
	}
	return template.HTMLAttr(b.String()) // ids escaped above
}

// render writes page with status, or a plain 500 if the template fails:
// rendering into a buffer first means no half page goes out.
func (s *site) render(w http.ResponseWriter, r *http.Request, status int, page string, d pageData) {
	d.T = s.text
	d.Base = s.base
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, "base", d); err != nil {
		s.log.ErrorContext(r.Context(), "render page", slog.String("page", page), slog.Any("err", err))
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Language", s.text.Lang)
	// Invite pages change state and some carry the token: nobody keeps them.
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows a short page for a status the visitor cannot fix here.
func (s *site) renderError(w http.ResponseWriter, r *http.Request, status int, title, msg, hint string) {
	s.render(w, r, status, "error", pageData{Title: title, Message: msg, Hint: hint})
}

func (s *site) notFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusNotFound, s.text.NotFoundTitle, s.text.NotFoundBody, "")
}

// methodNotAllowed answers a method the path does not take, naming the
// ones it does (allow, as the Allow header lists them).
func methodNotAllowed(allow string) func(*site, http.ResponseWriter, *http.Request) {
	return func(s *site, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.renderError(w, r, http.StatusMethodNotAllowed, s.text.MethodNotAllowedTitle, s.text.MethodNotAllowedBody, "")
	}
}

func (s *site) gone(w http.ResponseWriter, r *http.Request, body string) {
	s.renderError(w, r, http.StatusGone, s.text.GoneTitle, body, s.text.AskInviterAgain)
}

func (s *site) internal(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusInternalServerError, s.text.InternalTitle, s.text.ErrInternal, "")
}

// unavailable answers 503: the service hands out nothing now, and the
// client may try again after wait.
func (s *site) unavailable(w http.ResponseWriter, r *http.Request, wait time.Duration, title, msg string) {
	w.Header().Set("Retry-After", retryAfter(wait))
	s.renderError(w, r, http.StatusServiceUnavailable, title, msg, "")
}

// retryAfter is wait as a Retry-After value: whole seconds, rounded up to
// the next second as tooMany does, at least one.
func retryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int(wait/time.Second)+1))
}

// tooMany answers a client over its limit, saying when it may try again
// (wait, rounded up to the next second).
func (s *site) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
	s.renderError(w, r, http.StatusTooManyRequests, s.text.TooManyTitle, msg, "")
}

// readForm parses the posted form, bounded to maxFormBytes so a huge body
// costs nothing, and answers 400 itself, reporting false, when it cannot.
func (s *site) readForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, s.text.ForbiddenTitle, s.text.ErrFormExpired, "")
		return false
	}
	return true
}

// renderLanding shows the landing page with the form in state f, adding a
// fresh CSRF token (and the cookie it is bound to, if missing). extra
// adjusts the page for where it is shown (an account request's status
// page). It is the site's, not the invite pages', because an approved
// request's status page shows it too.
func (s *site) renderLanding(w http.ResponseWriter, r *http.Request, status int, inv invites.Invite, f formData, extra ...func(*pageData)) {
	f.CSRF = s.csrf.token(s.csrf.cookieValue(w, r), inv.ID)
	domain := s.domainOf(inv)
	d := pageData{
		Title:       fmt.Sprintf(s.text.LandingTitle, domain),
		Domain:      domain,
		URI:         template.URL(inv.URI), // checked to be xmpp: in lookup
		QRPNG:       s.base + "/i/" + url.PathEscape(inv.ID) + "/qr.png",
		Form:        f,
		MinPassword: MinPasswordLen,
		MaxPassword: maxPasswordLen,
		MaxUsername: maxUsernameLen,
	}
	switch {
	case inv.ResetFor != "":
		d.Title, d.ResetFor = s.text.ResetTitle, inv.ResetFor
		d.Headline = withAddrs(s.text.ResetHeadline, inv.ResetFor)
		d.Form.Username = localOf(inv.ResetFor)
	case inv.Inviter != "":
		d.Headline = withAddrs(s.text.InvitedYou, inv.Inviter, domain)
	default:
		d.Headline = withAddrs(s.text.InvitedAnon, domain)
	}
	noExpiry, expiresAt := s.text.NoExpiry, s.text.ExpiresAt
	if inv.ResetFor != "" {
		noExpiry, expiresAt = s.text.ResetNoExpiry, s.text.ResetExpiresAt
	}
	if inv.Expires.IsZero() {
		d.Expiry = noExpiry
	} else {
		// lookup let only unexpired invites through, so the time left is
		// positive.
		d.Expiry = fmt.Sprintf(expiresAt, s.text.timeLeft(inv.Expires.Sub(s.now())), s.text.date(inv.Expires.UTC()))
	}
	for _, x := range extra {
		x(&d)
	}
	// Apps that fetch the page learn the invite without parsing HTML.
	w.Header().Set("Link", "<"+inv.URI+">; rel=\"alternate\"")
	s.render(w, r, status, "landing", d)
}

// localOf is the localpart of a bare JID.
func localOf(bare string) string {
	local, _, _ := strings.Cut(bare, "@")
	return local
}

func (s *site) domainOf(inv invites.Invite) string {
	if inv.Domain != "" {
		return inv.Domain
	}
	return s.cfg.Domain
}

// Addresses (JIDs, domains) are marked up to wrap well on narrow screens:
// <wbr> before each "@" and "." lets a long one break at its parts rather
// than mid-word, and an inline block around the word that holds it keeps a
// short one whole on its line, punctuation included (style.css, .addr).
// <bdi> isolates the address from a right-to-left sentence around it.

// addrVerb is a placeholder that withAddrs fills with an address.
var addrVerb = regexp.MustCompile(`%(\[\d+\])?s`)

// isolated escapes addr for HTML with its break opportunities.
func isolated(addr string) string {
	s := strings.NewReplacer("@", "<wbr>@", ".", "<wbr>.").Replace(template.HTMLEscapeString(addr))
	return "<bdi>" + s + "</bdi>"
}

// breakable is one address on its own, for the templates.
func breakable(addr string) template.HTML {
	return template.HTML(`<span class="addr">` + isolated(addr) + "</span>") // escaped by isolated
}

// withAddrs formats a sentence whose arguments are addresses, escaping the
// sentence and keeping each word that holds an address in one block.
func withAddrs(format string, addrs ...string) template.HTML {
	words := strings.Split(template.HTMLEscapeString(format), " ")
	for i, w := range words {
		if addrVerb.MatchString(w) {
			words[i] = `<span class="addr">` + w + "</span>"
		}
	}
	args := make([]any, len(addrs))
	for i, a := range addrs {
		args[i] = isolated(a)
	}
	return template.HTML(fmt.Sprintf(strings.Join(words, " "), args...)) // every part escaped
}
