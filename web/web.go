// Package web is the bot's HTTP face: a landing page per invite with the
// xmpp: link, a QR code and client recommendations, registration in the
// browser for clients that cannot use preauth URIs, the event link pages
// that hand each visitor an invite of their own (event.go), and the
// operations endpoints /healthz and /metrics.
//
// It holds no invite logic: it looks invites up and asks the invites
// service to register accounts, through the small interfaces below.
// Passwords pass through to the service and are never logged or kept.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
)

// Tunables.
const (
	// MinPasswordLen is the shortest password the form accepts, in
	// characters. Exported so the bot's texts can quote it.
	MinPasswordLen = 8
	// maxPasswordLen bounds the password in bytes: enough for any
	// passphrase, and it keeps hashing cost on the server bounded.
	maxPasswordLen = 1024
	// maxUsernameLen is the longest localpart XMPP allows (RFC 7622), in
	// bytes.
	maxUsernameLen = 1023
	// maxFormBytes bounds a registration POST body.
	maxFormBytes = 16 << 10
	// registerTimeout bounds one browser registration, dial and IQs
	// included, so a hung server does not hold the request forever.
	registerTimeout = 30 * time.Second
	// healthTimeout bounds the store ping of /healthz; monitoring systems
	// time out on their own after a few seconds.
	healthTimeout = 2 * time.Second
	// staticMaxAge is how long browsers may cache the stylesheet.
	staticMaxAge = time.Hour
)

// Invites is what the web pages need from the invites service.
type Invites interface {
	// Lookup returns the invite with that id; invites.ErrNoSuchInvite if
	// there is none.
	Lookup(ctx context.Context, id string) (invites.Invite, error)
	// RegisterAccount creates username@domain with the invite's token and
	// marks the invite used. See invites.Service.RegisterAccount for the
	// errors.
	RegisterAccount(ctx context.Context, id, username, password string) (jid.JID, error)
}

// Health tells /healthz whether the bot can do its job.
type Health interface {
	// LinkUp reports whether the component link is established.
	LinkUp() bool
	// MinterUp reports whether the minter account is logged in; true
	// when the component mints and there is no such session.
	MinterUp() bool
	// PingStore returns an error if the database does not answer.
	PingStore(ctx context.Context) error
}

// ModuleHealth is optionally implemented by a Health: /healthz then also
// names the state of the server's mod_invitebot ("loaded", "not loaded",
// "unknown"). It is information, not a failure: the bot works without it.
type ModuleHealth interface {
	ServerModule() string
}

