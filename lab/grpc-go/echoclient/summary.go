package main

import (
	"math"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The names the gRPC specification gives the codes (grpc-go's String() says "Unavailable", grpc-js "UNAVAILABLE").
var codeNames = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN", codes.InvalidArgument: "INVALID_ARGUMENT",
	codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED", codes.OutOfRange: "OUT_OF_RANGE",
	codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
	codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

func codeName(code codes.Code) string {
	if name, ok := codeNames[code]; ok {
		return name
	}
	return code.String()
}

// A few distinct failure messages are enough to say why a run failed, without a line per failed call.
const maxDistinctErrors = 5

// tally is one worker's record; the workers' tallies are merged once at the end, so no call takes a lock.
type tally struct {
	okLatencies []time.Duration
	codes       map[string]int64
	servedBy    map[string]int64
	messages    int64
	incomplete  int64
	errors      []string
}

func newTally() *tally {
	return &tally{codes: map[string]int64{}, servedBy: map[string]int64{}}
}

func (t *tally) record(o outcome, latency time.Duration) {
	code := status.Code(o.err)
	t.codes[codeName(code)]++
	if o.servedBy != "" {
		t.servedBy[o.servedBy]++
	}
	t.messages += o.messages
	if o.incomplete {
		t.incomplete++
	}
	if code == codes.OK {
		t.okLatencies = append(t.okLatencies, latency)
	} else {
		t.noteError(codeName(code) + ": " + status.Convert(o.err).Message())
	}
}

func (t *tally) noteError(message string) {
	if len(t.errors) >= maxDistinctErrors {
		return
	}
	for _, seen := range t.errors {
		if seen == message {
			return
		}
	}
	t.errors = append(t.errors, message)
}

func (t *tally) merge(other *tally) {
	t.okLatencies = append(t.okLatencies, other.okLatencies...)
	for name, n := range other.codes {
		t.codes[name] += n
	}
	for id, n := range other.servedBy {
		t.servedBy[id] += n
	}
	t.messages += other.messages
	t.incomplete += other.incomplete
	for _, message := range other.errors {
		t.noteError(message)
	}
}

type summary struct {
	Calls       int64              `json:"calls"`
	Codes       map[string]int64   `json:"codes"`
	LatencyMs   map[string]float64 `json:"latencyMs"`
	ServedBy    map[string]int64   `json:"servedBy"`
	Messages    int64              `json:"messages"`
	Incomplete  int64              `json:"incompleteStreams"`
	Connections int64              `json:"connections"`
	ElapsedMs   float64            `json:"elapsedMs"`
	Errors      []string           `json:"errors"`
}

func milliseconds(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// Nearest-rank percentiles of the successful calls' latencies.
func percentiles(latencies []time.Duration) map[string]float64 {
	out := map[string]float64{"p50": 0, "p99": 0, "p999": 0, "max": 0}
	if len(latencies) == 0 {
		return out
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	rank := func(q float64) time.Duration {
		return latencies[int(math.Ceil(q*float64(len(latencies))))-1]
	}
	out["p50"], out["p99"], out["p999"] = milliseconds(rank(0.5)), milliseconds(rank(0.99)), milliseconds(rank(0.999))
	out["max"] = milliseconds(latencies[len(latencies)-1])
	return out
}

func (t *tally) summarize(connections int64, elapsed time.Duration) summary {
	var calls int64
	for _, n := range t.codes {
		calls += n
	}
	errors := t.errors
	if errors == nil {
		errors = []string{}
	}
	return summary{
		Calls: calls, Codes: t.codes, LatencyMs: percentiles(t.okLatencies), ServedBy: t.servedBy, Messages: t.messages,
		Incomplete: t.incomplete, Connections: connections, ElapsedMs: milliseconds(elapsed), Errors: errors,
	}
}
