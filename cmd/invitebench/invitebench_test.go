package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/store"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{ms(7), 50, 7 * time.Millisecond},
		{ms(1, 2), 50, 1 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
	}
	for _, tc := range tests {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
		}
	}
}

func TestSeriesCountsOutcomes(t *testing.T) {
	s := &series{name: "x", busy: 2 * time.Second}
	s.record(10*time.Millisecond, nil)
	s.record(30*time.Millisecond, nil)
	s.record(time.Second, errLost)
	s.record(time.Millisecond, failf("refused"))
	s.record(time.Millisecond, errors.New("stream ended"))
	st := s.summarize()
	if st.OK != 2 || st.Lost != 1 || st.Failed != 2 || st.FirstFailure != "refused" {
		t.Errorf("counts %+v", st)
	}
	if st.P50Ms != 10 || st.MaxMs != 30 || st.MeanMs != 20 || st.PerSecond != 1 {
		t.Errorf("figures %+v", st)
	}
	if s.bad() != 3 {
		t.Errorf("bad = %d", s.bad())
	}
}

func TestProcReadsItself(t *testing.T) {
	pid := os.Getpid()
	if _, err := procCPU(pid); err != nil {
		t.Error(err)
	}
	m, err := procMemory(pid)
	if err != nil || m.PeakKiB < m.RSSKiB || m.RSSKiB == 0 {
		t.Errorf("procMemory = %+v, %v", m, err)
	}
}

func TestSeedInviteHistory(t *testing.T) {
	now := time.Now().UTC()
	states := map[store.State]int{}
	for i := range 1000 {
		inv := seedInvite(i, 1000, "durare.test", "a@elsewhere.test", now)
		states[inv.State]++
		if now.Sub(inv.Created) < seedNewest || now.Sub(inv.Created) > seedSpan+seedNewest {
			t.Fatalf("invite %d created %v ago", i, now.Sub(inv.Created))
		}
		if !strings.HasPrefix(inv.URI, "xmpp:durare.test?register;preauth=") || inv.Domain != "durare.test" {
			t.Fatalf("invite %d: %+v", i, inv)
		}
	}
	if states[store.StateUsed] != 600 || states[store.StateExpired] != 300 || states[store.StateCancelled] != 100 {
		t.Errorf("states %v", states)
	}
}

func TestKnownMeasurement(t *testing.T) {
	for name, want := range map[string]bool{
		"invite chat x20 seeded": true, "help x1 empty": true, "invite chat x20": false, "nonsense seeded": false,
	} {
		if got := knownMeasurement(name); got != want {
			t.Errorf("knownMeasurement(%q) = %v", name, got)
		}
	}
}

// TestTinyRun runs the whole benchmark at a tiny size, so that it cannot
// rot unnoticed: Prosody, the bot binary, every measurement, the table and
// the JSON.
func TestTinyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prosody and the bot")
	}
	o := options{
		size:     size{Name: "tiny", Seq: 3, Conc: 2 * Concurrency, Block: Concurrency, Help: 2 * Concurrency, Seed: 300},
		jsonPath: filepath.Join(t.TempDir(), "out.json"),
		timeout:  35 * time.Second,
		nagle:    true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := bench(ctx, o, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printTable(&out, res)
	t.Log("\n" + out.String())
	if len(res.States) != 2 || res.States[1].SeededInvites != 300 {
		t.Fatalf("databases %+v", res.States)
	}
	for _, st := range res.States {
		if len(st.Measurements) != len(measurements) {
			t.Fatalf("%s: %d measurements", st.Name, len(st.Measurements))
		}
		for _, m := range st.Measurements {
			want := o.size.Seq
			switch {
			case strings.HasPrefix(m.Name, "help"):
				want = o.size.Help
			case m.Concurrency > 1:
				want = o.size.Conc
			}
			if m.Aborted || m.Bot.OK != want || m.Floor.OK != want {
				t.Errorf("%s, %s: %d and %d of %d answered (aborted %v): %s %s",
					st.Name, m.Name, m.Bot.OK, m.Floor.OK, want, m.Aborted, m.Bot.FirstFailure, m.Floor.FirstFailure)
			}
		}
		if st.BotMemory.PeakKiB == 0 {
			t.Errorf("%s: no peak RSS", st.Name)
		}
	}
	if err := writeJSON(o.jsonPath, res); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(o.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back results
	if err := json.Unmarshal(raw, &back); err != nil || len(back.Targets) == 0 {
		t.Errorf("JSON does not read back with targets: %v", err)
	}
}
