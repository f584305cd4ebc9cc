package web

import (
	"github.com/prometheus/client_golang/prometheus"

	"durare.org/invitebot/invites"
)

// alarmKinds are the label values of invitebot_alarms_total, present from
// the start so a dashboard sees zeros rather than no series.
var alarmKinds = []invites.AlarmKind{invites.AlarmFastUses, invites.AlarmChain, invites.AlarmEventRush,
	invites.AlarmRequestRush, invites.AlarmRefusalBurst}

func newAlarmCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "invitebot_alarms_total",
		Help: "Abuse alarms raised, by kind: fast-uses, chain, event-rush, request-rush, refusals.",
	}, []string{"kind"})
	for _, k := range alarmKinds {
		c.WithLabelValues(string(k))
	}
	return c
}

// AlarmRaised counts one alarm (invites.AlarmObserver).
func (m *Metrics) AlarmRaised(kind string) {
	if m != nil {
		m.alarms.WithLabelValues(kind).Inc()
	}
}
