package invites

import "time"

// SetCheckBudget sets how long one usage-tracking sweep may check, as
// Track does from its interval.
func (s *Service) SetCheckBudget(d time.Duration) {
	s.schedule.mu.Lock()
	s.schedule.budget = d
	s.schedule.mu.Unlock()
}
