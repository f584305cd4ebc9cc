package web

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"durare.org/invitebot/invites"
)

// maxCommandLabels bounds the distinct values of the command label. Callers
// pass operation names from a fixed table, but a label fed from user input
// by mistake would grow the registry without bound; past this many names
// the rest are counted as otherCommand.
const maxCommandLabels = 64

// otherCommand is the command label used once maxCommandLabels is reached.
const otherCommand = "other"

// Metrics owns the Prometheus registry the bot exposes on /metrics. A
// private registry (not the global default) keeps tests independent and
// shows exactly what this program exports. Its methods are safe for
// concurrent use, and safe on a nil *Metrics, so front ends built without
// a web server need no checks.
type Metrics struct {
	reg *prometheus.Registry

	created  prometheus.Counter
	denied   prometheus.Counter
	used     prometheus.Counter
	commands *prometheus.CounterVec
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec

	// Account requests: what became of them, and those the page refused.
	accountRequests *prometheus.CounterVec
	refused         *prometheus.CounterVec
	// alarms counts the abuse alarms raised, by kind (metrics_alarms.go).
	alarms *prometheus.CounterVec

	mu           sync.Mutex
	commandNames map[string]bool
}

// NewMetrics creates the registry with the bot's counters plus the Go
// runtime and process collectors. reconnects is read at scrape time for
// invitebot_link_reconnects_total (the link counts, we only report); nil
// reports zero.
func NewMetrics(reconnects func() uint64) *Metrics {
	if reconnects == nil {
		reconnects = func() uint64 { return 0 }
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "invitebot_invites_created_total",
			Help: "Invites minted and recorded.",
		}),
		denied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "invitebot_invites_denied_total",
			Help: "Invite requests refused (no right, quota, pause).",
		}),
		used: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "invitebot_invites_used_total",
			Help: "Invites that created an account.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invitebot_commands_total",
			Help: "Commands run, by operation name.",
		}, []string{"command"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invitebot_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invitebot_event_uses_total",
			Help: "Visitors of event links, by outcome: minted (got an invite), used_up, expired, closed, paused, quota (global daily limit), failed.",
		}, []string{"outcome"}),
		accountRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invitebot_account_requests_total",
			Help: "Account requests from the web page, by event: received, approved, denied, expired.",
		}, []string{"event"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invitebot_account_requests_refused_total",
			Help: "Account requests the web page refused, by limit: per_address, max_open, honeypot, paused.",
		}, []string{"limit"}),
		alarms:       newAlarmCounter(),
		commandNames: make(map[string]bool),
	}
	// Every label value exists from the start, so a dashboard sees zeros
	// rather than no series.
	for _, e := range []string{"received", "approved", "denied", "expired"} {
		m.accountRequests.WithLabelValues(e)
	}
	for _, l := range refusedLimits {
		m.refused.WithLabelValues(l)
	}
	for _, o := range eventOutcomes {
		m.events.WithLabelValues(string(o))
	}
	m.reg.MustRegister(
		m.created, m.denied, m.used, m.commands, m.requests, m.accountRequests, m.refused, m.events, m.alarms,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "invitebot_link_reconnects_total",
			Help: "Component link sessions established after the first one.",
		}, func() float64 { return float64(reconnects()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// InviteCreated counts one invite minted and stored.
func (m *Metrics) InviteCreated() {
	if m != nil {
		m.created.Inc()
	}
}

// InviteDenied counts one refused invite request.
func (m *Metrics) InviteDenied() {
	if m != nil {
		m.denied.Inc()
	}
}

// InviteUsed counts one invite that created an account.
func (m *Metrics) InviteUsed() {
	if m != nil {
		m.used.Inc()
	}
}

// eventOutcomes are the values of the outcome label of event link uses.
var eventOutcomes = []invites.EventOutcome{
	invites.EventUseMinted, invites.EventUseUsedUp, invites.EventUseExpired, invites.EventUseClosed,
	invites.EventUsePaused, invites.EventUseQuota, invites.EventUseFailed,
}

// EventUse counts one visitor's request on an event link by what came of
// it. The invites service calls it (invites.EventObserver); the outcomes
// are a fixed set, so the label stays bounded.
func (m *Metrics) EventUse(outcome invites.EventOutcome) {
	if m != nil {
		m.events.WithLabelValues(string(outcome)).Inc()
	}
}

// Command counts one run of the operation name. Names must come from the
// operation table, never from what a user typed.
func (m *Metrics) Command(name string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	if !m.commandNames[name] {
		if len(m.commandNames) >= maxCommandLabels {
			name = otherCommand
		} else {
			m.commandNames[name] = true
		}
	}
	m.mu.Unlock()
	m.commands.WithLabelValues(name).Inc()
}

// request counts one answered HTTP request.
func (m *Metrics) request(route, code string) {
	if m != nil {
		m.requests.WithLabelValues(route, code).Inc()
	}
}

// Limits that refuse account requests on the web page, as metric labels.
const (
	refusedPerAddress = "per_address"
	refusedMaxOpen    = "max_open"
	refusedHoneypot   = "honeypot"
	refusedPaused     = "paused"
)

var refusedLimits = []string{refusedPerAddress, refusedMaxOpen, refusedHoneypot, refusedPaused}

// RequestReceived counts one account request recorded.
func (m *Metrics) RequestReceived() { m.accountRequest("received") }

// RequestApproved counts one account request approved.
func (m *Metrics) RequestApproved() { m.accountRequest("approved") }

// RequestDenied counts one account request declined.
func (m *Metrics) RequestDenied() { m.accountRequest("denied") }

// RequestExpired counts one account request that nobody answered in time.
func (m *Metrics) RequestExpired() { m.accountRequest("expired") }

func (m *Metrics) accountRequest(event string) {
	if m != nil {
		m.accountRequests.WithLabelValues(event).Inc()
	}
}

// requestRefused counts one account request refused by limit (one of
// refusedLimits).
func (m *Metrics) requestRefused(limit string) {
	if m != nil {
		m.refused.WithLabelValues(limit).Inc()
	}
}
