package reconnect

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"
)

// syncBuffer is a log both the test and Serve's goroutines write or read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// pipeSession is a session already negotiated over an in-memory pipe.
// The peer end reads everything the session writes; it closes when the
// session closes its stream, as a server does, or when the test ends.
func pipeSession(t *testing.T) (net.Conn, *xmpp.Session) {
	t.Helper()
	conn, peer := net.Pipe()
	sess, err := xmpp.NewSession(context.Background(), jid.MustParse("example.test"), jid.MustParse("bot.example.test"), conn, 0,
		func(context.Context, *stream.Info, *stream.Info, *xmpp.Session, any) (xmpp.SessionState, io.ReadWriter, any, error) {
			return xmpp.Ready, nil, nil, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer peer.Close()
		var seen []byte
		buf := make([]byte, 512)
		for {
			n, err := peer.Read(buf)
			seen = append(seen, buf[:n]...)
			if err != nil || bytes.Contains(seen, []byte("</stream:stream>")) {
				return
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-read
	})
	return conn, sess
}

func TestKeepaliveCutsOnFailedPing(t *testing.T) {
	conn, sess := pipeSession(t)
	var logs syncBuffer
	pinged := 0
	k := Keepalive{Log: slog.New(slog.NewTextHandler(&logs, nil)), What: "test link", Interval: time.Millisecond,
		Ping: func(context.Context) error { pinged++; return errors.New("no answer") }}
	err := k.Serve(context.Background(), conn, sess, nil)
	if err == nil || errors.Is(err, ErrStreamClosed) {
		t.Errorf("Serve = %v, want the broken connection's error", err)
	}
	// A tick may come between the cut and Serve noticing it.
	if pinged == 0 {
		t.Error("not pinged")
	}
	if !strings.Contains(logs.String(), `msg="test link keepalive failed" err="no answer"`) {
		t.Errorf("log lacks the failed keepalive:\n%s", logs.String())
	}
}

func TestKeepaliveClosesOnCtx(t *testing.T) {
	conn, sess := pipeSession(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	pinged := make(chan struct{})
	k := Keepalive{Log: slog.New(slog.NewTextHandler(&logs, nil)), What: "test link", Interval: time.Millisecond,
		Ping: func(context.Context) error {
			select {
			case <-pinged:
			default:
				close(pinged)
			}
			return nil
		}}
	done := make(chan error, 1)
	go func() { done <- k.Serve(ctx, conn, sess, nil) }()
	// A ping that succeeds keeps the session up.
	<-pinged
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve = %v, want context.Canceled", err)
	}
	if sess.State()&xmpp.OutputStreamClosed == 0 {
		t.Error("the stream was not closed")
	}
	if got := logs.String(); !strings.Contains(got, `msg="test link closed"`) || strings.Contains(got, "keepalive failed") {
		t.Errorf("log:\n%s", got)
	}
}

func TestKeepaliveBroken(t *testing.T) {
	conn, sess := pipeSession(t)
	errWrite := errors.New("write failed")
	broken := make(chan struct{})
	var failed error
	k := Keepalive{Log: slog.New(slog.DiscardHandler), What: "test link", Interval: time.Hour,
		Ping:   func(context.Context) error { t.Error("pinged"); return nil },
		Broken: broken,
		Failure: func() error {
			select {
			case <-broken:
				return failed
			default:
				return nil
			}
		}}
	failed = errWrite
	close(broken)
	if err := k.Serve(context.Background(), conn, sess, nil); !errors.Is(err, errWrite) {
		t.Errorf("Serve = %v, want the failure", err)
	}
}

// TestKeepaliveSlowServerIsNotDead: a ping that goes unanswered while the
// server still sends other stanzas does not cut the connection (issue 22:
// a loaded server lost its link and every request in flight).
func TestKeepaliveSlowServerIsNotDead(t *testing.T) {
	conn, sess := pipeSession(t)
	var logs syncBuffer
	var mu sync.Mutex
	heard := time.Now()
	lastHeard := func() time.Time { mu.Lock(); defer mu.Unlock(); return heard }
	pinged := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	k := Keepalive{Log: slog.New(slog.NewTextHandler(&logs, nil)), What: "test link", Interval: time.Millisecond,
		LastHeard: lastHeard,
		Ping: func(context.Context) error {
			// Something else arrives while the ping waits; the ping's
			// own answer never does.
			mu.Lock()
			heard = time.Now()
			mu.Unlock()
			pinged <- struct{}{}
			return errors.New("no answer in time")
		}}
	done := make(chan error, 1)
	go func() { done <- k.Serve(ctx, conn, sess, nil) }()
	for range 3 {
		select {
		case <-pinged:
		case err := <-done:
			cancel()
			t.Fatalf("Serve ended while the server was still sending: %v\n%s", err, logs.String())
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve = %v, want it to end only by ctx", err)
	}
	if strings.Contains(logs.String(), "keepalive failed") {
		t.Errorf("a slow server was taken for a dead one:\n%s", logs.String())
	}
}

// TestKeepaliveQuietServerIsPinged: nothing heard, the ping fails: the
// connection is cut as before.
func TestKeepaliveQuietServerIsPinged(t *testing.T) {
	conn, sess := pipeSession(t)
	var logs syncBuffer
	long := time.Now().Add(-time.Hour)
	k := Keepalive{Log: slog.New(slog.NewTextHandler(&logs, nil)), What: "test link", Interval: time.Millisecond,
		LastHeard: func() time.Time { return long },
		Ping:      func(context.Context) error { return errors.New("no answer") }}
	if err := k.Serve(context.Background(), conn, sess, nil); err == nil || errors.Is(err, ErrStreamClosed) {
		t.Errorf("Serve = %v, want the cut connection's error", err)
	}
	if !strings.Contains(logs.String(), "keepalive failed") {
		t.Errorf("log lacks the failed keepalive:\n%s", logs.String())
	}
}

// TestKeepaliveStalledServerIsNotDead: a server that answers nothing for
// longer than a ping's timeout (busy on its one thread) but answers the
// next ping keeps its connection; only a second ping in a row that goes
// unanswered, with nothing heard since, cuts it (issue 22: a server that
// takes 20 s to answer is slow, not dead).
func TestKeepaliveStalledServerIsNotDead(t *testing.T) {
	conn, sess := pipeSession(t)
	var logs syncBuffer
	long := time.Now().Add(-time.Hour)
	pings := make(chan int, 100)
	n := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := Keepalive{Log: slog.New(slog.NewTextHandler(&logs, nil)), What: "test link", Interval: time.Millisecond,
		LastHeard: func() time.Time { return long },
		Ping: func(context.Context) error {
			n++
			pings <- n
			if n%2 == 1 {
				return errors.New("no answer in time")
			}
			return nil
		}}
	done := make(chan error, 1)
	go func() { done <- k.Serve(ctx, conn, sess, nil) }()
	for {
		select {
		case got := <-pings:
			if got < 6 {
				continue
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Serve = %v, want it to end only by ctx", err)
			}
			if strings.Contains(logs.String(), "keepalive failed") {
				t.Errorf("a server that answered every other ping was taken for a dead one:\n%s", logs.String())
			}
			return
		case err := <-done:
			t.Fatalf("Serve ended while every other ping was answered: %v\n%s", err, logs.String())
		}
	}
}
