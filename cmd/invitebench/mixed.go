package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/store"
)

// Mixed load tunables.
const (
	// mixedPace is the least time between two requests of one worker: a
	// busy community rather than a saturation test, so that the bot's
	// memory is seen under many kinds of request for a while, not only
	// behind a queue of mints.
	mixedPace = 100 * time.Millisecond
	// mixedSampleEvery is how often the bot's memory is sampled.
	mixedSampleEvery = time.Second
)

// mixedOp is one kind of request in the mixed load, with its weight.
type mixedOp struct {
	name   string
	weight int
	op     op
}

// mixedResult is what the mixed load measured: the requests, and the bot's
// memory every mixedSampleEvery.
type mixedResult struct {
	Seconds      float64        `json:"seconds"`
	Workers      int            `json:"workers"`
	OK           map[string]int `json:"ok"`
	Lost         int            `json:"lost"`
	Failed       int            `json:"failed"`
	FirstFailure string         `json:"first_failure,omitempty"`
	ServerTokens int            `json:"server_tokens_at_end"`
	Samples      []memSample    `json:"samples"`
	// Anonymous memory (RssAnon) is the bot's own: Go heap, stacks,
	// runtime. File-backed (RssFile) is the binary and the pages of the
	// database file mapped by bbolt: page cache, clean, shared, reclaimable.
	AnonStartKiB int64 `json:"rss_anon_start_kib"`
	AnonPeakKiB  int64 `json:"rss_anon_peak_kib"`
	AnonEndKiB   int64 `json:"rss_anon_end_kib"`
	FileStartKiB int64 `json:"rss_file_start_kib"`
	FilePeakKiB  int64 `json:"rss_file_peak_kib"`
	FileEndKiB   int64 `json:"rss_file_end_kib"`
	// The slopes are least-squares fits over the second half of the run,
	// in MB a minute. The anonymous memory is a saw (garbage made and
	// collected), so its slope over a minute moves with where the teeth
	// fall; whether the bot's own memory grows is read from its floor
	// instead: the 10th percentile of the first and of the last third of
	// the samples, and the growth between them in MB a minute.
	AnonSlopeMBMin       float64 `json:"rss_anon_slope_mb_per_min"`
	FileSlopeMBMin       float64 `json:"rss_file_slope_mb_per_min"`
	AnonFloorStartKiB    int64   `json:"rss_anon_floor_first_third_kib"`
	AnonFloorEndKiB      int64   `json:"rss_anon_floor_last_third_kib"`
	AnonFloorGrowthMBMin float64 `json:"rss_anon_floor_growth_mb_per_min"`
}

// memSample is the bot's memory at one moment of the mixed load.
type memSample struct {
	T       float64 `json:"t"` // seconds since the load started
	AnonKiB int64   `json:"anon_kib"`
	FileKiB int64   `json:"file_kib"`
}

// mixedOps are the requests of the mixed load: the inviters' (the first
// Concurrency workers) and an admin's (the last), weighted as a community
// would use the bot: mostly reads, a fair share of invites.
func (e *env) mixedOps(inviters []*prosodytest.Client, admin []*prosodytest.Client, smp store.Sample) (forInviters, forAdmin []mixedOp) {
	replied := func(body string) bool {
		return body != "" && !strings.HasPrefix(body, "Sorry") && !strings.HasPrefix(body, "Unknown command")
	}
	pick := func(list []string, fallback string) func() string {
		return func() string {
			if len(list) == 0 {
				return fallback
			}
			return list[rand.IntN(len(list))]
		}
	}
	account, inviter, invite := pick(smp.UsedBy, e.boss.String()), pick(smp.Inviters, e.inviters[0].String()), pick(smp.InviteIDs, "")
	forInviters = []mixedOp{
		{"help", 30, chatHelp(inviters, e.component)},
		{"invites (own list)", 30, chatOp(inviters, e.component, "invites", replied, false)},
		{"invite (chat)", 25, chatInvite(inviters, e.component, true)},
		{"invite (ad-hoc)", 15, adhocInvite(inviters, e.component)},
	}
	forAdmin = []mixedOp{
		{"whoinvited", 35, varyingChat(admin, e.component, func() string { return "whoinvited " + account() }, replied)},
		{"audit about an inviter", 35, varyingChat(admin, e.component, func() string { return "audit " + inviter() }, replied)},
		{"audit about an invite", 20, varyingChat(admin, e.component, func() string { return "audit " + invite() }, replied)},
		{"inviters", 10, chatOp(admin, e.component, "inviters", replied, false)},
	}
	return forInviters, forAdmin
}

