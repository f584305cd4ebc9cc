package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat. USER_HZ is
// 100 on every Linux architecture Go supports; reading sysconf would need
// cgo for no gain.
const clockTick = 10 * time.Millisecond

// procCPU returns the CPU time (user + system) process pid has used so
// far. Its resolution is clockTick, so only sums over many requests mean
// anything.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields from the last closing parenthesis.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	// f[0] is field 3 (state), so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// memory is a process's memory as /proc/PID/status reports it, in KiB.
type memory struct {
	PeakKiB int64 `json:"vm_hwm_kib"`   // VmHWM: peak resident set, the figure the target is about
	RSSKiB  int64 `json:"vm_rss_kib"`   // VmRSS now
	AnonKiB int64 `json:"rss_anon_kib"` // RssAnon now: the Go heap, stacks and runtime
	FileKiB int64 `json:"rss_file_kib"` // RssFile now: mapped files, mostly the bbolt database and the binary
	// PeakAnonKiB and PeakFileKiB are the largest RssAnon and RssFile
	// sampled every peakSampleEvery while the bot ran; the kernel keeps
	// no peak of either. VmHWM is their sum's peak, which the target is
	// about; the split tells the bot's own memory (anonymous) from the
	// database file's page-cache pages mapped into it (file-backed: clean,
	// shared, and counted in RSS for every page the kernel's fault-around
	// maps beside one the bot reads; docs/PERFORMANCE.md).
	PeakAnonKiB int64 `json:"rss_anon_peak_kib"`
	PeakFileKiB int64 `json:"rss_file_peak_kib"`
}

// peakSampleEvery is how often samplePeaks reads /proc/PID/status: often
// enough to catch a measurement's plateau, rare enough to cost nothing.
const peakSampleEvery = 50 * time.Millisecond

// samplePeaks samples process pid's RssAnon and RssFile until the returned
// function is first called; it returns their largest values in KiB, each
// time it is called.
func samplePeaks(pid int) func() (anon, file int64) {
	done := make(chan struct{})
	result := make(chan [2]int64)
	go func() {
		var peak [2]int64
		tick := time.NewTicker(peakSampleEvery)
		defer tick.Stop()
		for {
			if m, err := procMemory(pid); err == nil {
				peak[0], peak[1] = max(peak[0], m.AnonKiB), max(peak[1], m.FileKiB)
			}
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return sync.OnceValues(func() (int64, int64) {
		close(done)
		p := <-result
		return p[0], p[1]
	})
}

// procMemory reads process pid's memory figures.
func procMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	fields := map[string]*int64{"VmHWM:": &m.PeakKiB, "VmRSS:": &m.RSSKiB, "RssAnon:": &m.AnonKiB, "RssFile:": &m.FileKiB}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) >= 2 {
			if p, ok := fields[w[0]]; ok {
				*p, _ = strconv.ParseInt(w[1], 10, 64)
			}
		}
	}
	if m.PeakKiB == 0 {
		return m, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
	}
	return m, sc.Err()
}

// machine describes where the numbers were taken.
type machine struct {
	CPU        string  `json:"cpu"`
	Cores      int     `json:"cores"`
	MemoryMiB  int64   `json:"memory_mib"`
	Kernel     string  `json:"kernel"`
	Go         string  `json:"go"`
	LoadBefore float64 `json:"load1_before"` // 1-minute load average when the run started
	LoadAfter  float64 `json:"load1_after"`
}

// describeMachine gathers what /proc says about this machine.
func describeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadAverage()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int64
		if _, err := fmt.Sscanf(string(raw), "MemTotal: %d kB", &kib); err == nil {
			m.MemoryMiB = kib / 1024
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	return m
}

// loadAverage returns the 1-minute load average, 0 if unknown. Other
// engineers share this machine: a high value beside the results says the
// numbers were taken under contention.
func loadAverage() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
