package invites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// Alarms: the bot watches the shapes a bot wave takes while it happens,
// and tells the admins, with the evidence and what to send to act:
//
//   - many of one inviter's invites used within minutes of being made;
//   - accounts of one branch inviting again within minutes of being
//     created (chains);
//   - an event link, or one approver's approved requests, filling fast;
//   - a burst of refusals for one inviter.
//
// Counting is in memory, in sliding windows: a restart forgets, which
// costs at most one window of warning.

// ActionAlarm is the audit action of an alarm.
const ActionAlarm = "alarm"

// AlarmKind names one shape of abuse.
type AlarmKind string

// The alarms.
const (
	AlarmFastUses     AlarmKind = "fast-uses"
	AlarmChain        AlarmKind = "chain"
	AlarmEventRush    AlarmKind = "event-rush"
	AlarmRequestRush  AlarmKind = "request-rush"
	AlarmRefusalBurst AlarmKind = "refusals"
)

// Defaults of AlarmOptions.
const (
	DefaultAlarmWindow    = time.Hour
	DefaultAlarmCooldown  = time.Hour
	DefaultFastUseWithin  = 10 * time.Minute
	DefaultFastUses       = 5
	DefaultChainWithin    = 30 * time.Minute
	DefaultChainLinks     = 3
	DefaultEventWindow    = 10 * time.Minute
	DefaultEventUses      = 10
	DefaultRequestUses    = 5
	DefaultRefusalsBurst  = 10
	DefaultRefusalsWindow = 10 * time.Minute
)

// alarmEvidence is how many lines of evidence an alarm keeps per subject.
const alarmEvidence = 5

// alarmMaxKeys bounds the subjects counted at once; past it expired
// counts are swept.
const alarmMaxKeys = 10000

// AlarmOptions are the thresholds (alerts in the configuration). Zero
// values take the defaults.
type AlarmOptions struct {
	// Off switches the alarms off.
	Off bool
	// Window is how far back uses and chains are counted.
	Window time.Duration
	// Cooldown is how often one alarm (kind and subject) may fire.
	Cooldown time.Duration
	// FastUseWithin: an invite used within this of being made is fast;
	// FastUses of one inviter's fast uses within Window raise an alarm.
	FastUseWithin time.Duration
	FastUses      int
	// ChainWithin: an account inviting within this of being created is a
	// chain link; ChainLinks in one branch within Window raise an alarm.
	ChainWithin time.Duration
	ChainLinks  int
	// EventUses invites handed out by one event link within EventWindow,
	// or RequestUses approved-request invites of one approver used within
	// EventWindow, raise an alarm.
	EventWindow time.Duration
	EventUses   int
	RequestUses int
	// RefusalsBurst refusals for one inviter within RefusalsWindow raise
	// an alarm.
	RefusalsBurst  int
	RefusalsWindow time.Duration
	// Suspend revokes the inviter at once when an alarm names one (their
	// accounts are left to an admin).
	Suspend bool
}

func (o AlarmOptions) withDefaults() AlarmOptions {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defN := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Window, DefaultAlarmWindow)
	def(&o.Cooldown, DefaultAlarmCooldown)
	def(&o.FastUseWithin, DefaultFastUseWithin)
	def(&o.ChainWithin, DefaultChainWithin)
	def(&o.EventWindow, DefaultEventWindow)
	def(&o.RefusalsWindow, DefaultRefusalsWindow)
	defN(&o.FastUses, DefaultFastUses)
	defN(&o.ChainLinks, DefaultChainLinks)
	defN(&o.EventUses, DefaultEventUses)
	defN(&o.RequestUses, DefaultRequestUses)
	defN(&o.RefusalsBurst, DefaultRefusalsBurst)
	return o
}

// Alarm tells an admin that a shape of abuse appeared.
type Alarm struct {
	Kind AlarmKind
	// Subject is what it is about: the inviter, the top of the branch,
	// the event link id or the approver.
	Subject string
	// Inviter is whom to act on (tree, suspend), when there is one.
	Inviter string
	// Count is how many within Window.
	Count  int
	Window time.Duration
	// Evidence are the latest instances, one line each (data, not
	// sentences: "invite ID made T, used T by ACCOUNT").
	Evidence []AlarmEvidence
	// Suspended says alerts.suspend revoked Inviter already.
	Suspended bool
}

// AlarmEvidence is one instance behind an alarm.
type AlarmEvidence struct {
	Invite  string
	Made    time.Time
	At      time.Time
	Account string
	// By is the inviter of the instance, when it differs from the
	// alarm's subject (chains).
	By string
}