// varyingChat is chatOp with a body made anew for every request.
func varyingChat(cs []*prosodytest.Client, bot jid.JID, body func() string, ok func(string) bool) op {
	return func(ctx context.Context, w int) error {
		return chatOp(cs, bot, body(), ok, false)(ctx, w)
	}
}

// choose picks one of ops by weight.
func choose(ops []mixedOp) mixedOp {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	n := rand.IntN(total)
	for _, o := range ops {
		if n < o.weight {
			return o
		}
		n -= o.weight
	}
	return ops[len(ops)-1]
}

// mixedLoad runs the mixed load on the running bot for d: every inviter
// and one admin, each sending its next request at most every mixedPace,
// while the bot's memory is sampled. It starts with no tokens at the
// server, as the other measurements do.
func (e *env) mixedLoad(ctx context.Context, o options, d time.Duration, smp store.Sample) (*mixedResult, error) {
	if err := e.resetServerTokens(ctx); err != nil {
		return nil, err
	}
	inviters, err := e.login(ctx, e.inviters[:Concurrency])
	if err != nil {
		return nil, err
	}
	defer closeAll(inviters)
	admin, err := e.login(ctx, []jid.JID{e.boss})
	if err != nil {
		return nil, err
	}
	defer closeAll(admin)
	forInviters, forAdmin := e.mixedOps(inviters, admin, smp)

	res := &mixedResult{Workers: len(inviters) + 1, OK: make(map[string]int)}
	r := runner{timeout: o.timeout}
	var mu sync.Mutex
	record := func(name string, s *series) {
		mu.Lock()
		defer mu.Unlock()
		res.OK[name] += s.ok
		res.Lost += s.lost
		res.Failed += s.failed
		if res.FirstFailure == "" && s.firstFailure != "" {
			res.FirstFailure = name + ": " + s.firstFailure
		}
	}
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	e.logf("mixed load: %d workers for %v", res.Workers, d)
	start := time.Now()
	sampled := make(chan []memSample, 1)
	go func() { sampled <- sampleMemory(lctx, e.bot.pid, start) }()

	var wg sync.WaitGroup
	worker := func(ops []mixedOp, w int) {
		for lctx.Err() == nil {
			next := time.Now().Add(mixedPace)
			x := choose(ops)
			var s series
			if !r.once(lctx, path{x.name, x.op}, w, &s) {
				return
			}
			record(x.name, &s)
			select {
			case <-lctx.Done():
			case <-time.After(time.Until(next)):
			}
		}
	}
	for w := range inviters {
		wg.Go(func() { worker(forInviters, w) })
	}
	wg.Go(func() { worker(forAdmin, 0) })
	wg.Wait()
	res.Seconds = round(time.Since(start).Seconds(), 1)
	res.Samples = <-sampled
	res.summarize()
	res.ServerTokens = res.OK["invite (chat)"] + res.OK["invite (ad-hoc)"]
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if e.bot != nil {
		// The bot keeps working on the requests the workers gave up on
		// when the time was up.
		e.awaitIdle(ctx)
		return res, e.botAlive()
	}
	return res, nil
}

