package invites

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/store"
)

// alarmInbox is a Notifier that keeps the alarms sent to admins.
type alarmInbox chan Alarm

func (in alarmInbox) Notify(_ context.Context, to string, ev Event) error {
	if a, ok := ev.(Alarm); ok && to == treeAdmin {
		in <- a
	}
	return nil
}

// awaitAlarm waits for the next alarm; the watcher sends it from a
// goroutine of its own.
func (in alarmInbox) awaitAlarm(t *testing.T) Alarm {
	t.Helper()
	select {
	case a := <-in:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no alarm")
		return Alarm{}
	}
}

func (in alarmInbox) none(t *testing.T) {
	t.Helper()
	select {
	case a := <-in:
		t.Fatalf("unexpected alarm %+v", a)
	default:
	}
}

type alarmCounter struct{ kinds chan string }

func (alarmCounter) InviteCreated()            {}
func (alarmCounter) InviteDenied()             {}
func (alarmCounter) InviteUsed()               {}
func (c alarmCounter) AlarmRaised(kind string) { c.kinds <- kind }

func newAlarmFixture(t *testing.T, o AlarmOptions) (*treeFixture, alarmInbox, alarmCounter) {
	in := make(alarmInbox, 16)
	obs := alarmCounter{kinds: make(chan string, 16)}
	f := newTreeFixtureWith(t, true, func(opts *Options) {
		opts.Notifier, opts.Alarms, opts.Observer = in, o, obs
	})
	return f, in, obs
}

// report is the server's usage report of inv creating account, a few
// minutes after the invite was made.
func (f *treeFixture) report(t *testing.T, inv store.Invite, account string, after time.Duration) {
	t.Helper()
	f.now = inv.Created.Add(after)
	if err := f.svc.RecordReport(t.Context(), Report{Token: inv.Token, Account: account}); err != nil {
		t.Fatal(err)
	}
}

func TestAlarmFastUses(t *testing.T) {
	f, in, obs := newAlarmFixture(t, AlarmOptions{FastUses: 3, Suspend: true})
	// Used after a day: not fast, no alarm.
	slow := f.invited(t, treeAlice, "")
	f.report(t, slow, "slow@durare.org", 24*time.Hour)
	for i := range 3 {
		inv := f.invited(t, treeAlice, "")
		in.none(t)
		f.report(t, inv, fmt.Sprintf("bot%d@durare.org", i), 2*time.Minute)
	}
	a := in.awaitAlarm(t)
	if a.Kind != AlarmFastUses || a.Subject != treeAlice || a.Count != 3 || len(a.Evidence) != 3 || !a.Suspended {
		t.Errorf("alarm = %+v", a)
	}
	if a.Evidence[2].Account != "bot2@durare.org" {
		t.Errorf("evidence = %+v", a.Evidence)
	}
	if k := <-obs.kinds; k != string(AlarmFastUses) {
		t.Errorf("counted %s", k)
	}
	// alerts.suspend: the inviter lost the grant, the accounts are left.
	if _, err := f.st.Grant(t.Context(), treeAlice); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("grant after the alarm: %v", err)
	}
	if f.svc.IsSuspended(t.Context(), "bot0@durare.org") {
		t.Error("an account was suspended by the alarm")
	}
	entries, err := f.st.Audit(t.Context(), treeAlice, 20)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, " "); !strings.Contains(got, "alarm") || !strings.Contains(got, "suspend") {
		t.Errorf("audit of alice: %s", got)
	}
	// Rate-limited: more of the same within the cooldown stays quiet.
	f.grant(t, treeAlice)
	inv := f.invited(t, treeAlice, "")
	f.report(t, inv, "bot9@durare.org", time.Minute)
	in.none(t)
	// unsuspend gives the grant back.
	if _, err := f.svc.Unsuspend(t.Context(), f.actor(t, treeAdmin), treeAlice); err != nil {
		t.Errorf("unsuspend after the alarm: %v", err)
	}
}

func TestAlarmChain(t *testing.T) {
	f, in, _ := newAlarmFixture(t, AlarmOptions{ChainLinks: 2, FastUses: 100})
	// alice -> a -> b -> c, each account inviting minutes after it was made.
	prev := treeAlice
	for _, name := range []string{"a", "b", "c"} {
		inv := f.invited(t, prev, "")
		acct := name + "@durare.org"
		f.report(t, inv, acct, 20*time.Minute)
		prev = acct
	}
	a := in.awaitAlarm(t)
	if a.Kind != AlarmChain || a.Subject != treeAlice || a.Count != 2 {
		t.Errorf("alarm = %+v", a)
	}
	if last := a.Evidence[len(a.Evidence)-1]; last.By != "b@durare.org" || last.Account != "c@durare.org" {
		t.Errorf("evidence = %+v", a.Evidence)
	}
}

func TestAlarmRefusals(t *testing.T) {
	f, in, _ := newAlarmFixture(t, AlarmOptions{RefusalsBurst: 3})
	alice := f.actor(t, treeAlice)
	var err error
	for range 10 { // per-day limit 7 (the fixture's grant), then refusals
		if _, err = f.svc.Create(t.Context(), alice); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("never refused")
	}
	for range 2 {
		_, _ = f.svc.Create(t.Context(), alice)
	}
	if a := in.awaitAlarm(t); a.Kind != AlarmRefusalBurst || a.Subject != treeAlice {
		t.Errorf("alarm = %+v", a)
	}
}

// TestAlarmEventAndRequestRush: an event link, or one approver's approved
// requests, used fast.
func TestAlarmEventAndRequestRush(t *testing.T) {
	f, in, _ := newAlarmFixture(t, AlarmOptions{EventUses: 3, RequestUses: 2, FastUses: 100})
	add := func(event, request string) store.Invite {
		t.Helper()
		f.n++
		f.now = f.now.Add(time.Minute)
		inv, err := f.st.AddInvite(t.Context(), store.Invite{Token: fmt.Sprintf("e%d", f.n), URI: "xmpp:durare.org?register;preauth=x",
			Domain: "durare.org", Inviter: treeAlice, Created: f.now, Expires: f.now.Add(time.Hour), Event: event, Request: request},
			store.AuditEntry{Actor: treeAlice, Action: ActionInviteCreate})
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	for i := range 3 {
		f.report(t, add("eventlinkid00001", ""), fmt.Sprintf("visitor%d@durare.org", i), time.Minute)
	}
	if a := in.awaitAlarm(t); a.Kind != AlarmEventRush || a.Subject != "eventlinkid00001" || a.Inviter != treeAlice {
		t.Errorf("event alarm = %+v", a)
	}
	for i := range 2 {
		f.report(t, add("", fmt.Sprintf("request%08d", i)), fmt.Sprintf("asker%d@durare.org", i), time.Minute)
	}
	if a := in.awaitAlarm(t); a.Kind != AlarmRequestRush || a.Subject != treeAlice {
		t.Errorf("request alarm = %+v", a)
	}
}
