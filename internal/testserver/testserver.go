// Package testserver holds what the harnesses that start real servers for
// tests (prosodytest, ejabberdtest) share: finding free loopback ports,
// telling when a server listens, and reading its logs for a failure
// message.
package testserver

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// FreePorts returns n distinct loopback ports that were free a moment ago;
// the listeners are held together so the kernel cannot hand out one twice.
// The window until the server binds them is the harness's to cover (it
// retries a start that finds a port taken).
func FreePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// Accepts reports whether something accepts connections on addr.
func Accepts(network, addr string) bool {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ContainsAll reports whether s holds every one of subs.
func ContainsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// ReadFrom returns the contents of path from offset on ("" if unreadable).
func ReadFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

// Tail returns the last n lines of each of the files, each under a line
// naming it; files that are missing or empty are left out.
func Tail(n int, paths ...string) string {
	var b strings.Builder
	for _, f := range paths {
		lines := tailLines(f, n)
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "--- last %d lines of %s ---\n", len(lines), f)
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// tailLines returns up to n last lines of the file at path.
func tailLines(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}
