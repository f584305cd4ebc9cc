package invites_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/store"
)

// TestTrackingReachesEveryInvite, against the real server: when a sweep's
// share of the interval holds fewer checks than there are pending invites,
// each sweep goes on where the last stopped (the check schedule: those
// checked are not due again for an interval), so the newest invite is
// checked too and its use is found, instead of every sweep starting again
// from the oldest. The pace runs on a clock of the test's, so that a
// sweep holds exactly three checks however busy the machine is.
func TestTrackingReachesEveryInvite(t *testing.T) {
	srv := prosodytest.Start(t)
	h := newHarness(t, srv, srv.IBRConfig())
	const inviter = "carol@" + prosodytest.DefaultOtherDomain
	var invs []store.Invite
	for range 9 {
		invs = append(invs, h.addInvite(t, inviter))
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	newest := invs[len(invs)-1]
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := ibr.Register(ctx, srv.IBRConfig(), newest.Token, "latecomer", testPass); err != nil {
		t.Fatal(err)
	}

	// Three checks per sweep at the tracker's pace: the pace's clock moves
	// only when the tracker waits for its turn.
	var mu sync.Mutex
	paceNow := time.Now()
	h.svc.SetTracking(time.Minute, func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return paceNow
	}, func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		paceNow = paceNow.Add(d)
		mu.Unlock()
		return ctx.Err()
	})
	h.svc.SetCheckBudget(3 * time.Second / 40)
	state := func() store.State {
		got, err := h.st.Invite(ctx, newest.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.State
	}
	for sweep := 1; sweep <= 3; sweep++ {
		// The next sweep comes an interval later.
		mu.Lock()
		paceNow = paceNow.Add(time.Minute)
		mu.Unlock()
		if err := h.svc.CheckPending(ctx); err != nil {
			t.Fatalf("sweep %d: %v", sweep, err)
		}
		if sweep < 3 && state() != store.StatePending {
			t.Fatalf("the newest invite was checked in sweep %d, before older ones waiting longer", sweep)
		}
	}
	if got := state(); got != store.StateUsed {
		t.Errorf("after three sweeps of three the newest invite is %s, want used", got)
	}
}
