package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"durare.org/invitebot/internal/prosodytest"
)

// measurementDef is one row pair of the table.
type measurementDef struct {
	name string // e.g. "invite chat x20"
	kind string // kindChat, kindAdhoc or kindHelp
	conc int
}

// Kinds of measurement.
const (
	kindChat  = "chat"
	kindAdhoc = "ad-hoc"
	kindHelp  = "help"
)

// measurements run in this order for each database.
var measurements = []measurementDef{
	{"invite chat x1", kindChat, 1},
	{"invite ad-hoc x1", kindAdhoc, 1},
	{"invite chat x20", kindChat, Concurrency},
	{"invite ad-hoc x20", kindAdhoc, Concurrency},
	{"help x1", kindHelp, 1},
	{"help x20", kindHelp, Concurrency},
	// Run with -x100 only: they need Wide inviters and admins.
	{"invite chat x100", kindChat, Wide},
	{"invite ad-hoc x100", kindAdhoc, Wide},
}

// results is everything a run found; it is written as JSON.
type results struct {
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Machine machine   `json:"machine"`
	Prosody string    `json:"prosody"`
	// ProsodyNagle is false when the run set network_settings = { nagle =
	// false } (-nagle=false).
	ProsodyNagle bool          `json:"prosody_nagle"`
	Size         size          `json:"size"`
	Timeout      string        `json:"request_timeout"`
	States       []stateResult `json:"databases"`
	Targets      []target      `json:"targets"`
	Profile      string        `json:"cpu_profile,omitempty"`
	ProfileOf    string        `json:"cpu_profile_of,omitempty"`
}

// stateResult is one database's run: one bot process.
type stateResult struct {
	Name            string        `json:"name"` // "empty" or "seeded"
	SeededInvites   int           `json:"seeded_invites"`
	SeedSeconds     float64       `json:"seed_seconds,omitempty"`
	DBBytesStart    int64         `json:"db_bytes_start"`
	DBBytesEnd      int64         `json:"db_bytes_end"`
	BotStartSeconds float64       `json:"bot_start_seconds"`
	Measurements    []measurement `json:"measurements"`
	BotMemory       memory        `json:"bot_memory"`
	BotWarnings     int           `json:"bot_log_warnings"`
	BotErrors       int           `json:"bot_log_errors"`
	BotLinkResets   int           `json:"bot_link_drops_from_resets"`
	BotLogSample    []string      `json:"bot_log_sample,omitempty"`
	DBCold          bool          `json:"db_evicted_before_start"` // -cold
	// Stopped says why this database's run ended before its last
	// measurement; its memory is then whatever could still be read.
	Stopped string `json:"stopped,omitempty"`
	// Mixed is the mixed load's result (seeded database only).
	Mixed *mixedResult `json:"mixed_load,omitempty"`
}

// measurement compares the bot with its floor under one load.
type measurement struct {
	Name        string `json:"name"`
	Concurrency int    `json:"concurrency"`
	Aborted     bool   `json:"aborted,omitempty"`
	// ServerTokens is how many tokens the server held at the end (it
	// starts each invite measurement with none): the measured invites of
	// both paths plus the warm-up.
	ServerTokens int     `json:"server_tokens_at_end,omitempty"`
	Bot          stats   `json:"bot"`
	Floor        stats   `json:"floor"`
	P50Ratio     float64 `json:"p50_ratio"`        // bot p50 / floor p50
	RateRatio    float64 `json:"throughput_ratio"` // bot per second / floor per second
}

// target is one of issue 14's targets, checked.
type target struct {
	// Unmeasured says why there is no value: the run stopped before the
	// figure could be read. Value is then 0 and Met false.
	Unmeasured string  `json:"unmeasured,omitempty"`
	What       string  `json:"what"`
	Value      float64 `json:"value"`
	Limit      float64 `json:"limit"`
	Met        bool    `json:"met"`
}

