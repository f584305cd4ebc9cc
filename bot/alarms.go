package bot

import (
	"fmt"
	"strings"

	"durare.org/invitebot/invites"
)

// alarmText is the message that tells an admin an alarm fired: what was
// seen, the latest instances, and what to send to act.
func alarmText(a invites.Alarm) string {
	var t strings.Builder
	window := a.Window.String()
	switch a.Kind {
	case invites.AlarmFastUses:
		fmt.Fprintf(&t, "Alarm: %d invites of %s were used within minutes of being made, in the last %s.", a.Count, a.Subject, window)
	case invites.AlarmChain:
		fmt.Fprintf(&t, "Alarm: accounts in the branch of %s are inviting again within minutes of being created (%d times in the last %s).", a.Subject, a.Count, window)
	case invites.AlarmEventRush:
		fmt.Fprintf(&t, "Alarm: event link %s of %s handed out %d invites in the last %s.", a.Subject, a.Inviter, a.Count, window)
	case invites.AlarmRequestRush:
		fmt.Fprintf(&t, "Alarm: %d account requests approved by %s were used in the last %s.", a.Count, a.Subject, window)
	case invites.AlarmRefusalBurst:
		fmt.Fprintf(&t, "Alarm: %s was refused %d invites in the last %s.", a.Subject, a.Count, window)
	default:
		fmt.Fprintf(&t, "Alarm %s about %s: %d in the last %s.", a.Kind, a.Subject, a.Count, window)
	}
	for _, ev := range a.Evidence {
		t.WriteString("\n  " + evidenceLine(a.Kind, ev))
	}
	if a.Suspended {
		fmt.Fprintf(&t, "\n%s lost the right to invite at once (alerts.suspend); their accounts are untouched. Look: tree %s. Suspend them too: suspend %s. Undo: unsuspend %s.",
			a.Inviter, a.Inviter, a.Inviter, a.Inviter)
	} else if a.Inviter != "" {
		fmt.Fprintf(&t, "\nLook: tree %s. Act: suspend %s (shows what it does first), or revoke %s.", a.Inviter, a.Inviter, a.Inviter)
		if a.Kind == invites.AlarmEventRush {
			fmt.Fprintf(&t, " Close the link: close-event %s.", a.Subject)
		}
	}
	return t.String()
}

// evidenceLine is one instance behind an alarm.
func evidenceLine(kind invites.AlarmKind, ev invites.AlarmEvidence) string {
	if kind == invites.AlarmRefusalBurst {
		return formatTime(ev.At) + ": " + ev.Account
	}
	line := fmt.Sprintf("invite %s made %s, used %s", ev.Invite, formatTime(ev.Made), formatTime(ev.At))
	if ev.Account != "" {
		line += " by " + ev.Account
	}
	if ev.By != "" {
		line += " (invited by " + ev.By + ")"
	}
	return line
}