func (Alarm) isEvent() {}

// AlarmObserver is implemented by Observers that count alarms (metrics).
type AlarmObserver interface {
	AlarmRaised(kind string)
}

// window is the instances of one kind and subject within the window.
type window struct {
	times    []time.Time
	evidence []AlarmEvidence
	fired    time.Time
}

// alarmWatcher counts the events alarms look at.
type alarmWatcher struct {
	*core
	roles  *roles
	grants *grants

	mu      sync.Mutex
	opts    AlarmOptions       // guarded by mu: a reload replaces them
	windows map[string]*window // by kind and subject; guarded by mu
}

func newAlarmWatcher(c *core, rl *roles, gr *grants, o AlarmOptions) *alarmWatcher {
	return &alarmWatcher{core: c, roles: rl, grants: gr, opts: o.withDefaults(), windows: make(map[string]*window)}
}

// SetAlarmOptions replaces the thresholds, as on a configuration reload;
// what was counted so far stays.
func (w *alarmWatcher) SetAlarmOptions(o AlarmOptions) {
	w.mu.Lock()
	w.opts = o.withDefaults()
	w.mu.Unlock()
}

// options are the thresholds now in force.
func (w *alarmWatcher) options() AlarmOptions {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.opts
}

// used looks at one invite's use: fast uses, chains, event and request
// rushes. It runs in the path that recorded the use, after the use's own
// news went out.
func (w *alarmWatcher) used(ctx context.Context, inv Invite, account string) {
	if w == nil || inv.ResetFor != "" {
		return
	}
	o := w.options()
	if o.Off {
		return
	}
	now := w.now()
	ev := AlarmEvidence{Invite: inv.ID, Made: inv.Created, At: now, Account: account}
	if now.Sub(inv.Created) <= o.FastUseWithin {
		w.count(ctx, AlarmFastUses, inv.Inviter, inv.Inviter, o.Window, o.FastUses, ev)
	}
	if inv.Event != "" {
		w.count(ctx, AlarmEventRush, inv.Event, inv.Inviter, o.EventWindow, o.EventUses, ev)
	}
	if inv.Request != "" {
		w.count(ctx, AlarmRequestRush, inv.Inviter, inv.Inviter, o.EventWindow, o.RequestUses, ev)
	}
	w.chain(ctx, o, inv, ev)
}

// chain counts inv as a chain link when its inviter's own account was
// created by an invite shortly before inv was made; links count toward
// the top of the branch.
func (w *alarmWatcher) chain(ctx context.Context, o AlarmOptions, inv Invite, ev AlarmEvidence) {
	up, err := w.store.ChainUp(ctx, inv.Inviter, treeMaxUp)
	if err != nil || len(up) == 0 {
		return
	}
	created := up[0].Changed
	if created.IsZero() || inv.Created.Sub(created) > o.ChainWithin {
		return
	}
	top := up[len(up)-1].Inviter
	ev.By = inv.Inviter
	w.count(ctx, AlarmChain, top, top, o.Window, o.ChainLinks, ev)
}

// refused counts a refusal for actor; only inviters' count.
func (w *alarmWatcher) refused(ctx context.Context, actor, why string) {
	if w == nil {
		return
	}
	o := w.options()
	if o.Off {
		return
	}
	w.count(ctx, AlarmRefusalBurst, actor, actor, o.RefusalsWindow, o.RefusalsBurst,
		AlarmEvidence{At: w.now(), Account: why})
}

// count adds one instance and fires the alarm when the window holds
// threshold of them and the alarm did not fire within the cooldown.
func (w *alarmWatcher) count(ctx context.Context, kind AlarmKind, subject, inviter string, span time.Duration, threshold int, ev AlarmEvidence) {
	now := w.now()
	key := string(kind) + "\x00" + subject
	w.mu.Lock()
	if len(w.windows) >= alarmMaxKeys {
		w.sweepLocked(now)
	}
	win := w.windows[key]
	if win == nil {
		win = &window{}
		w.windows[key] = win
	}
	win.times = append(pruned(win.times, now.Add(-span)), now)
	win.evidence = append(win.evidence, ev)
	if len(win.evidence) > alarmEvidence {
		win.evidence = win.evidence[len(win.evidence)-alarmEvidence:]
	}
	fire := len(win.times) >= threshold && (win.fired.IsZero() || now.Sub(win.fired) >= w.opts.Cooldown)
	suspend := w.opts.Suspend
	var a Alarm
	if fire {
		win.fired = now
		a = Alarm{Kind: kind, Subject: subject, Inviter: inviter, Count: len(win.times), Window: span,
			Evidence: slices.Clone(win.evidence)}
	}
	w.mu.Unlock()
	switch {
	case !fire:
	case suspend:
		// Revoking takes the quota gate's lock, which a refusal is
		// counted under, and the locks of the inviter's invites: it
		// runs, and the admins hear of it, once this path let go.
		go w.fire(context.WithoutCancel(ctx), a)
	default:
		// Told at once, in the path that saw it: nothing is left running
		// behind the request that raised it.
		w.fire(ctx, a)
	}
}

