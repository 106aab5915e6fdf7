package main

import (
	"encoding/json"
	"sync/atomic"
)

// What a test asks the server about (SIGUSR1 prints it): calls begun, calls that ended cancelled, calls still
// running, and connections accepted (more connections than clients shows that MaxConnectionAge's GOAWAY worked).
type serverStats struct {
	calls       atomic.Int64
	cancelled   atomic.Int64
	inFlight    atomic.Int64
	connections atomic.Int64
}

func (s *serverStats) jsonLine() []byte {
	line, _ := json.Marshal(map[string]int64{
		"calls":       s.calls.Load(),
		"cancelled":   s.cancelled.Load(),
		"inFlight":    s.inFlight.Load(),
		"connections": s.connections.Load(),
	})
	return append(line, '\n')
}
