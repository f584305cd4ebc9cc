//go:build ignore

// This file is not part of invitebench. With -cpuprofile, invitebench
// builds the bot with it added to package main of cmd/invitebot through
// go build -overlay, so that the production bot carries no profiling hook
// and the measured bot is otherwise the same program.

package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// init starts a goroutine that, when INVITEBENCH_CPUPROFILE names a file,
// starts a CPU profile at the first SIGUSR1 and writes it out at the
// second. The file appears under its name only once complete, so that the
// benchmark can wait for it.
func init() {
	path := os.Getenv("INVITEBENCH_CPUPROFILE")
	if path == "" {
		return
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		<-sig
		tmp := path + ".partial"
		f, err := os.Create(tmp)
		if err != nil {
			fmt.Fprintf(os.Stderr, "invitebench profile: %v\n", err)
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "invitebench profile: %v\n", err)
			return
		}
		<-sig
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "invitebench profile: %v\n", err)
			return
		}
		if err := os.Rename(tmp, path); err != nil {
			fmt.Fprintf(os.Stderr, "invitebench profile: %v\n", err)
		}
	}()
}
