// benchclient: the benchmark's grpc-go load generator (bench/loaders.ts), used the way applications use gRPC:
// -channels ClientConns (one TCP connection each), -streams calls in flight on each, unary calls of
// /helloworld.Greeter/SayHello with a -size-byte message. With -rate the calls start on a fixed schedule over all
// workers (a late call starts at once, and its latency counts from when it started); without, as fast as possible.
//
// Every channel makes one call before the clock starts (connection set-up is not measured). When the run ends it
// prints one JSON line: calls started, ok, failed, replies of the wrong size, latency percentiles of the ok calls in
// microseconds, the measured seconds, connections dialled and up to five distinct errors.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"meshlite/lab/grpc-go/echo"
)

const method = "/helloworld.Greeter/SayHello"

type worker struct {
	latencies  []time.Duration
	ok         int64
	failed     int64
	badReplies int64
	errors     []string
}

func (w *worker) noteError(message string) {
	if len(w.errors) < 5 {
		w.errors = append(w.errors, message)
	}
}

type summary struct {
	Calls       int64    `json:"calls"`
	Ok          int64    `json:"ok"`
	Failed      int64    `json:"failed"`
	BadReplies  int64    `json:"badReplies"`
	P50Us       float64  `json:"p50Us"`
	P99Us       float64  `json:"p99Us"`
	P999Us      float64  `json:"p999Us"`
	MaxUs       float64  `json:"maxUs"`
	ElapsedS    float64  `json:"elapsedS"`
	Connections int64    `json:"connections"`
	Errors      []string `json:"errors"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "benchclient: "+format+"\n", args...)
	os.Exit(2)
}

func micros(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)*10) / 10 }

func main() {
	target := flag.String("target", "", "host:port to connect to")
	authority := flag.String("authority", "", ":authority of every call (default: the target)")
	channels := flag.Int("channels", 1, "ClientConns, each its own TCP connection")
	streams := flag.Int("streams", 1, "calls in flight on each channel")
	rate := flag.Float64("rate", 0, "calls per second over all workers (0: as fast as possible)")
	duration := flag.Duration("duration", 5*time.Second, "measured time: no call starts after it")
	size := flag.Int("size", 32, "bytes of the request message")
	replySize := flag.Int("reply-size", 32, "bytes a good reply message has")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of each call")
	stopOnStdinClose := flag.Bool("stop-on-stdin-close", false, "exit at once when stdin closes (a harness that died)")
	flag.Parse()
	if *target == "" || *channels < 1 || *streams < 1 || *duration <= 0 {
		fail("need -target, -channels ≥ 1, -streams ≥ 1 and -duration > 0")
	}
	if *stopOnStdinClose {
		echo.OnStdinClosed(func() { os.Exit(3) })
	}

	var connections atomic.Int64
	options := []grpc.DialOption{grpc.WithInsecure(), grpc.WithContextDialer(echo.CountingDialer(&connections))}
	if *authority != "" {
		options = append(options, grpc.WithAuthority(*authority))
	}
	payload := make([]byte, *size)
	for i := range payload {
		payload[i] = 'b'
	}
	conns := make([]*grpc.ClientConn, *channels)
	for i := range conns {
		conn, err := grpc.Dial(*target, options...)
		if err != nil {
			fail("dial %s: %v", *target, err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		var reply []byte
		err = conn.Invoke(ctx, method, payload, &reply)
		cancel()
		if err != nil {
			fail("first call on channel %d: %v", i, err)
		}
		conns[i] = conn
	}

	start := time.Now()
	end := start.Add(*duration)
	var interval time.Duration
	if *rate > 0 {
		interval = time.Duration(float64(time.Second) / *rate)
	}
	var issued atomic.Int64
	// next: when the caller's next call starts, or false once the measured time is over.
	next := func() (time.Time, bool) {
		at := time.Now()
		if interval > 0 {
			at = start.Add(time.Duration(issued.Add(1)-1) * interval)
		}
		return at, at.Before(end)
	}
	workers := make([]*worker, *channels**streams)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{latencies: make([]time.Duration, 0, 4096)}
		workers[i] = w
		conn := conns[i%len(conns)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var reply []byte
			for {
				at, ok := next()
				if !ok {
					return
				}
				if wait := time.Until(at); wait > 0 {
					time.Sleep(wait)
				}
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				began := time.Now()
				err := conn.Invoke(ctx, method, payload, &reply)
				took := time.Since(began)
				cancel()
				switch {
				case err != nil:
					w.failed++
					w.noteError(status.Convert(err).Code().String() + ": " + status.Convert(err).Message())
				case len(reply) != *replySize:
					w.badReplies++
					w.noteError(fmt.Sprintf("reply of %d bytes", len(reply)))
				default:
					w.ok++
					w.latencies = append(w.latencies, took)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	s := summary{ElapsedS: elapsed.Seconds(), Connections: connections.Load(), Errors: []string{}}
	var all []time.Duration
	for _, w := range workers {
		s.Ok += w.ok
		s.Failed += w.failed
		s.BadReplies += w.badReplies
		all = append(all, w.latencies...)
		for _, e := range w.errors {
			if len(s.Errors) < 5 {
				s.Errors = append(s.Errors, e)
			}
		}
	}
	s.Calls = s.Ok + s.Failed + s.BadReplies
	if len(all) > 0 {
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		rank := func(q float64) time.Duration { return all[int(math.Ceil(q*float64(len(all))))-1] }
		s.P50Us, s.P99Us, s.P999Us, s.MaxUs = micros(rank(0.5)), micros(rank(0.99)), micros(rank(0.999)), micros(all[len(all)-1])
	}
	line, _ := json.Marshal(s)
	_, _ = os.Stdout.Write(append(line, '\n'))
}
