package invites

import (
	"context"
	"sync"
)

// inviteLocks gives every invite id a lock of its own. Whatever decides an
// invite's fate takes it: a browser registration for its whole length
// (register, learn the account, record the use), cancel and revoke while
// they check the token and write "cancelled", usage tracking while it
// checks and settles. So one invite's lifecycle happens one step at a time:
// a cancel that arrives while its token is creating an account waits, then
// finds the invite used, and by whom. Invites do not wait for each other.
//
// The zero value is ready to use.
type inviteLocks struct {
	mu   sync.Mutex
	byID map[string]*inviteLock
}

// inviteLock is one id's lock. A channel rather than a sync.Mutex, so that
// waiting can end with a context.
type inviteLock struct {
	held chan struct{} // holds a value while the lock is taken
	refs int           // holders and waiters; the entry goes at zero
}

// lock waits until id is free and takes it, or returns ctx's error.
func (l *inviteLocks) lock(ctx context.Context, id string) (unlock func(), err error) {
	k := l.ref(id)
	select {
	case k.held <- struct{}{}:
		return l.unlocker(id, k), nil
	case <-ctx.Done():
		l.unref(id, k)
		return nil, context.Cause(ctx)
	}
}

// tryLock takes id if it is free right now.
func (l *inviteLocks) tryLock(id string) (unlock func(), ok bool) {
	k := l.ref(id)
	select {
	case k.held <- struct{}{}:
		return l.unlocker(id, k), true
	default:
		l.unref(id, k)
		return nil, false
	}
}

func (l *inviteLocks) ref(id string) *inviteLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = make(map[string]*inviteLock)
	}
	k := l.byID[id]
	if k == nil {
		k = &inviteLock{held: make(chan struct{}, 1)}
		l.byID[id] = k
	}
	k.refs++
	return k
}

func (l *inviteLocks) unref(id string, k *inviteLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k.refs--
	if k.refs == 0 {
		delete(l.byID, id)
	}
}

// unlocker releases k once, however often it is called, so that a deferred
// unlock after an early one is harmless.
func (l *inviteLocks) unlocker(id string, k *inviteLock) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			<-k.held
			l.unref(id, k)
		})
	}
}
