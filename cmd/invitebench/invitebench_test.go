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

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/prosodytest"
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

// TestPrepareDBSeeds: the seeded database holds the history asked for,
// and the benchmark's inviters are granted and have invites of their own.
func TestPrepareDBSeeds(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "seeded.db")
	inviters := []jid.JID{jid.MustParse("inviter00@elsewhere.test"), jid.MustParse("inviter01@elsewhere.test")}
	if _, err := prepareDB(ctx, path, 2000, "durare.test", jid.MustParse("boss@durare.test"), inviters, "", t.Logf); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, inv := range inviters {
		if _, err := st.Grant(ctx, inv.String()); err != nil {
			t.Errorf("%s not granted: %v", inv, err)
		}
	}
	mine, err := st.InvitesByInviter(ctx, inviters[0].String())
	if err != nil || len(mine) == 0 {
		t.Errorf("%s has %d invites (%v), want a history", inviters[0], len(mine), err)
	}
	for _, inv := range mine {
		if inv.Domain != "durare.test" {
			t.Fatalf("invite for %q, want durare.test", inv.Domain)
		}
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
		size:     size{Name: "tiny", Seq: 3, Conc: 2 * Concurrency, Block: Concurrency, Help: 2 * Concurrency, Seed: 300, MixedSeconds: 3},
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
		runnable := 0
		for _, m := range measurements {
			if m.conc <= Concurrency {
				runnable++ // the x100 ones need -x100
			}
		}
		if len(st.Measurements) != runnable {
			t.Fatalf("%s: %d measurements, want %d", st.Name, len(st.Measurements), runnable)
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
		if st.Stopped != "" {
			t.Errorf("%s: stopped: %s", st.Name, st.Stopped)
		}
		// The bound docs/PERFORMANCE.md sets on the bot's own memory.
		if anon := max(st.BotMemory.PeakAnonKiB, st.BotMemory.AnonKiB) * 1024; anon == 0 || anon >= targetPeakBytes {
			t.Errorf("%s: the bot's own memory peaked at %d bytes, the bound is %.0f", st.Name, anon, targetPeakBytes)
		}
	}
	mx := res.States[1].Mixed
	if mx == nil || len(mx.Samples) < 2 || mx.AnonPeakKiB == 0 || mx.Lost+mx.Failed > 0 ||
		mx.OK["invite (chat)"]+mx.OK["invite (ad-hoc)"] == 0 || mx.OK["whoinvited"]+mx.OK["audit about an inviter"]+mx.OK["audit about an invite"]+mx.OK["inviters"] == 0 {
		t.Errorf("mixed load on the seeded database: %+v", mx)
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

// TestLateReplyIsNotTheAnswer: over the real Prosody, a reply left over
// from an earlier request (no thread, or another one) neither fails nor
// satisfies the next request; the reply in the request's thread does. A
// stand-in account plays the bot. Before replies were correlated, one late
// reply aborted a whole run ("unexpected reply to help").
func TestLateReplyIsNotTheAnswer(t *testing.T) {
	srv := prosodytest.Start(t)
	domain := srv.Domain
	for _, u := range []string{"worker", "botlike"} {
		if _, err := srv.Register(u, domain, password); err != nil {
			t.Fatal(err)
		}
	}
	worker := prosodytest.Login(t, srv, jid.MustParse("worker@"+domain), password)
	botlike := prosodytest.Login(t, srv, jid.MustParse("botlike@"+domain), password)

	help := chatHelp([]*prosodytest.Client{worker}, botlike.JID().Bare())
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { done <- help(ctx, 0) }()

	req := botlike.Next(t)
	if req.Body != "help" {
		t.Fatalf("request body %q", req.Body)
	}
	id := req.ID
	if !inThread(req, id) {
		t.Fatalf("request carries no thread %s: %s", id, req.Inner)
	}
	// The late answers first: one without a thread, one in another.
	for _, m := range []struct{ body, thread string }{{"Invite abc: xmpp:x?register;preauth=1", ""}, {"Unknown command", "ib-other"}} {
		if err := replyAs(ctx, botlike, worker.JID(), m.body, m.thread); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the request ended on a late reply: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := replyAs(ctx, botlike, worker.JID(), "Commands: help", id); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the reply in the request's thread was not taken: %v", err)
	}
}

// replyAs sends body from c to to, in thread when it is not empty.
func replyAs(ctx context.Context, c *prosodytest.Client, to jid.JID, body, thread string) error {
	if thread == "" {
		return c.Send(ctx, to, stanza.ChatMessage, body)
	}
	return sendInThread(ctx, c, to, body, thread)
}

// TestStoppedDatabaseReport: a database whose run stopped before its
// bot's memory was read is reported as stopped and not measured, never
// as a peak of 0.0 MB or a met or missed target.
func TestStoppedDatabaseReport(t *testing.T) {
	res := &results{Size: sizes["quick"], States: []stateResult{
		{Name: "empty", BotMemory: memory{PeakKiB: 25000, RSSKiB: 24000, AnonKiB: 9000, FileKiB: 15000}},
		{Name: "seeded", SeededInvites: 1000000, Stopped: "help x1, seeded database: bot exited"},
	}}
	res.Targets = evaluate(res)
	var out bytes.Buffer
	printTable(&out, res)
	text := out.String()
	for _, want := range []string{"seeded database: STOPPED: help x1", "seeded database: memory not measured",
		"----  bot's own memory (peak anonymous RSS), seeded database (MB): not measured"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "peak RSS 0.0") || strings.Contains(text, ": 0.00 (target") {
		t.Errorf("report shows a stopped measurement as a zero:\n%s", text)
	}
}

// TestMixedFloor: a saw whose floor stays put is flat, whatever its teeth
// do; a floor that rises is growth.
func TestMixedFloor(t *testing.T) {
	saw := func(rise int64) []memSample {
		var s []memSample
		for i := range 90 {
			v := int64(9000) + rise*int64(i)
			if i%4 == 3 {
				v += 12000 // a tooth: garbage not yet collected
			}
			s = append(s, memSample{T: float64(i), AnonKiB: v})
		}
		return s
	}
	flat := &mixedResult{Samples: saw(0)}
	flat.summarize()
	if flat.AnonFloorGrowthMBMin != 0 || flat.AnonFloorStartKiB != 9000 {
		t.Errorf("flat saw: floor %d to %d, %v MB/min", flat.AnonFloorStartKiB, flat.AnonFloorEndKiB, flat.AnonFloorGrowthMBMin)
	}
	growing := &mixedResult{Samples: saw(50)} // 50 KiB a second: 3 MB a minute
	growing.summarize()
	if g := growing.AnonFloorGrowthMBMin; g < 2.5 || g > 3.5 {
		t.Errorf("growing saw: %v MB/min, want about 3", g)
	}
}
