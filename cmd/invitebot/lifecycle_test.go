package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// recorder builds components that write what happens to them into a log.
type recorder struct{ events []string }

func (r *recorder) component(name string, startErr, stopErr error) component {
	return component{
		name: name,
		start: func(context.Context) error {
			r.events = append(r.events, "start "+name)
			return startErr
		},
		stop: func(context.Context) error {
			r.events = append(r.events, "stop "+name)
			return stopErr
		},
	}
}

func testStopCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Second)
}

func TestLifecycleStopsInReverse(t *testing.T) {
	var r recorder
	lc := newLifecycle(slog.New(slog.DiscardHandler))
	err := lc.start(context.Background(), testStopCtx,
		r.component("store", nil, nil), r.component("link", nil, errors.New("link stuck")), r.component("web", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	err = lc.stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), "stop link: link stuck") {
		t.Errorf("stop error = %v, want the link's", err)
	}
	want := "start store,start link,start web,stop web,stop link,stop store"
	if got := strings.Join(r.events, ","); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
}

func TestLifecycleFailedStartStopsWhatStarted(t *testing.T) {
	var r recorder
	lc := newLifecycle(slog.New(slog.DiscardHandler))
	err := lc.start(context.Background(), testStopCtx,
		r.component("store", nil, nil), r.component("link", nil, nil),
		r.component("web", errors.New("address in use"), nil), r.component("never", nil, nil))
	if err == nil || err.Error() != "start web: address in use" {
		t.Fatalf("start error = %v, want it to name the component", err)
	}
	want := "start store,start link,start web,stop link,stop store"
	if got := strings.Join(r.events, ","); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
}

func TestLifecycleGoRunTurnsPanicIntoFailure(t *testing.T) {
	lc := newLifecycle(slog.New(slog.DiscardHandler))
	done := lc.goRun("tracker", func() error { panic("boom") })
	<-done
	select {
	case err := <-lc.Failed():
		if !strings.Contains(err.Error(), "tracker panicked: boom") {
			t.Errorf("failure = %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("a panicking component was not reported")
	}
}
