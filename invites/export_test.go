package invites

import (
	"context"
	"time"
)

// SetCheckBudget sets how long one usage-tracking sweep may check, as
// Track does from its interval.
func (s *Service) SetCheckBudget(d time.Duration) {
	s.pace.mu.Lock()
	s.pace.budget = d
	s.pace.mu.Unlock()
}

// SetTracking sets the interval usage tracking assumes and the clock that
// paces it (nil keeps real time), as Track and a test need.
func (s *Service) SetTracking(interval time.Duration, now func() time.Time, sleep func(context.Context, time.Duration) error) {
	s.pace.mu.Lock()
	defer s.pace.mu.Unlock()
	s.pace.interval = interval
	if now != nil {
		s.pace.now, s.pace.sleep = now, sleep
	}
}
