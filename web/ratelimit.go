package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Registration attempts are limited per client address: every attempt may
// cost the XMPP server a TLS handshake and a password hash, and guessing
// usernames through "taken" answers should be slow.
const (
	// rateAttempts attempts are allowed per address in each rateWindow.
	rateAttempts = 10
	rateWindow   = 10 * time.Minute
	// rateMaxAddrs bounds the limiter's memory. When it is full of live
	// windows, an arbitrary entry is dropped: a flood from many addresses
	// then weakens the limit for some of them rather than growing memory
	// or locking everybody out.
	rateMaxAddrs = 10000
	// rateIPv6Prefix groups IPv6 clients by network: one household or
	// host usually holds a whole /64 and could rotate within it.
	rateIPv6Prefix = 64
)

// limiter counts attempts per key in fixed windows.
type limiter struct {
	mu      sync.Mutex
	windows map[string]window
	now     func() time.Time
	// max attempts are allowed per key in each window.
	max    int
	window time.Duration
}

type window struct {
	start time.Time
	count int
}

// newLimiter returns the limiter of registration attempts.
func newLimiter(now func() time.Time) *limiter {
	return newLimiterOf(rateAttempts, rateWindow, now)
}

// newLimiterOf returns a limiter of max attempts per key and per.
func newLimiterOf(max int, per time.Duration, now func() time.Time) *limiter {
	return &limiter{windows: make(map[string]window), now: now, max: max, window: per}
}

// allow records an attempt by key and reports whether it is within the
// limit, and if not, how long until the window ends.
func (l *limiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w, ok := l.windows[key]
	if !ok || now.Sub(w.start) >= l.window {
		if !ok && len(l.windows) >= rateMaxAddrs {
			l.evict(now)
		}
		w = window{start: now}
	}
	if w.count >= l.max {
		return false, w.start.Add(l.window).Sub(now)
	}
	w.count++
	l.windows[key] = w
	return true, 0
}

// refund gives back an attempt allow counted, for one that turned out not
// to count (a form the visitor must correct), if its window still runs.
func (l *limiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.windows[key]; ok && w.count > 0 && l.now().Sub(w.start) < l.window {
		w.count--
		l.windows[key] = w
	}
}

// evict drops ended windows, and one arbitrary live one if that freed
// nothing. Called with mu held.
func (l *limiter) evict(now time.Time) {
	for k, w := range l.windows {
		if now.Sub(w.start) >= l.window {
			delete(l.windows, k)
		}
	}
	if len(l.windows) < rateMaxAddrs {
		return
	}
	for k := range l.windows {
		delete(l.windows, k)
		return
	}
}

// len reports the number of tracked keys, for tests.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.windows)
}

// clientKey names the client for rate limiting. Behind a trusted reverse
// proxy, the address the proxy appended last to X-Forwarded-For is the
// client; earlier entries are whatever the client claimed and are ignored.
func clientKey(r *http.Request, trustProxy bool) string {
	addr := r.RemoteAddr
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			addr = strings.TrimSpace(last)
		}
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		// Not an address (a unix socket, a broken proxy): share one bucket
		// rather than no limit at all.
		return "unknown"
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(rateIPv6Prefix)
		return p.String()
	}
	return ip.String()
}
