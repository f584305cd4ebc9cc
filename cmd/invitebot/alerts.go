package main

import (
	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/invites"
)

// alarmOptions are the configured alarms as the service takes them.
func alarmOptions(a config.AlertsConfig) invites.AlarmOptions {
	return invites.AlarmOptions{Off: !a.Enabled, Window: a.Window, Cooldown: a.Cooldown,
		FastUseWithin: a.FastUseWithin, FastUses: a.FastUses, ChainWithin: a.ChainWithin, ChainLinks: a.ChainLinks,
		EventWindow: a.EventWindow, EventUses: a.EventUses, RequestUses: a.RequestUses,
		RefusalsBurst: a.Refusals, RefusalsWindow: a.RefusalsWindow, Suspend: a.Suspend}
}