// Config configures the web handler.
type Config struct {
	// PublicURL is how people reach the server, e.g.
	// https://invites.example.org. Its path, if any, prefixes every link
	// the pages contain (the proxy is expected to strip it), and an https
	// scheme makes cookies Secure and turns on HSTS.
	PublicURL string
	// Domain is the XMPP domain shown when an invite does not name one.
	Domain string
	// Log receives one line per registration and every internal error;
	// nil discards.
	Log *slog.Logger
	// TrustProxy takes the client address for rate limiting from the last
	// X-Forwarded-For entry. Set it only behind a reverse proxy that
	// appends to that header, or clients could pick their own address.
	TrustProxy bool
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// Text, if set, serves every page in that one text. Nil offers English
	// and every catalog in locales/, picked per request by Accept-Language.
	Text *Text
	// Requests, when set, serves the status pages of account requests
	// (/r/...), whose approved ones are invitations; with RequestForm it
	// also takes new requests (/request).
	Requests Requests
	// RequestForm opens the request page (http.requests).
	RequestForm bool
	// RequestsPerHour bounds the requests one client address may send
	// per hour; zero means DefaultRequestsPerHour.
	RequestsPerHour int
	// Events, when set, serves the event link pages (/e/{id}); without
	// it they are not found.
	Events Events
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the templates that are whole pages (each with base.html).
var pageNames = []string{"landing", "success", "error", "request", "status", "event"}

// templateFuncs are the helpers the templates may call.
var templateFuncs = template.FuncMap{
	"addr":     breakable,
	"withAddr": withAddrs,
}

// parseTemplates builds one template set per page, since every page defines
// its own "content" block for the shared layout.
func parseTemplates() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).
			ParseFS(templateFS, "templates/base.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// handler serves every route; see New.
type handler struct {
	cfg     Config
	base    string // path prefix taken from PublicURL, no trailing slash
	secure  bool   // PublicURL is https
	inv     Invites
	health  Health
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
	// text is the language of the request being served: each request
	// gets its own copy of the handler (see localized), so that every
	// page method just reads h.text.
	text   *Text
	langs  *negotiator // nil when Config.Text pins the language
	pages  map[string]*template.Template
	csrf   *csrf
	origin *http.CrossOriginProtection
	limit  *limiter
	// reqs and reqLimit serve account requests; reqs is nil without them.
	reqs     Requests
	reqLimit *limiter
	// eventLimit bounds event link claims per address (see
	// eventAttempts).
	eventLimit *limiter
}

// New returns the web handler. Invites and Health must not be nil; a nil
// Metrics still counts nothing and /metrics then answers 404. Embedded
// templates that fail to parse are a programming error and panic.
func New(cfg Config, inv Invites, health Health, m *Metrics) http.Handler {
	h := &handler{cfg: cfg, inv: inv, health: health, metrics: m, log: cfg.Log, now: cfg.Now, text: &English}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if cfg.Text != nil {
		h.text = cfg.Text
	} else {
		h.langs = newNegotiator(languages)
	}
	h.origin = http.NewCrossOriginProtection()
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		h.base = strings.TrimRight(u.Path, "/")
		h.secure = u.Scheme == "https"
		// Behind a proxy the Host header may be the backend's address, so
		// the public origin must be named for browsers that send only Origin.
		if err := h.origin.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			h.log.Warn("public_url not usable as an origin", slog.String("public_url", cfg.PublicURL), slog.Any("err", err))
		}
	} else if cfg.PublicURL != "" {
		h.log.Warn("public_url is not an absolute URL", slog.String("public_url", cfg.PublicURL))
	}
	pages, err := parseTemplates()
	if err != nil {
		panic(err)
	}
	h.pages = pages
	h.csrf = newCSRF(h.secure, h.base, h.now)
	h.limit = newLimiter(h.now)
	h.reqs = cfg.Requests
	perHour := cfg.RequestsPerHour
	if perHour <= 0 {
		perHour = DefaultRequestsPerHour
	}
	h.reqLimit = newLimiterOf(perHour, time.Hour, h.now)
	h.eventLimit = newLimiterOf(eventAttempts, rateWindow, h.now)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /i/{id}", h.localized((*handler).landing))
	mux.HandleFunc("POST /i/{id}", h.localized((*handler).register))
	// The images speak no language, but their error pages do.
	mux.HandleFunc("GET /i/{id}/qr.png", h.localized(qr("image/png", qrPNG)))
	mux.HandleFunc("GET /i/{id}/qr.svg", h.localized(qr("image/svg+xml", qrSVG)))
	mux.HandleFunc("GET /request", h.localized((*handler).requestPage))
	mux.HandleFunc("POST /request", h.localized((*handler).submitRequest))
	mux.HandleFunc("GET /r/{key}", h.localized((*handler).status))
	if cfg.Events != nil {
		mux.HandleFunc("GET /e/{id}", h.localized((*handler).eventPage))
		mux.HandleFunc("POST /e/{id}", h.localized((*handler).eventClaim))
		mux.HandleFunc("GET /e/{id}/qr.png", h.localized(eventQR("image/png", qrPNG)))
		mux.HandleFunc("GET /e/{id}/qr.svg", h.localized(eventQR("image/svg+xml", qrSVG)))
	}
	mux.HandleFunc("GET /static/style.css", h.static("static/style.css"))
	mux.HandleFunc("GET /healthz", h.healthz)
	if m != nil {
		mux.Handle("GET /metrics", m.Handler())
	}
	mux.HandleFunc("/", h.localized((*handler).notFound))
	return h.instrument(h.securityHeaders(mux))
}

// localized serves page in the language the request asks for, through a
// shallow copy of the handler whose text is that language: the page
// methods stay unaware of negotiation.
func (h *handler) localized(page func(*handler, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.langs == nil {
			page(h, w, r)
			return
		}
		// Caches (and the browser's back button) must not hand a German
		// page to an English reader.
		w.Header().Add("Vary", "Accept-Language")
		lh := *h
		lh.text = h.langs.pick(r.Header.Get("Accept-Language"))
		page(&lh, w, r)
	}
}

// LandingURL is the landing page of invite id under publicURL. The bot
// uses it so chat replies link exactly where this package serves.
func LandingURL(publicURL, id string) string {
	return strings.TrimRight(publicURL, "/") + "/i/" + url.PathEscape(id)
}

