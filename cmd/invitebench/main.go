// Command invitebench measures invitebot end to end against a real Prosody:
// an invite's round trip by chat and by ad-hoc command, sequentially and
// with 20 concurrent inviters, next to the same number of invites minted
// directly with the server's own create-account command by admin clients
// (the floor), then help round trips (the bot's own overhead) next to a
// ping to the server, all with an empty and with a seeded database.
//
//	go run ./cmd/invitebench                 # the full run (several minutes)
//	go run ./cmd/invitebench -size quick     # a quick pass for development
//	go run ./cmd/invitebench -cpuprofile bot.pprof   # also profile the bot
//
// It starts its own Prosody (internal/prosodytest) and builds and runs
// ./cmd/invitebot as a separate process on loopback, so the bot's peak RSS
// can be read from /proc, prints a table and writes the results as JSON.
// Every loop is bounded in count and every request in time: a reply that
// does not come is counted as lost, and a measurement that loses too many
// stops early instead of hanging. docs/PERFORMANCE.md explains the method.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Concurrency is the number of inviters (and of admin clients minting
// directly) active at once in the concurrent measurements: issue 14 asks
// for 20.
const Concurrency = 20

// Wide is the number of inviters (and direct minters) of the -x100
// measurements: a community's whole crowd at once (issue 22).
const Wide = 100

// maxLost stops a measurement early: past this many lost replies the link
// is broken (or the bot is), and waiting out every request's timeout would
// only make the run hang for many minutes without telling more.
const maxLost = 10

// size is how much each measurement does.
type size struct {
	Name  string `json:"name"`
	Seq   int    `json:"seq"`   // invites per path, one at a time
	Conc  int    `json:"conc"`  // invites per path, Concurrency at a time
	Block int    `json:"block"` // invites per alternation block when concurrent
	Help  int    `json:"help"`  // help round trips (and pings) per concurrency
	Seed  int    `json:"seed"`  // invites in the seeded database
	// MixedSeconds is how long the mixed load runs on the seeded
	// database, after the other measurements (0: not at all).
	MixedSeconds int `json:"mixed_seconds"`
}

// sizes are the presets of -size. The full run keeps each measurement's
// server-side tokens near a thousand: Prosody's own mint cost grows with
// them (see docs/PERFORMANCE.md), and the bot's overhead should not drown
// in the server's.
var sizes = map[string]size{
	"quick": {Name: "quick", Seq: 20, Conc: 100, Block: 50, Help: 200, Seed: 5000, MixedSeconds: 15},
	"full":  {Name: "full", Seq: 200, Conc: 600, Block: 100, Help: 2000, Seed: 100000, MixedSeconds: 90},
}

// options are the command line.
type options struct {
	size       size
	jsonPath   string
	cpuProfile string
	profile    string
	timeout    time.Duration
	keep       bool
	nagle      bool
	cold       bool
	mixedOnly  bool
	wide       bool
	seedCache  string
	// only, when not empty, names the measurements to run (the others
	// are skipped).
	only map[string]bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("invitebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizeName := fs.String("size", "full", "quick or full")
	seed := fs.Int("seed", 0, "invites in the seeded database (0: the size's default)")
	seq := fs.Int("seq", 0, "invites per path in the sequential measurements (0: the size's default)")
	mixed := fs.Duration("mixed", -1, "how long the mixed load runs on the seeded database (0: skip it; default: the size's)")
	only := fs.String("only", "", "comma-separated measurements to run, e.g. \"invite chat x1,invite ad-hoc x1\" (default: all)")
	seedCache := fs.String("seed-cache", "", "keep generated seeded databases in this directory and copy them on later runs (a 1 M history takes minutes to write)")
	wide := fs.Bool("x100", false, fmt.Sprintf("also measure invites with %d concurrent inviters (creates %d more accounts)", Wide, 2*(Wide-Concurrency)))
	mixedOnly := fs.Bool("mixed-only", false, "run only the seeded database's mixed load (memory at a large history without the rest)")
	jsonPath := fs.String("json", "invitebench.json", "where to write the results as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the bot during the -profile measurement to this file")
	profile := fs.String("profile", "invite chat x20 seeded", "the measurement -cpuprofile covers")
	timeout := fs.Duration("timeout", 35*time.Second, "how long one request may wait for its reply before it counts as lost (longer than the bot's own 30 s request bound)")
	keep := fs.Bool("keep", false, "keep the run directory (Prosody and bot logs, the databases)")
	cold := fs.Bool("cold", false, "evict each database from the page cache before its bot starts, as after a reboot (default: the freshly written file is cached, as after a restore)")
	nagle := fs.Bool("nagle", true, "leave Prosody's Nagle algorithm on (its default); -nagle=false sets network_settings = { nagle = false }")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sz, ok := sizes[*sizeName]
	if !ok || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: invitebench [-size quick|full] [-seed N] [-json FILE] [-cpuprofile FILE [-profile NAME]] [-timeout D] [-nagle=false] [-cold] [-seq N] [-mixed D] [-mixed-only] [-x100] [-only NAMES] [-keep]")
		return 2
	}
	if *seed > 0 {
		sz.Seed = *seed
	}
	if *seq > 0 {
		sz.Seq = *seq
	}
	if *mixed >= 0 {
		sz.MixedSeconds = int(mixed.Seconds())
	}
	opts := options{size: sz, jsonPath: *jsonPath, cpuProfile: *cpuProfile, profile: *profile, timeout: *timeout, keep: *keep, nagle: *nagle, cold: *cold, mixedOnly: *mixedOnly, wide: *wide, seedCache: *seedCache}
	if *only != "" {
		opts.only = make(map[string]bool)
		for _, name := range strings.Split(*only, ",") {
			opts.only[strings.TrimSpace(name)] = true
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	res, err := bench(ctx, opts, logf)
	if res != nil {
		printTable(stdout, res)
		if werr := writeJSON(opts.jsonPath, res); werr != nil {
			fmt.Fprintf(stderr, "invitebench: %v\n", werr)
			return 1
		}
		logf("results written to %s", opts.jsonPath)
	}
	if err != nil {
		fmt.Fprintf(stderr, "invitebench: %v\n", err)
		return 1
	}
	return 0
}
