package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// Issue 14's targets.
const (
	// targetP50Ratio: the bot's median invite round trip at most this
	// many times the server's own, at Concurrency inviters.
	targetP50Ratio = 1.2
	// targetRateRatio: the bot's invites per second at least this share
	// of the server's own, at Concurrency inviters.
	targetRateRatio = 0.8
	// targetPeakBytes: the bot's own memory at its peak, in bytes (40 MB,
	// decimal): the anonymous part of its resident set (RssAnon: Go heap,
	// stacks, runtime), with any database, a 1 M history under mixed load
	// included. The file-backed rest is the binary and the database
	// pages bbolt maps: page cache, clean and shared, which the kernel
	// reclaims under pressure and which grows with the pages the load
	// touches up to the file's size; it is reported, not bounded
	// (docs/PERFORMANCE.md, "Memory").
	targetPeakBytes = 40e6
	// targetAnonGrowth: under the mixed load, the floor of the bot's own
	// memory (what the garbage collector brings it back to) grows by at
	// most this many MB a minute: flat.
	targetAnonGrowth = 1.0
	// minFloorSamples is how many memory samples (seconds of mixed load)
	// judging the floor's growth takes: a shorter run is not measured.
	minFloorSamples = 30
)

// evaluate checks the targets against the results. "Flat with a 100 k
// database" is checked as the same ratio targets holding with the seeded
// database.
func evaluate(res *results) []target {
	var out []target
	for _, st := range res.States {
		for _, m := range st.Measurements {
			if m.Concurrency != Concurrency || strings.HasPrefix(m.Name, "help") {
				continue
			}
			out = append(out,
				target{What: fmt.Sprintf("%s, %s database: p50 bot/direct", m.Name, st.Name),
					Value: m.P50Ratio, Limit: targetP50Ratio, Met: m.P50Ratio > 0 && m.P50Ratio <= targetP50Ratio && !m.Aborted},
				target{What: fmt.Sprintf("%s, %s database: throughput bot/direct", m.Name, st.Name),
					Value: m.RateRatio, Limit: targetRateRatio, Met: m.RateRatio >= targetRateRatio && !m.Aborted})
		}
		peak := float64(max(st.BotMemory.PeakAnonKiB, st.BotMemory.AnonKiB)) * 1024
		t := target{What: fmt.Sprintf("bot's own memory (peak anonymous RSS), %s database (MB)", st.Name),
			Value: round(peak/1e6, 1), Limit: targetPeakBytes / 1e6, Met: peak > 0 && peak < targetPeakBytes}
		if peak == 0 {
			t.Unmeasured = "stopped before the bot's memory was read"
		}
		out = append(out, t)
		if mx := st.Mixed; mx != nil {
			t := target{What: fmt.Sprintf("growth of the bot's own memory's floor under the mixed load, %s database (MB/min)", st.Name),
				Value: mx.AnonFloorGrowthMBMin, Limit: targetAnonGrowth, Met: mx.AnonFloorGrowthMBMin <= targetAnonGrowth}
			if len(mx.Samples) < minFloorSamples {
				t.Met, t.Unmeasured = false, fmt.Sprintf("the mixed load ran %.0f s; judging growth takes %d samples", mx.Seconds, minFloorSamples)
			}
			out = append(out, t)
		}
	}
	return out
}

// printTable writes the results for people.
func printTable(w io.Writer, res *results) {
	m := res.Machine
	nagle := ""
	if !res.ProsodyNagle {
		nagle = " (nagle = false)"
	}
	fmt.Fprintf(w, "\ninvitebench (%s): Prosody %s%s, %s, %d cores, %d MiB, kernel %s, %s; load %.2f before, %.2f after\n\n",
		res.Size.Name, res.Prosody, nagle, m.CPU, m.Cores, m.MemoryMiB, m.Kernel, m.Go, m.LoadBefore, m.LoadAfter)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "database\tmeasurement\tpath\tok\tlost\tfailed\tp50 ms\tp99 ms\tper s\tbot CPU ms/op\tProsody CPU ms/op\tp50 ratio\tper-s ratio\t")
	for _, st := range res.States {
		db := st.Name
		if st.SeededInvites > 0 {
			db = fmt.Sprintf("%s %dk", st.Name, st.SeededInvites/1000)
		}
		for _, mr := range st.Measurements {
			name := mr.Name
			if mr.Aborted {
				name += " (stopped)"
			}
			for i, s := range []stats{mr.Bot, mr.Floor} {
				ratios := "\t\t"
				if i == 0 {
					ratios = fmt.Sprintf("%.2f\t%.2f\t", mr.P50Ratio, mr.RateRatio)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t%s\n",
					db, name, s.Path, s.OK, s.Lost, s.Failed, s.P50Ms, s.P99Ms, s.PerSecond,
					s.BotCPUMsPerOp, s.ServerCPUMsPerOp, ratios)
				db, name = "", ""
			}
		}
	}
	tw.Flush()

	fmt.Fprintln(w)
	for _, st := range res.States {
		mem := st.BotMemory
		cache := "cached as written"
		if st.DBCold {
			cache = "evicted from the page cache before start"
		}
		if st.Stopped != "" {
			fmt.Fprintf(w, "bot, %s database: STOPPED: %s\n", st.Name, st.Stopped)
		}
		if mem.PeakKiB == 0 {
			fmt.Fprintf(w, "bot, %s database: memory not measured (the run stopped before it could be read)\n", st.Name)
			continue
		}
		fmt.Fprintf(w, "bot, %s database (%.1f MB on disk at the end, %s): peak RSS %.1f MB (sampled peaks: anonymous %.1f, file-backed %.1f); at the end RSS %.1f MB = anonymous %.1f + file-backed %.1f; started in %.2f s; log: %d warnings, %d errors (and %d link drops from the token resets)\n",
			st.Name, float64(st.DBBytesEnd)/1e6, cache, kib(mem.PeakKiB), kib(mem.PeakAnonKiB), kib(mem.PeakFileKiB), kib(mem.RSSKiB), kib(mem.AnonKiB), kib(mem.FileKiB),
			st.BotStartSeconds, st.BotWarnings, st.BotErrors, st.BotLinkResets)
		if st.Mixed != nil {
			fmt.Fprintf(w, "  %s\n", st.Mixed.describe())
		}
		for _, l := range st.BotLogSample {
			fmt.Fprintf(w, "    %s\n", l)
		}
		for _, mr := range st.Measurements {
			for _, s := range []stats{mr.Bot, mr.Floor} {
				if s.FirstFailure != "" {
					fmt.Fprintf(w, "    %s, %s: first failure: %s\n", mr.Name, s.Path, s.FirstFailure)
				}
			}
		}
	}
	if len(res.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, t := range res.Targets {
			mark := "MISS"
			if t.Met {
				mark = "met "
			}
			if t.Unmeasured != "" {
				fmt.Fprintf(w, "  ----  %s: not measured, %s (target %.1f)\n", t.What, t.Unmeasured, t.Limit)
				continue
			}
			fmt.Fprintf(w, "  %s  %s: %.2f (target %.1f)\n", mark, t.What, t.Value, t.Limit)
		}
	}
	if res.Profile != "" {
		fmt.Fprintf(w, "\nCPU profile of the bot during %q: %s (go tool pprof -top %s)\n", res.ProfileOf, res.Profile, res.Profile)
	}
}

// kib converts KiB to MB (decimal), the unit of the RSS target.
func kib(v int64) float64 { return float64(v) * 1024 / 1e6 }

// writeJSON writes the results to path.
func writeJSON(path string, res *results) error {
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}