// sampleMemory reads process pid's memory every mixedSampleEvery until ctx
// ends.
func sampleMemory(ctx context.Context, pid int, start time.Time) []memSample {
	var out []memSample
	tick := time.NewTicker(mixedSampleEvery)
	defer tick.Stop()
	for {
		if m, err := procMemory(pid); err == nil {
			out = append(out, memSample{T: round(time.Since(start).Seconds(), 1), AnonKiB: m.AnonKiB, FileKiB: m.FileKiB})
		}
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
	}
}

// summarize fills in the start, peak, end and slopes from the samples.
func (r *mixedResult) summarize() {
	s := r.Samples
	if len(s) == 0 {
		return
	}
	r.AnonStartKiB, r.FileStartKiB = s[0].AnonKiB, s[0].FileKiB
	r.AnonEndKiB, r.FileEndKiB = s[len(s)-1].AnonKiB, s[len(s)-1].FileKiB
	for _, x := range s {
		r.AnonPeakKiB, r.FilePeakKiB = max(r.AnonPeakKiB, x.AnonKiB), max(r.FilePeakKiB, x.FileKiB)
	}
	half := s[len(s)/2:]
	r.AnonSlopeMBMin = round(slope(half, func(x memSample) int64 { return x.AnonKiB })*60*1024/1e6, 2)
	r.FileSlopeMBMin = round(slope(half, func(x memSample) int64 { return x.FileKiB })*60*1024/1e6, 2)
	third := len(s) / 3
	if third < 2 {
		return
	}
	first, last := s[:third], s[len(s)-third:]
	r.AnonFloorStartKiB, r.AnonFloorEndKiB = floor(first), floor(last)
	minutes := (last[len(last)/2].T - first[len(first)/2].T) / 60
	if minutes > 0 {
		r.AnonFloorGrowthMBMin = round(float64(r.AnonFloorEndKiB-r.AnonFloorStartKiB)*1024/1e6/minutes, 2)
	}
}

// floor is the 10th percentile of the samples' anonymous memory: the
// level the garbage collector brings it back to.
func floor(s []memSample) int64 {
	v := make([]int64, len(s))
	for i, x := range s {
		v[i] = x.AnonKiB
	}
	slices.Sort(v)
	return v[len(v)/10]
}

// slope is the least-squares slope of v over the samples' times, in KiB a
// second; 0 for fewer than two samples.
func slope(s []memSample, v func(memSample) int64) float64 {
	n := float64(len(s))
	if n < 2 {
		return 0
	}
	var st, sv, stt, stv float64
	for _, x := range s {
		t, y := x.T, float64(v(x))
		st += t
		sv += y
		stt += t * t
		stv += t * y
	}
	den := n*stt - st*st
	if den == 0 {
		return 0
	}
	return (n*stv - st*sv) / den
}

// describe is the mixed load's one-paragraph summary for the table.
func (r *mixedResult) describe() string {
	var kinds []string
	for _, k := range []string{"help", "invites (own list)", "invite (chat)", "invite (ad-hoc)", "whoinvited", "audit about an inviter", "audit about an invite", "inviters"} {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, r.OK[k]))
	}
	floor := "floor not measured (too few samples)"
	if r.AnonFloorStartKiB > 0 {
		floor = fmt.Sprintf("floor %.1f in the first third, %.1f in the last (%+.2f MB/min)",
			kib(r.AnonFloorStartKiB), kib(r.AnonFloorEndKiB), r.AnonFloorGrowthMBMin)
	}
	return fmt.Sprintf("mixed load, %d workers for %.0f s: %s; lost %d, failed %d\n"+
		"  anonymous RSS %.1f MB at the start, peak %.1f, end %.1f; %s\n"+
		"  file-backed RSS %.1f MB at the start, peak %.1f, end %.1f, slope over the second half %+.2f MB/min",
		r.Workers, r.Seconds, strings.Join(kinds, ", "), r.Lost, r.Failed,
		kib(r.AnonStartKiB), kib(r.AnonPeakKiB), kib(r.AnonEndKiB), floor,
		kib(r.FileStartKiB), kib(r.FilePeakKiB), kib(r.FileEndKiB), r.FileSlopeMBMin)
}
