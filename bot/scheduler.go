package bot

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// Tunables for serving requests.
const (
	// maxWorkers bounds requests in flight: each may wait on the server
	// (minting) and the database, and must not run in the read loop.
	maxWorkers = 32
	// maxQueued bounds requests accepted but waiting for a worker. A burst
	// waits its turn; past this, requests are dropped rather than piling
	// up goroutines. Admins' requests are not counted against it.
	maxQueued = 512
	// maxPerSender bounds one bare JID's requests queued or running, so
	// that one sender's flood cannot fill the queue: a burst of dozens
	// (an inviter minting for a workshop) still waits its turn.
	maxPerSender = 64
	// maxPerAdmin is maxPerSender for an admin: an admin's burst (a
	// hundred grants pasted at once) is queued whole, and admins are few
	// and trusted.
	maxPerAdmin = 1024
	// maxRunningPerSender bounds one bare JID's requests holding workers
	// at once, so that its burst cannot keep others waiting for a worker.
	maxRunningPerSender = 4
	// adminWorkers are worker slots only admins' requests may take: an
	// admin must always be able to revoke whoever floods the bot.
	adminWorkers = 4
	// dropLogInterval is how often a sender's dropped requests are logged.
	dropLogInterval = time.Minute
	// requestTimeout bounds one request from parsing to reply.
	requestTimeout = 30 * time.Second
	// abortGrace is how long Drain waits for cancelled requests to return.
	abortGrace = 2 * time.Second
	// fallbackTimeout bounds sending the error that answers a request
	// which could not be served.
	fallbackTimeout = 5 * time.Second
)

// scheduler runs requests off the read loop on a bounded set of workers,
// fairly between senders: one sender's flood waits behind its own share,
// not everybody's, and admins keep workers of their own.
type scheduler struct {
	log *slog.Logger

	slots      chan struct{}
	adminSlots chan struct{}
	queued     chan struct{}
	inflight   sync.WaitGroup
	// perSender holds each bare JID's requests queued or running: their
	// count, and the slots that bound how many run at once. Guarded by
	// gate.
	perSender map[string]*senderShare
	// gate orders spawn's Add against drain's Wait: a WaitGroup must not
	// grow from zero while someone waits on it.
	gate    sync.Mutex
	closing bool
	// baseCtx ends only when the bot is forced down; requests derive from
	// it so a graceful drain lets them finish.
	baseCtx context.Context
	abort   context.CancelFunc
}

func newScheduler(log *slog.Logger) *scheduler {
	ctx, cancel := context.WithCancel(context.Background())
	return &scheduler{
		log:        log,
		slots:      make(chan struct{}, maxWorkers),
		adminSlots: make(chan struct{}, adminWorkers),
		queued:     make(chan struct{}, maxQueued),
		perSender:  make(map[string]*senderShare),
		baseCtx:    ctx,
		abort:      cancel,
	}
}

// spawn queues work from sender (a bare JID) for a worker goroutine unless
// the bot is shutting down, the queue is full, or sender already has
// maxPerSender requests in flight; then it returns false at once: the read
// loop must never wait.
func (b *Bot) spawn(sender string, work func(ctx context.Context)) bool {
	return b.spawnOr(sender, work, nil)
}

// spawnOr is spawn with a fallback, run instead of work when the request
// timed out waiting for a worker (an IQ must still be answered).
func (b *Bot) spawnOr(sender string, work, timedOut func(ctx context.Context)) bool {
	// An in-memory look-up of the configuration: cheap enough for the
	// read loop, unlike a grant, which needs the database.
	return b.sched.spawnAs(sender, b.svc.IsAdmin(sender), work, timedOut)
}

// spawnAs is spawnOr for a sender whose privilege is known: privileged
// senders (admins, the server's usage reports) bypass the shared queue and
// may take the worker slots kept for admins.
func (s *scheduler) spawnAs(sender string, admin bool, work, timedOut func(ctx context.Context)) bool {
	share := s.admit(sender, admin)
	if share == nil {
		return false
	}
	go func() {
		defer func() {
			s.release(sender, admin)
			if r := recover(); r != nil {
				s.log.Error("panic in worker", slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			}
		}()
		ctx, cancel := context.WithTimeout(s.baseCtx, requestTimeout)
		defer cancel()
		release, ok := s.acquireWorker(ctx, share, admin)
		if !ok {
			s.log.Warn("request timed out waiting for a worker")
			if timedOut != nil {
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fallbackTimeout)
				defer cancel()
				timedOut(fctx)
			}
			return
		}
		defer release()
		work(ctx)
	}()
	return true
}

// senderShare is one sender's part of the queue and the workers.
type senderShare struct {
	queued  int
	running chan struct{} // capacity maxRunningPerSender
}

// admit takes a place in the queue for one request of sender, or returns
// nil. Admins are bounded only by their own share: the shared queue may be
// full of others.
func (s *scheduler) admit(sender string, admin bool) *senderShare {
	s.gate.Lock()
	defer s.gate.Unlock()
	share := s.perSender[sender]
	limit := maxPerSender
	if admin {
		limit = maxPerAdmin
	}
	if s.closing || (share != nil && share.queued >= limit) {
		return nil
	}
	if !admin {
		select {
		case s.queued <- struct{}{}:
		default:
			return nil
		}
	}
	if share == nil {
		share = &senderShare{running: make(chan struct{}, maxRunningPerSender)}
		s.perSender[sender] = share
	}
	share.queued++
	s.inflight.Add(1)
	return share
}

// release gives back what admit took.
func (s *scheduler) release(sender string, admin bool) {
	s.gate.Lock()
	if share := s.perSender[sender]; share != nil {
		if share.queued--; share.queued <= 0 {
			delete(s.perSender, sender)
		}
	}
	s.gate.Unlock()
	if !admin {
		<-s.queued
	}
	s.inflight.Done()
}

// acquireWorker waits for the sender's turn and a worker slot; admins may
// also take one of the slots kept for them. It returns the function that
// gives both back.
func (s *scheduler) acquireWorker(ctx context.Context, share *senderShare, admin bool) (func(), bool) {
	select {
	case share.running <- struct{}{}:
	case <-ctx.Done():
		return nil, false
	}
	adminSlots := s.adminSlots
	if !admin {
		adminSlots = nil // a nil channel never receives: others cannot take these
	}
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots; <-share.running }, true
	case adminSlots <- struct{}{}:
		return func() { <-s.adminSlots; <-share.running }, true
	case <-ctx.Done():
		<-share.running
		return nil, false
	}
}

// drain stops admitting requests and waits until the ones in flight have
// returned, or ctx ends (then they are cancelled).
func (s *scheduler) drain(ctx context.Context) error {
	s.gate.Lock()
	s.closing = true
	s.gate.Unlock()
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	// Cancel what is left and give it a moment to notice, so that nothing
	// still writes when the database closes after this.
	s.abort()
	select {
	case <-done:
	case <-time.After(abortGrace):
		s.log.Error("requests still running after cancellation")
	}
	return fmt.Errorf("drain: %w", ctx.Err())
}