// pruned drops the times before from.
func pruned(times []time.Time, from time.Time) []time.Time {
	i := 0
	for i < len(times) && times[i].Before(from) {
		i++
	}
	return times[i:]
}

// sweepLocked forgets the subjects with nothing in the longest window and
// no cooldown running.
func (w *alarmWatcher) sweepLocked(now time.Time) {
	longest := max(w.opts.Window, w.opts.EventWindow, w.opts.RefusalsWindow, w.opts.Cooldown)
	for k, win := range w.windows {
		if len(win.times) == 0 || now.Sub(win.times[len(win.times)-1]) > longest {
			delete(w.windows, k)
		}
	}
}

// fire records the alarm, suspends the inviter when the configuration
// says so, and tells every admin.
func (w *alarmWatcher) fire(ctx context.Context, a Alarm) {
	defer func() {
		if r := recover(); r != nil {
			w.log.ErrorContext(ctx, "alarm panicked", slog.Any("panic", r))
		}
	}()
	if a.Kind == AlarmRefusalBurst && !w.holdsGrant(ctx, a.Inviter) {
		return // strangers' refusals are bounded elsewhere; only inviters matter here
	}
	if w.options().Suspend && a.Inviter != "" && !w.roles.IsAdmin(a.Inviter) {
		a.Suspended = w.suspendInviter(ctx, a)
	}
	if o, ok := w.observer.(AlarmObserver); ok {
		o.AlarmRaised(string(a.Kind))
	}
	w.log.WarnContext(ctx, "alarm", slog.String("kind", string(a.Kind)), slog.String("subject", a.Subject),
		slog.Int("count", a.Count), slog.Duration("window", a.Window), slog.Bool("suspended", a.Suspended))
	w.audit(ctx, systemActor, ActionAlarm, a.Subject, fmt.Sprintf("%s: %d within %s; inviter %s; revoked at once: %t",
		a.Kind, a.Count, a.Window, a.Inviter, a.Suspended))
	for _, admin := range w.roles.adminList() {
		w.notify(ctx, admin, a)
	}
}

func (w *alarmWatcher) holdsGrant(ctx context.Context, who string) bool {
	_, err := w.store.Grant(ctx, who)
	return err == nil
}

// suspendInviter revokes the inviter (their pending invites, event links
// and approved requests with it) and records it as a suspension, so that
// unsuspend gives the grant back.
func (w *alarmWatcher) suspendInviter(ctx context.Context, a Alarm) bool {
	g, err := w.store.Grant(ctx, a.Inviter)
	if err != nil {
		return false
	}
	system := Actor{jid: systemActor, role: policy.Admin}
	res, err := w.grants.Revoke(ctx, system, a.Inviter)
	if err != nil && !errors.Is(err, ErrNotInviter) {
		w.log.ErrorContext(ctx, "alarm: could not revoke the inviter", slog.String("inviter", a.Inviter), slog.Any("err", err))
		return false
	}
	rec, err := w.store.Suspension(ctx, a.Inviter)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return true
	}
	rec.Target, rec.By, rec.At, rec.Reason = a.Inviter, systemActor, w.now(), "alarm "+string(a.Kind)
	rec.Grants = append(rec.Grants, g)
	rec.Cancelled += res.Cancelled
	if err := w.store.PutSuspension(ctx, rec, store.AuditEntry{Time: w.now().UTC(), Actor: systemActor,
		Action: ActionSuspend, Subject: a.Inviter,
		Detail: fmt.Sprintf("alerts.suspend after alarm %s: revoked; %d pending invites cancelled; accounts left alone", a.Kind, res.Cancelled)}); err != nil {
		w.log.ErrorContext(ctx, "alarm: suspension not recorded", slog.String("inviter", a.Inviter), slog.Any("err", err))
	}
	return true
}