// bench runs everything and returns what it measured, also when it fails
// part way (then with the error).
func bench(ctx context.Context, o options, logf func(string, ...any)) (res *results, err error) {
	res = &results{Started: time.Now().UTC(), Machine: describeMachine(), Size: o.size, Timeout: o.timeout.String()}
	dir, err := os.MkdirTemp("", "invitebench")
	if err != nil {
		return nil, err
	}
	keep := o.keep
	defer func() {
		if keep || err != nil {
			logf("run directory kept: %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()

	profileTo := ""
	if o.cpuProfile != "" {
		if !knownMeasurement(o.profile) {
			return nil, fmt.Errorf("-profile %q: no such measurement (one of %q ... %q)", o.profile,
				measurements[0].name+" empty", measurements[len(measurements)-1].name+" seeded")
		}
		// Absolute, because the bot runs in the run directory.
		if profileTo, err = filepath.Abs(o.cpuProfile); err != nil {
			return nil, err
		}
		os.Remove(profileTo) // awaitProfile waits for it to appear
	}

	logf("building ./cmd/invitebot")
	bin, err := buildBot(ctx, dir, o.cpuProfile != "")
	if err != nil {
		return nil, err
	}
	users := Concurrency
	if o.wide {
		users = Wide
	}
	logf("starting Prosody, creating %d accounts", 1+2*users)
	e, err := newEnv(ctx, dir, bin, o.nagle, users, logf)
	if e != nil {
		defer func() { e.close(keep || err != nil) }()
	}
	if err != nil {
		return nil, err
	}
	res.Prosody = e.srv.Version
	res.ProsodyNagle = o.nagle

	// A database that stops does not stop the next one: each has a bot
	// process of its own.
	var errs []error

	for _, db := range []struct {
		name string
		seed int
	}{{"empty", 0}, {"seeded", o.size.Seed}} {
		if o.mixedOnly && db.seed == 0 {
			continue
		}
		sr, err := e.runDatabase(ctx, o, db.name, db.seed, profileTo, res)
		res.States = append(res.States, sr)
		if err != nil {
			errs = append(errs, err)
			if e.bot != nil || ctx.Err() != nil {
				break // a bot that would not stop, or the run was interrupted
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		res.Machine.LoadAfter = loadAverage()
		res.Seconds = round(time.Since(res.Started).Seconds(), 1)
		res.Targets = evaluate(res)
		return res, err
	}
	res.Machine.LoadAfter = loadAverage()
	res.Seconds = round(time.Since(res.Started).Seconds(), 1)
	res.Targets = evaluate(res)
	return res, nil
}

// runDatabase prepares one database, runs a bot on it through every
// measurement, and reads the bot's peak memory before stopping it.
func (e *env) runDatabase(ctx context.Context, o options, name string, seed int, profileTo string, res *results) (sr stateResult, err error) {
	sr = stateResult{Name: name, SeededInvites: seed}
	defer func() {
		if err != nil && sr.Stopped == "" {
			sr.Stopped = err.Error()
		}
	}()
	dbPath := filepath.Join(e.dir, name+".db")
	start := time.Now()
	if seed > 0 {
		e.logf("%s database: seeding %d invites", name, seed)
	}
	smp, err := prepareDB(ctx, dbPath, seed, e.domain.String(), e.boss, e.inviters, o.seedCache, e.logf)
	if err != nil {
		return sr, fmt.Errorf("prepare %s database: %w", name, err)
	}
	if seed > 0 {
		sr.SeedSeconds = round(time.Since(start).Seconds(), 1)
	}
	sr.DBBytesStart = fileSize(dbPath)
	if o.cold {
		if err := evict(dbPath); err != nil {
			return sr, fmt.Errorf("evict %s database: %w", name, err)
		}
		sr.DBCold = true
	}

	start = time.Now()
	if err := e.startBot(ctx, dbPath, profileTo); err != nil {
		return sr, err
	}
	sr.BotStartSeconds = round(time.Since(start).Seconds(), 2)
	e.logf("%s database: bot %d up in %.2fs", name, e.bot.pid, sr.BotStartSeconds)
	peaks := samplePeaks(e.bot.pid)
	for _, m := range measurements {
		if o.mixedOnly {
			break
		}
		if o.only != nil && !o.only[m.name] || m.conc > len(e.inviters) {
			continue
		}
		profiled := profileTo != "" && m.name+" "+name == o.profile
		mr, err := e.measure(ctx, o, m, profiled, profileTo)
		sr.Measurements = append(sr.Measurements, mr)
		if profiled && err == nil {
			res.Profile, res.ProfileOf = o.cpuProfile, o.profile
		}
		if err != nil {
			_ = e.finishBot(&sr, peaks) // the measurement's error says more
			return sr, fmt.Errorf("%s, %s database: %w", m.name, name, err)
		}
	}
	if seed > 0 && o.size.MixedSeconds > 0 {
		mixed, err := e.mixedLoad(ctx, o, time.Duration(o.size.MixedSeconds)*time.Second, smp)
		sr.Mixed = mixed
		if err != nil {
			_ = e.finishBot(&sr, peaks)
			return sr, fmt.Errorf("mixed load, %s database: %w", name, err)
		}
		e.logf("%s", mixed.describe())
	}
	if err := e.finishBot(&sr, peaks); err != nil {
		return sr, err
	}
	sr.DBBytesEnd = fileSize(dbPath)
	return sr, nil
}

// finishBot reads the bot's memory, stops it and sums up its log into sr.
// The memory is read first, while the process lives: VmHWM is the peak over
// its whole life, start-up with this database and every measurement. A
// bot that has exited leaves sr.BotMemory zero, which the report shows as
// not measured.
func (e *env) finishBot(sr *stateResult, peaks func() (anon, file int64)) error {
	anon, file := peaks()
	if mem, err := procMemory(e.bot.pid); err == nil {
		mem.PeakAnonKiB, mem.PeakFileKiB = anon, file
		sr.BotMemory = mem
	}
	logPath := e.bot.logPath
	err := e.stopBot()
	sr.BotWarnings, sr.BotErrors, sr.BotLinkResets, sr.BotLogSample = logSummary(logPath)
	return err
}

// measure runs one measurement on the running bot.
func (e *env) measure(ctx context.Context, o options, m measurementDef, profiled bool, profileTo string) (measurement, error) {
	mr := measurement{Name: m.name, Concurrency: m.conc}
	if m.kind != kindHelp {
		if err := e.resetServerTokens(ctx); err != nil {
			return mr, err
		}
	}
	inviters, err := e.login(ctx, e.inviters[:m.conc])
	if err != nil {
		return mr, err
	}
	defer closeAll(inviters)
	admins, err := e.login(ctx, e.admins[:m.conc])
	if err != nil {
		return mr, err
	}
	defer closeAll(admins)

	bot, direct, n := e.paths(o, m, inviters, admins)
	if err := e.warmUp(ctx, o, inviters, admins, bot, direct, m.kind != kindHelp); err != nil {
		return mr, err
	}

	serverPID, err := e.prosodyPID()
	if err != nil {
		return mr, err
	}
	r := runner{timeout: o.timeout, meter: meter{botPID: e.bot.pid, serverPID: serverPID}}
	if profiled {
		if err := e.profileToggle(); err != nil {
			return mr, err
		}
	}
	e.logf("%s: %d requests per path", m.name, n)
	var sa, sb *series
	if m.conc == 1 {
		sa, sb, mr.Aborted, err = r.sequential(ctx, n, bot, direct)
	} else {
		// At least two requests per worker in a block, so that every
		// worker is busy through most of it.
		sa, sb, mr.Aborted, err = r.concurrent(ctx, n, max(o.size.Block, 2*m.conc), m.conc, bot, direct)
	}
	if profiled {
		if terr := e.profileToggle(); terr != nil && err == nil {
			err = terr
		} else if err == nil {
			err = awaitProfile(ctx, profileTo)
		}
	}
	mr.compare(sa, sb, m.kind != kindHelp)
	e.logf("%s: bot p50 %.1f ms, %.1f/s; %s p50 %.1f ms, %.1f/s; lost %d, failed %d",
		m.name, mr.Bot.P50Ms, mr.Bot.PerSecond, direct.name, mr.Floor.P50Ms, mr.Floor.PerSecond,
		mr.Bot.Lost+mr.Floor.Lost, mr.Bot.Failed+mr.Floor.Failed)
	if mr.Aborted && err == nil {
		e.logf("%s: stopped early after %d lost or failed requests", m.name, maxLost)
		// The bot still works on the requests the clients gave up on;
		// the next measurement must not pay for them.
		e.awaitIdle(ctx)
	}
	if err == nil {
		err = e.botAlive()
	}
	return mr, err
}

// paths returns the bot's path and its floor for m, and how many requests
// each gets: invites are compared with the server's own create-account,
// help with a plain ping of the server.
func (e *env) paths(o options, m measurementDef, inviters, admins []*prosodytest.Client) (bot, direct path, n int) {
	direct = path{"direct create-account", adhocInvite(admins, e.domain)}
	n = o.size.Seq
	switch m.kind {
	case kindChat:
		bot = path{"bot chat invite", chatInvite(inviters, e.component, true)}
	case kindAdhoc:
		bot = path{"bot ad-hoc invite", adhocInvite(inviters, e.component)}
	case kindHelp:
		bot = path{"bot help", chatHelp(inviters, e.component)}
		direct = path{"server ping", serverPing(admins, e.domain)}
		n = o.size.Help
	}
	if m.conc > 1 && m.kind != kindHelp {
		n = o.size.Conc
	}
	return bot, direct, n
}

// compare fills in both paths' statistics and their ratios (bot over
// floor) from the series the bot (sa) and the floor (sb) recorded.
func (mr *measurement) compare(sa, sb *series, minted bool) {
	mr.Bot, mr.Floor = sa.summarize(), sb.summarize()
	if mr.Floor.P50Ms > 0 {
		mr.P50Ratio = round(mr.Bot.P50Ms/mr.Floor.P50Ms, 2)
	}
	if mr.Floor.PerSecond > 0 {
		mr.RateRatio = round(mr.Bot.PerSecond/mr.Floor.PerSecond, 2)
	}
	if minted {
		// Two warm-up invites, and every measured one that succeeded; a
		// lost bot reply may still have minted, so this is a floor.
		mr.ServerTokens = 2 + sa.ok + sb.ok
	}
}

// warmUp makes every client's first round trip (TLS session, the server's
// routing tables, the bot's per-sender state) happen before the clock
// runs, and with invites also one invite per path, so that a broken setup
// fails here and not as a table of lost replies.
func (e *env) warmUp(ctx context.Context, o options, inviters, admins []*prosodytest.Client, bot, direct path, invites bool) error {
	r := runner{timeout: o.timeout}
	help := path{"warm-up help", chatHelp(inviters, e.component)}
	ping := path{"warm-up ping", serverPing(admins, e.domain)}
	for w := range inviters {
		for _, p := range []path{help, ping} {
			var s series
			if r.once(ctx, p, w, &s) && s.ok != 1 {
				return fmt.Errorf("warm-up %s as worker %d: %s (lost %d)", p.name, w, s.firstFailure, s.lost)
			}
		}
	}
	if !invites {
		return ctx.Err()
	}
	for _, p := range []path{bot, direct} {
		var s series
		if r.once(ctx, p, 0, &s) && s.ok != 1 {
			return fmt.Errorf("warm-up %s: %s (lost %d)", p.name, s.firstFailure, s.lost)
		}
	}
	return ctx.Err()
}

// Idle detection after a stopped measurement.
const (
	// idlePoll is how long the bot must use no CPU (not one clock tick)
	// to count as idle.
	idlePoll = 500 * time.Millisecond
	// idleWait bounds the wait: past it the run goes on and the next
	// measurement shares the machine with the leftovers.
	idleWait = time.Minute
)

// awaitIdle waits until the bot has used no CPU for idlePoll, at most
// idleWait.
func (e *env) awaitIdle(ctx context.Context) {
	deadline := time.Now().Add(idleWait)
	last, _ := procCPU(e.bot.pid)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(idlePoll):
		}
		now, err := procCPU(e.bot.pid)
		if err != nil || now == last {
			return
		}
		last = now
	}
	e.logf("bot still busy after %v; going on", idleWait)
}

// knownMeasurement reports whether name is a measurement's name followed by
// a database's ("invite chat x20 seeded").
func knownMeasurement(name string) bool {
	for _, m := range measurements {
		for _, db := range []string{"empty", "seeded"} {
			if name == m.name+" "+db {
				return true
			}
		}
	}
	return false
}

// fileSize returns the size of the file at path, 0 if unknown.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
