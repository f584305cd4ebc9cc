package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
)

// component is one long-lived part of the program. start returns once the
// part runs (work that goes on is started in goroutines); stop undoes it
// within ctx. Either may be nil when there is nothing to do.
type component struct {
	name  string
	start func(ctx context.Context) error
	stop  func(ctx context.Context) error
}

// lifecycle starts components in order and stops the started ones in
// reverse: each part may rely on those before it while it runs and while
// it shuts down (the bot drains while the link can still carry replies,
// and the database closes last). The shape follows maddy's LifetimeTracker.
type lifecycle struct {
	log     *slog.Logger
	started []component

	failOnce sync.Once
	failed   chan error
}

func newLifecycle(log *slog.Logger) *lifecycle {
	return &lifecycle{log: log, failed: make(chan error, 1)}
}

// start starts cs in order. If one fails, those already started are
// stopped (in reverse, within stopCtx's deadline) and the error names the
// component.
func (l *lifecycle) start(ctx context.Context, stopCtx func() (context.Context, context.CancelFunc), cs ...component) error {
	for _, c := range cs {
		if c.start != nil {
			if err := c.start(ctx); err != nil {
				sctx, cancel := stopCtx()
				defer cancel()
				if serr := l.stop(sctx); serr != nil {
					l.log.Error("stopping after a failed start", slog.Any("err", serr))
				}
				return fmt.Errorf("start %s: %w", c.name, err)
			}
		}
		l.started = append(l.started, c)
		l.log.Debug("started", slog.String("component", c.name))
	}
	return nil
}

// stop stops what started, last first, all within ctx. It goes on past a
// failing component, so that the database still closes, and returns every
// error met.
func (l *lifecycle) stop(ctx context.Context) error {
	var errs []error
	for i := len(l.started) - 1; i >= 0; i-- {
		c := l.started[i]
		if c.stop == nil {
			continue
		}
		if err := c.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.name, err))
		}
		l.log.Debug("stopped", slog.String("component", c.name))
	}
	l.started = nil
	return errors.Join(errs...)
}

// fail reports that a running component broke for good; Failed delivers the
// first such error so the program can shut down.
func (l *lifecycle) fail(err error) {
	l.failOnce.Do(func() { l.failed <- err })
}

// Failed delivers the first error a running component reported.
func (l *lifecycle) Failed() <-chan error { return l.failed }

// goRun runs fn in a goroutine that turns a panic into a failure of the
// named component instead of a crash of the whole process, and closes the
// returned channel when fn is done.
func (l *lifecycle) goRun(name string, fn func() error) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				l.log.Error("component panicked", slog.String("component", name),
					slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
				l.fail(fmt.Errorf("%s panicked: %v", name, r))
			}
		}()
		if err := fn(); err != nil {
			l.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
	return done
}
