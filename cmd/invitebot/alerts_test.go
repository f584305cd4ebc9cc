package main

import (
	"testing"

	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/invites"
)

// TestAlertDefaultsAreTheServices: the configuration's alarm defaults,
// which check-config prints, are the ones the service uses when it is
// given none.
func TestAlertDefaultsAreTheServices(t *testing.T) {
	got := alarmOptions(config.DefaultAlerts())
	want := invites.AlarmOptions{Window: invites.DefaultAlarmWindow, Cooldown: invites.DefaultAlarmCooldown,
		FastUseWithin: invites.DefaultFastUseWithin, FastUses: invites.DefaultFastUses,
		ChainWithin: invites.DefaultChainWithin, ChainLinks: invites.DefaultChainLinks,
		EventWindow: invites.DefaultEventWindow, EventUses: invites.DefaultEventUses, RequestUses: invites.DefaultRequestUses,
		RefusalsBurst: invites.DefaultRefusalsBurst, RefusalsWindow: invites.DefaultRefusalsWindow}
	if got != want {
		t.Errorf("configured defaults %+v, the service's %+v", got, want)
	}
}
