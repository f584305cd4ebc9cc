package web

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/invites"
)

// Tunables.
const (
	// MinPasswordLen is the shortest password the form accepts, in
	// characters. Exported so the bot's texts can quote it.
	MinPasswordLen = 8
	// maxPasswordLen bounds the password in bytes: what the server's
	// SASLprep accepts (invites.CheckPassword, which the form applies as
	// well: a password can also grow past it when prepared).
	maxPasswordLen = invites.MaxPasswordBytes
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
	// retryUnknown is the Retry-After of a 503 whose end nobody knows
	// (a pause, a full request queue): long enough that clients do not
	// hammer, short enough to notice a resume the same day.
	retryUnknown = time.Hour
	// healthRetry is the Retry-After of /healthz when down: the link
	// reconnects on its own within seconds.
	healthRetry = 30 * time.Second
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
// "unknown"; "" leaves it out: the server is not Prosody). It is
// information, not a failure: the bot works without it.
type ModuleHealth interface {
	ServerModule() string
}

// ServerHealth is optionally implemented by a Health: /healthz then also
// names the server program the bot talks to ("Prosody 13.0.8"), as
// information for whoever reads it.
type ServerHealth interface {
	ServerSoftware() string
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
	"aria":     fieldARIA,
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

// handler is what New returns: it builds the page types, routes
// to them and serves what is no page (health, metrics, the stylesheet).
type handler struct {
	secure  bool // PublicURL is https
	health  Health
	metrics *Metrics
	log     *slog.Logger
}

// New returns the web handler. Invites and Health must not be nil; a nil
// Metrics still counts nothing and /metrics then answers 404. Embedded
// templates that fail to parse are a programming error and panic.
func New(cfg Config, inv Invites, health Health, m *Metrics) http.Handler {
	s := newSite(cfg)
	h := &handler{secure: s.secure, health: health, metrics: m, log: s.log}
	ip := &invitePages{site: s, inv: inv, limit: newLimiter(s.now)}
	perHour := cfg.RequestsPerHour
	if perHour <= 0 {
		perHour = DefaultRequestsPerHour
	}
	rp := &requestPages{site: s, inv: inv, reqs: cfg.Requests, metrics: m,
		reqLimit: newLimiterOf(perHour, time.Hour, s.now)}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /i/{id}", localized(ip, (*invitePages).landing))
	mux.HandleFunc("POST /i/{id}", localized(ip, (*invitePages).register))
	// The images speak no language, but their error pages do.
	mux.HandleFunc("GET /i/{id}/qr.png", localized(ip, qr("image/png", qrPNG)))
	mux.HandleFunc("GET /i/{id}/qr.svg", localized(ip, qr("image/svg+xml", qrSVG)))
	mux.HandleFunc("GET /request", localized(rp, (*requestPages).requestPage))
	mux.HandleFunc("POST /request", localized(rp, (*requestPages).submitRequest))
	mux.HandleFunc("GET /r/{key}", localized(rp, (*requestPages).status))
	if cfg.Events != nil {
		ep := &eventPages{site: s, events: cfg.Events, eventLimit: newLimiterOf(eventAttempts, rateWindow, s.now)}
		mux.HandleFunc("GET /e/{id}", localized(ep, (*eventPages).eventPage))
		mux.HandleFunc("POST /e/{id}", localized(ep, (*eventPages).eventClaim))
		mux.HandleFunc("GET /e/{id}/qr.png", localized(ep, eventQR("image/png", qrPNG)))
		mux.HandleFunc("GET /e/{id}/qr.svg", localized(ep, eventQR("image/svg+xml", qrSVG)))
	}
	mux.HandleFunc("GET /static/style.css", h.static("static/style.css"))
	mux.HandleFunc("GET /healthz", h.healthz)
	if m != nil {
		mux.Handle("GET /metrics", m.Handler())
	}
	// Any other method on those paths is answered 405 with the methods
	// they take; a pattern without a method is less specific than one
	// with, and more specific than "/". (GET patterns take HEAD too.)
	const getOnly, getPost = "GET, HEAD", "GET, HEAD, POST"
	paths := map[string]string{
		"/i/{id}": getPost, "/i/{id}/qr.png": getOnly, "/i/{id}/qr.svg": getOnly,
		"/request": getPost, "/r/{key}": getOnly, "/static/style.css": getOnly, "/healthz": getOnly,
	}
	if cfg.Events != nil {
		paths["/e/{id}"], paths["/e/{id}/qr.png"], paths["/e/{id}/qr.svg"] = getPost, getOnly, getOnly
	}
	if m != nil {
		paths["/metrics"] = getOnly
	}
	for path, allow := range paths {
		mux.HandleFunc(path, localized(&s, methodNotAllowed(allow)))
	}
	mux.HandleFunc("/", localized(&s, (*site).notFound))
	return h.instrument(h.securityHeaders(mux))
}

// newSite sets up what every page shares from cfg. The site is returned
// by value: each page type holds its own copy, which shares the pointers
// (templates, csrf, origin check) but not the per-request text.
func newSite(cfg Config) site {
	s := site{cfg: cfg, log: cfg.Log, now: cfg.Now, text: &English}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Text != nil {
		s.text = cfg.Text
	} else {
		s.langs = newNegotiator(languages)
	}
	s.origin = http.NewCrossOriginProtection()
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		s.base = strings.TrimRight(u.Path, "/")
		s.secure = u.Scheme == "https"
		// Behind a proxy the Host header may be the backend's address, so
		// the public origin must be named for browsers that send only Origin.
		if err := s.origin.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			s.log.Warn("public_url not usable as an origin", slog.String("public_url", cfg.PublicURL), slog.Any("err", err))
		}
	} else if cfg.PublicURL != "" {
		s.log.Warn("public_url is not an absolute URL", slog.String("public_url", cfg.PublicURL))
	}
	pages, err := parseTemplates()
	if err != nil {
		panic(err)
	}
	s.pages = pages
	s.csrf = newCSRF(s.secure, s.base, s.now)
	return s
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
	var info []string
	if s, ok := h.health.(ServerHealth); ok {
		info = append(info, "server: "+s.ServerSoftware())
	}
	if m, ok := h.health.(ModuleHealth); ok && m.ServerModule() != "" {
		info = append(info, "prosody module mod_invitebot: "+m.ServerModule())
	}
	if len(problems) > 0 {
		w.Header().Set("Retry-After", retryAfter(healthRetry))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, strings.Join(problems, "\n"))
	} else {
		_, _ = fmt.Fprintln(w, "ok")
	}
	for _, line := range info {
		_, _ = fmt.Fprintln(w, line)
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
