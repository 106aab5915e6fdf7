package main

import (
	"sync/atomic"
	"time"
)

// schedule hands out call start times to the workers: up to count calls (0: no limit), none at or after end
// (zero: no limit), spaced interval apart from start (0: as soon as a worker is free). Spacing from the start,
// not from the previous call, keeps the rate exact when a call is late.
type schedule struct {
	start    time.Time
	end      time.Time
	count    int64
	interval time.Duration
	issued   atomic.Int64
}

func newSchedule(start time.Time, count int64, duration time.Duration, rate float64) *schedule {
	s := &schedule{start: start, count: count}
	if duration > 0 {
		s.end = start.Add(duration)
	}
	if rate > 0 {
		s.interval = time.Duration(float64(time.Second) / rate)
	}
	return s
}

// next says when the caller's next call starts, or false when the run is over.
func (s *schedule) next() (time.Time, bool) {
	i := s.issued.Add(1) - 1
	if s.count > 0 && i >= s.count {
		return time.Time{}, false
	}
	at := time.Now()
	if s.interval > 0 {
		at = s.start.Add(time.Duration(i) * s.interval)
	}
	if !s.end.IsZero() && !at.Before(s.end) {
		return time.Time{}, false
	}
	return at, true
}
