// echoclient: a grpc-go load generator for the test.Echo service, used the way applications use a channel: one
// ClientConn, many concurrent calls on it. It prints one JSON summary line when the run ends: calls, counts by
// status code name, latency percentiles of the successful calls (each measured from its own start), x-served-by
// counts, TCP connections dialled, and a few distinct error messages.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"meshlite/lab/grpc-go/echo"
)

// headerFlags collects repeated -header key=value flags into request metadata.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ",") }

func (h *headerFlags) Set(value string) error {
	key, val, ok := strings.Cut(value, "=")
	if !ok || key == "" {
		return fmt.Errorf("want key=value, got %q", value)
	}
	*h = append(*h, strings.ToLower(key), val)
	return nil
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "echoclient: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	target := flag.String("target", "", "host:port to connect to")
	authority := flag.String("authority", "", ":authority of every call (default: the target)")
	concurrency := flag.Int("concurrency", 1, "calls in flight at once, all on one ClientConn")
	count := flag.Int64("count", 0, "calls in total (0: until -duration ends)")
	duration := flag.Duration("duration", 0, "run for this long (0: until -count calls are made)")
	rate := flag.Float64("rate", 0, "calls per second over all workers (0: as fast as possible)")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of each call (0: none)")
	kind := flag.String("kind", "unary", "unary | server-stream")
	messages := flag.Uint("messages", 10, "server-stream: messages the server sends per call")
	size := flag.Uint("size", 16, "bytes per request (unary) or per response message (server-stream)")
	var headers headerFlags
	flag.Var(&headers, "header", "request metadata key=value (repeatable), e.g. x-delay-ms=5")
	stopOnStdinClose := flag.Bool("stop-on-stdin-close", false, "exit at once when stdin closes (a harness that died)")
	flag.Parse()

	if *target == "" {
		fail("-target is required")
	}
	if *count <= 0 && *duration <= 0 {
		fail("give -count, -duration or both, or the run never ends")
	}
	if *concurrency < 1 {
		fail("-concurrency must be at least 1")
	}
	var makeCall call
	switch *kind {
	case "unary":
		makeCall = unaryCall(make([]byte, *size))
	case "server-stream":
		makeCall = serverStreamCall(uint32(*messages), uint32(*size))
	default:
		fail("-kind must be unary or server-stream, not %q", *kind)
	}
	if *stopOnStdinClose {
		echo.OnStdinClosed(func() { os.Exit(3) })
	}

	var connections atomic.Int64
	options := []grpc.DialOption{grpc.WithInsecure(), grpc.WithContextDialer(echo.CountingDialer(&connections))}
	if *authority != "" {
		options = append(options, grpc.WithAuthority(*authority))
	}
	conn, err := grpc.Dial(*target, options...)
	if err != nil {
		fail("dial %s: %v", *target, err)
	}
	defer conn.Close()

	base := metadata.NewOutgoingContext(context.Background(), metadata.Pairs(headers...))
	start := time.Now()
	plan := newSchedule(start, *count, *duration, *rate)
	tallies := make([]*tally, *concurrency)
	var workers sync.WaitGroup
	for w := range tallies {
		tallies[w] = newTally()
		workers.Add(1)
		go func(t *tally) {
			defer workers.Done()
			for {
				at, ok := plan.next()
				if !ok {
					return
				}
				time.Sleep(time.Until(at))
				ctx, cancel := base, context.CancelFunc(func() {})
				if *timeout > 0 {
					ctx, cancel = context.WithTimeout(base, *timeout)
				}
				began := time.Now()
				result := makeCall(ctx, conn)
				t.record(result, time.Since(began))
				cancel()
			}
		}(tallies[w])
	}
	workers.Wait()
	elapsed := time.Since(start)

	total := newTally()
	for _, t := range tallies {
		total.merge(t)
	}
	line, _ := json.Marshal(total.summarize(connections.Load(), elapsed))
	_, _ = os.Stdout.Write(append(line, '\n'))
}