// QRURL is the PNG QR code of invite id under publicURL.
func QRURL(publicURL, id string) string {
	return LandingURL(publicURL, id) + "/qr.png"
}

// securityHeaders sets what every response carries. The pages need no
// script and load nothing from elsewhere, so the policy allows only our
// own stylesheet and images. no-referrer keeps the invite id in the URL
// from leaking to the client websites the page links to.
func (h *handler) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("X-Robots-Tag", "noindex, nofollow")
		if h.secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status code for the request counter.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts requests by route pattern, never by raw path: paths
// carry invite ids and would make the label set unbounded.
func (h *handler) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		route := r.Pattern // set by the ServeMux on this same request
		if route == "" {
			route = "unmatched"
		}
		h.metrics.request(route, strconv.Itoa(code))
	})
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
}

// formData is the registration form's state. It never holds a password.
type formData struct {
	CSRF     string
	Username string
	Error    string
}

// render writes page with status, or a plain 500 if the template fails:
// rendering into a buffer first means no half page goes out.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, page string, d pageData) {
	d.T = h.text
	d.Base = h.base
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, "base", d); err != nil {
		h.log.ErrorContext(r.Context(), "render page", slog.String("page", page), slog.Any("err", err))
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Language", h.text.Lang)
	// Invite pages change state and some carry the token: nobody keeps them.
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows a short page for a status the visitor cannot fix here.
func (h *handler) renderError(w http.ResponseWriter, r *http.Request, status int, title, msg, hint string) {
	h.render(w, r, status, "error", pageData{Title: title, Message: msg, Hint: hint})
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.renderError(w, r, http.StatusNotFound, h.text.NotFoundTitle, h.text.NotFoundBody, "")
}

func (h *handler) gone(w http.ResponseWriter, r *http.Request, body string) {
	h.renderError(w, r, http.StatusGone, h.text.GoneTitle, body, h.text.AskInviterAgain)
}

func (h *handler) internal(w http.ResponseWriter, r *http.Request) {
	h.renderError(w, r, http.StatusInternalServerError, h.text.InternalTitle, h.text.ErrInternal, "")
}

// lookup finds the invite named in the path and answers 404, 410 or 500
// itself when there is no usable one. Only the invite asked for is ever
// read, so a page reveals nothing about other invites.
func (h *handler) lookup(w http.ResponseWriter, r *http.Request) (invites.Invite, bool) {
	id := r.PathValue("id")
	if !invites.ValidID(id) {
		h.notFound(w, r)
		return invites.Invite{}, false
	}
	inv, err := h.inv.Lookup(r.Context(), id)
	switch {
	case errors.Is(err, invites.ErrNoSuchInvite):
		h.notFound(w, r)
		return invites.Invite{}, false
	case err != nil:
		h.log.ErrorContext(r.Context(), "look up invite", slog.String("id", id), slog.Any("err", err))
		h.internal(w, r)
		return invites.Invite{}, false
	case !inv.Usable(h.now()):
		if h.welcomeBack(w, r, inv) {
			return invites.Invite{}, false
		}
		h.gone(w, r, h.text.GoneBody)
		return invites.Invite{}, false
	case !strings.HasPrefix(inv.URI, "xmpp:"):
		// The URI becomes a link and a header: anything else is corrupt data.
		h.log.ErrorContext(r.Context(), "invite has no xmpp: URI", slog.String("id", id))
		h.internal(w, r)
		return invites.Invite{}, false
	}
	return inv, true
}

// landing serves GET /i/{id}.
func (h *handler) landing(w http.ResponseWriter, r *http.Request) {
	inv, ok := h.lookup(w, r)
	if !ok {
		return
	}
	h.renderLanding(w, r, http.StatusOK, inv, formData{})
}

// renderLanding shows the landing page with the form in state f, adding a
// fresh CSRF token (and the cookie it is bound to, if missing). extra
// adjusts the page for where it is shown (an account request's status
// page).
func (h *handler) renderLanding(w http.ResponseWriter, r *http.Request, status int, inv invites.Invite, f formData, extra ...func(*pageData)) {
	f.CSRF = h.csrf.token(h.csrf.cookieValue(w, r), inv.ID)
	domain := h.domainOf(inv)
	d := pageData{
		Title:       fmt.Sprintf(h.text.LandingTitle, domain),
		Domain:      domain,
		URI:         template.URL(inv.URI), // checked to be xmpp: in lookup
		QRPNG:       h.base + "/i/" + url.PathEscape(inv.ID) + "/qr.png",
		Form:        f,
		MinPassword: MinPasswordLen,
		MaxPassword: maxPasswordLen,
		MaxUsername: maxUsernameLen,
	}
	switch {
	case inv.ResetFor != "":
		d.Title, d.ResetFor = h.text.ResetTitle, inv.ResetFor
		d.Headline = withAddrs(h.text.ResetHeadline, inv.ResetFor)
		d.Form.Username = localOf(inv.ResetFor)
	case inv.Inviter != "":
		d.Headline = withAddrs(h.text.InvitedYou, inv.Inviter, domain)
	default:
		d.Headline = withAddrs(h.text.InvitedAnon, domain)
	}
	if inv.Expires.IsZero() {
		d.Expiry = h.text.NoExpiry
	} else {
		// lookup let only unexpired invites through, so the time left is
		// positive.
		d.Expiry = fmt.Sprintf(h.text.ExpiresAt, h.text.timeLeft(inv.Expires.Sub(h.now())), h.text.date(inv.Expires.UTC()))
	}
	for _, x := range extra {
		x(&d)
	}
	// Apps that fetch the page learn the invite without parsing HTML.
	w.Header().Set("Link", "<"+inv.URI+">; rel=\"alternate\"")
	h.render(w, r, status, "landing", d)
}

// localOf is the localpart of a bare JID.
func localOf(bare string) string {
	local, _, _ := strings.Cut(bare, "@")
	return local
}

func (h *handler) domainOf(inv invites.Invite) string {
	if inv.Domain != "" {
		return inv.Domain
	}
	return h.cfg.Domain
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

// qr serves the invite's QR code rendered by draw.
func qr(contentType string, draw func(string) ([]byte, error)) func(*handler, http.ResponseWriter, *http.Request) {
	return func(h *handler, w http.ResponseWriter, r *http.Request) {
		inv, ok := h.lookup(w, r)
		if !ok {
			return
		}
		img, err := draw(inv.URI)
		if err != nil {
			h.log.ErrorContext(r.Context(), "draw qr code", slog.String("id", inv.ID), slog.Any("err", err))
			h.internal(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-store") // it encodes the token
		w.Header().Set("Content-Length", strconv.Itoa(len(img)))
		_, _ = w.Write(img)
	}
}

// register serves POST /i/{id}: the browser registration form.
func (h *handler) register(w http.ResponseWriter, r *http.Request) {
	// Count the attempt before any work, so that floods of bad requests
	// are limited too.
	if ok, wait := h.limit.allow(clientKey(r, h.cfg.TrustProxy)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		h.renderError(w, r, http.StatusTooManyRequests, h.text.TooManyTitle, h.text.ErrTooMany, "")
		return
	}
	inv, ok := h.lookup(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.renderError(w, r, http.StatusBadRequest, h.text.ForbiddenTitle, h.text.ErrFormExpired, "")
		return
	}
	f := formData{Username: strings.TrimSpace(r.PostFormValue("username"))}
	if inv.ResetFor != "" {
		// A reset link sets the password of its own account, whatever
		// the form says.
		f.Username = localOf(inv.ResetFor)
	}
	if err := h.origin.Check(r); err != nil {
		h.log.InfoContext(r.Context(), "cross-origin registration refused", slog.String("id", inv.ID), slog.Any("err", err))
		f.Error = h.text.ErrFormExpired
		h.renderLanding(w, r, http.StatusForbidden, inv, f)
		return
	}
	if err := h.csrf.check(r, inv.ID, r.PostFormValue("csrf")); err != nil {
		f.Error = h.text.ErrFormExpired
		h.renderLanding(w, r, http.StatusForbidden, inv, f)
		return
	}
	domain := h.domainOf(inv)
	username, msg := h.checkForm(f.Username, r.PostFormValue("password"), r.PostFormValue("password2"), domain)
	if msg != "" {
		f.Error = msg
		h.renderLanding(w, r, http.StatusUnprocessableEntity, inv, f)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), registerTimeout)
	defer cancel()
	account, err := h.inv.RegisterAccount(ctx, inv.ID, username, r.PostFormValue("password"))
	log := h.log.With(slog.String("id", inv.ID), slog.String("username", username))
	switch {
	case err == nil:
		log.InfoContext(r.Context(), "account registered in the browser", slog.String("jid", account.String()))
		h.csrf.setRegistered(w, inv.ID, account.String())
		title := h.text.SuccessTitle
		if inv.ResetFor != "" {
			title = h.text.ResetDoneTitle
		}
		h.render(w, r, http.StatusOK, "success", pageData{Title: title, JID: account.String(), ResetFor: inv.ResetFor})
	case errors.Is(err, invites.ErrNoSuchInvite):
		h.notFound(w, r)
	case errors.Is(err, invites.ErrTokenRejected):
		log.InfoContext(r.Context(), "browser registration: token rejected by the server")
		h.gone(w, r, h.text.TokenUsedBody)
	case errors.Is(err, invites.ErrNotPending):
		h.gone(w, r, h.text.GoneBody)
	case errors.Is(err, invites.ErrRegistrationInProgress):
		// A double click, or two people with the same link: the other
		// attempt decides; this one may retry once it is over.
		f.Error = h.text.ErrInProgress
		h.renderLanding(w, r, http.StatusConflict, inv, f)
	case errors.Is(err, invites.ErrUsernameTaken):
		f.Error = h.text.ErrUsernameTaken
		h.renderLanding(w, r, http.StatusConflict, inv, f)
	case errors.Is(err, invites.ErrUsernameInvalid), errors.Is(err, invites.ErrUsernameTooLong),
		errors.Is(err, invites.ErrUsernameConfusable):
		// checkForm applies the same rules; this is for a service whose
		// rules grew stricter than the form's.
		f.Error = h.usernameError(err)
		h.renderLanding(w, r, http.StatusUnprocessableEntity, inv, f)
	case errors.Is(err, invites.ErrUsernameRefused):
		// The server said no (a name it cannot store, say): the user can
		// pick another, so it is a form error, not a failure of ours.
		log.InfoContext(r.Context(), "browser registration: not acceptable", slog.Any("err", err))
		f.Error = h.text.ErrNotAcceptable
		h.renderLanding(w, r, http.StatusUnprocessableEntity, inv, f)
	default:
		log.ErrorContext(r.Context(), "browser registration failed", slog.Any("err", err))
		f.Error = h.text.ErrInternal
		h.renderLanding(w, r, http.StatusInternalServerError, inv, f)
	}
}

// checkForm validates the form before the server is bothered, returning
// the username as the server will create it or the message to show.
// Someone typing their whole future address (name@domain) gets the name
// taken from it.
func (h *handler) checkForm(username, password, password2, domain string) (string, string) {
	if local, dom, ok := strings.Cut(username, "@"); ok && strings.EqualFold(dom, domain) {
		username = local
	}
	if username == "" {
		return "", h.text.ErrUsernameEmpty
	}
	// The service's rules: the server's own mapping ("Alice" and "straße"
	// become the "alice" and "strasse" it creates), a length every server
	// can store, and no names that pass for others.
	prepared, err := invites.PrepareUsername(username)
	if err != nil {
		return "", h.usernameError(err)
	}
	switch {
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return "", fmt.Sprintf(h.text.ErrPasswordShort, MinPasswordLen)
	case len(password) > maxPasswordLen:
		return "", h.text.ErrPasswordLong
	case password != password2:
		return "", h.text.ErrPasswordMatch
	}
	return prepared, ""
}

// healthz answers 200 only when the link (and the minter session, if any)
// is up and the database answers, so a load balancer or monitor sees a bot
// that cannot hand out invites as down. Details go to the log, not to the
// (possibly public) response.
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	var problems []string
	if !h.health.LinkUp() {
		problems = append(problems, "component link down")
	}
	if !h.health.MinterUp() {
		problems = append(problems, "minter session down")
	}
	if err := h.health.PingStore(ctx); err != nil {
		h.log.WarnContext(r.Context(), "health: store ping failed", slog.Any("err", err))
		problems = append(problems, "database not answering")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	var module string
	if m, ok := h.health.(ModuleHealth); ok {
		module = "prosody module mod_invitebot: " + m.ServerModule()
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, strings.Join(problems, "\n"))
	} else {
		_, _ = fmt.Fprintln(w, "ok")
	}
	if module != "" {
		_, _ = fmt.Fprintln(w, module)
	}
}

// static serves one embedded asset. Named routes instead of a file server
// mean no directory listings and nothing served by accident.
func (h *handler) static(name string) http.HandlerFunc {
	data, err := fs.ReadFile(staticFS, name)
	if err != nil {
		panic(fmt.Sprintf("web: embedded %s: %v", name, err))
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(staticMaxAge/time.Second)))
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data)
	}
}
