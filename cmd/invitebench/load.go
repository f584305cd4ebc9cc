package main

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// path is one side of a comparison: the bot, or the floor it is measured
// against.
type path struct {
	name string
	op   op
}

// series is what one path did in one measurement.
type series struct {
	name         string
	lat          []time.Duration // round trips of the requests answered as expected
	ok           int
	lost         int // no reply within the timeout
	failed       int // a reply, but not the expected one
	firstFailure string
	// busy is the time this path had the server to itself: the sum of its
	// round trips when sequential, of its blocks' wall time when
	// concurrent. Throughput is ok/busy.
	busy time.Duration
	// botCPU and serverCPU are the CPU time the bot and Prosody used
	// while this path ran.
	botCPU, serverCPU time.Duration
}

// record adds one request's outcome.
func (s *series) record(d time.Duration, err error) {
	var f *failure
	switch {
	case err == nil:
		s.ok++
		s.lat = append(s.lat, d)
	case errors.Is(err, errLost):
		s.lost++
	case errors.As(err, &f):
		s.failed++
	default:
		// A broken stream or the like: the request failed without a reply.
		s.failed++
	}
	if err != nil && !errors.Is(err, errLost) && s.firstFailure == "" {
		s.firstFailure = err.Error()
	}
}

// bad is the count that stops a measurement early at maxLost.
func (s *series) bad() int { return s.lost + s.failed }

// meter reads the CPU time of the bot and of Prosody.
type meter struct{ botPID, serverPID int }

// read returns both processes' CPU time so far; a process that cannot be
// read counts as zero, which the results then show instead of failing
// the run.
func (m meter) read() (bot, server time.Duration) {
	bot, _ = procCPU(m.botPID)
	server, _ = procCPU(m.serverPID)
	return bot, server
}

// runner drives requests with a per-request timeout.
type runner struct {
	timeout time.Duration
	meter   meter
}

// once runs one request of p as worker w and records it in s; it reports
// false when ctx ended (the run is stopping), in which case nothing is
// recorded.
func (r runner) once(ctx context.Context, p path, w int, s *series) bool {
	rctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	start := time.Now()
	err := p.op(rctx, w)
	d := time.Since(start)
	if ctx.Err() != nil {
		return false
	}
	s.record(d, err)
	return true
}

// sequential runs n requests of each path one at a time, alternating the
// paths request by request in the order a b b a a b..., so that both see
// the same growing server state and neither always goes first. It stops
// early when the paths together lose or fail maxLost requests; aborted
// then says so.
func (r runner) sequential(ctx context.Context, n int, a, b path) (sa, sb *series, aborted bool, err error) {
	sa, sb = &series{name: a.name}, &series{name: b.name}
	for i := 0; i < n; i++ {
		pair := [2]struct {
			p path
			s *series
		}{{a, sa}, {b, sb}}
		if i%2 == 1 {
			pair[0], pair[1] = pair[1], pair[0]
		}
		for _, x := range pair {
			bot0, srv0 := r.meter.read()
			start := time.Now()
			if !r.once(ctx, x.p, 0, x.s) {
				return sa, sb, true, ctx.Err()
			}
			x.s.busy += time.Since(start)
			bot1, srv1 := r.meter.read()
			x.s.botCPU += bot1 - bot0
			x.s.serverCPU += srv1 - srv0
		}
		if sa.bad()+sb.bad() >= maxLost {
			return sa, sb, true, nil
		}
	}
	return sa, sb, false, nil
}

// concurrent runs n requests of each path with workers requests in flight,
// in alternating blocks of block requests (a b b a ...): each block has the
// server to itself, and both paths see the same growing server state.
// Worker w always uses client w, as one inviter would.
func (r runner) concurrent(ctx context.Context, n, block, workers int, a, b path) (sa, sb *series, aborted bool, err error) {
	sa, sb = &series{name: a.name}, &series{name: b.name}
	for done, k := 0, 0; done < n; done, k = done+block, k+1 {
		size := min(block, n-done)
		order := [2]struct {
			p path
			s *series
		}{{a, sa}, {b, sb}}
		if k%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, x := range order {
			if r.block(ctx, size, workers, x.p, x.s, func() bool { return sa.bad()+sb.bad() >= maxLost }) {
				return sa, sb, true, ctx.Err()
			}
		}
	}
	return sa, sb, false, nil
}

// block runs size requests of p on workers goroutines and adds the block's
// wall time and CPU to s. It returns true when it stopped early: ctx ended
// or stop reported true after a request.
func (r runner) block(ctx context.Context, size, workers int, p path, s *series, stop func() bool) bool {
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		wg      sync.WaitGroup
		stopped atomic.Bool
	)
	bot0, srv0 := r.meter.read()
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(size) && bctx.Err() == nil {
				var one series
				if !r.once(bctx, p, w, &one) {
					return
				}
				mu.Lock()
				s.ok += one.ok
				s.lost += one.lost
				s.failed += one.failed
				s.lat = append(s.lat, one.lat...)
				if s.firstFailure == "" {
					s.firstFailure = one.firstFailure
				}
				halt := stop()
				mu.Unlock()
				if halt {
					stopped.Store(true)
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	s.busy += time.Since(start)
	bot1, srv1 := r.meter.read()
	s.botCPU += bot1 - bot0
	s.serverCPU += srv1 - srv0
	return stopped.Load() || ctx.Err() != nil
}

// stats are one path's figures in the results.
type stats struct {
	Path         string  `json:"path"`
	OK           int     `json:"ok"`
	Lost         int     `json:"lost"`
	Failed       int     `json:"failed"`
	FirstFailure string  `json:"first_failure,omitempty"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MeanMs       float64 `json:"mean_ms"`
	MaxMs        float64 `json:"max_ms"`
	PerSecond    float64 `json:"per_second"`
	BusySeconds  float64 `json:"busy_seconds"`
	// CPU per answered request, in milliseconds; the clock tick is 10 ms,
	// so these are averages over many requests.
	BotCPUMsPerOp    float64 `json:"bot_cpu_ms_per_op"`
	ServerCPUMsPerOp float64 `json:"server_cpu_ms_per_op"`
}

// summarize computes s's figures.
func (s *series) summarize() stats {
	st := stats{Path: s.name, OK: s.ok, Lost: s.lost, Failed: s.failed, FirstFailure: s.firstFailure,
		BusySeconds: round(s.busy.Seconds(), 3)}
	if len(s.lat) == 0 {
		return st
	}
	lat := slices.Clone(s.lat)
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	st.P50Ms = ms(percentile(lat, 50))
	st.P99Ms = ms(percentile(lat, 99))
	st.MeanMs = ms(sum / time.Duration(len(lat)))
	st.MaxMs = ms(lat[len(lat)-1])
	if s.busy > 0 {
		st.PerSecond = round(float64(s.ok)/s.busy.Seconds(), 1)
	}
	st.BotCPUMsPerOp = round(float64(s.botCPU.Microseconds())/1000/float64(s.ok), 2)
	st.ServerCPUMsPerOp = round(float64(s.serverCPU.Microseconds())/1000/float64(s.ok), 2)
	return st
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// ms returns d in milliseconds with two decimals.
func ms(d time.Duration) float64 { return round(float64(d.Microseconds())/1000, 2) }

// round rounds v to digits decimals, for readable JSON.
func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
