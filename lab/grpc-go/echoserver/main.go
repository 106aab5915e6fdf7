// echoserver: a grpc-go server of the test.Echo service, a peer that nobody here wrote (DESIGN.md decision 15).
//
// It prints {"port":N,"id":"…"} on stdout once it listens. Signals: SIGUSR1 prints one stats line
// ({"calls","cancelled","inFlight","connections"}); SIGTERM stops gracefully (GOAWAY, in-flight calls finish);
// SIGINT stops at once (connections closed), also during a graceful stop.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"meshlite/lab/grpc-go/echo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	id := flag.String("id", "", "reported in x-served-by (default: the listening host:port)")
	delay := flag.Duration("delay", 0, "delay before each response, unless the call's x-delay-ms says otherwise")
	maxAge := flag.Duration("max-connection-age", 0, "send GOAWAY to a connection this old (grpc-go adds ±10% jitter; 0: never)")
	maxAgeGrace := flag.Duration("max-connection-age-grace", 0, "then close it this much later (0: when its calls end)")
	maxStreams := flag.Uint("max-concurrent-streams", 0, "SETTINGS_MAX_CONCURRENT_STREAMS (0: grpc-go's default, unlimited)")
	stopOnStdinClose := flag.Bool("stop-on-stdin-close", false, "stop at once when stdin closes (a harness that died)")
	flag.Parse()

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echoserver:", err)
		os.Exit(1)
	}
	stats := &serverStats{}
	service := &echoServer{id: *id, delay: *delay, stats: stats}
	if service.id == "" {
		service.id = listener.Addr().String()
	}

	var options []grpc.ServerOption
	if *maxAge > 0 || *maxAgeGrace > 0 {
		// Zero fields keep grpc-go's default, infinity.
		options = append(options, grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: *maxAge, MaxConnectionAgeGrace: *maxAgeGrace}))
	}
	if *maxStreams > 0 {
		options = append(options, grpc.MaxConcurrentStreams(uint32(*maxStreams)))
	}
	server := grpc.NewServer(options...)
	server.RegisterService(serviceDesc(service), service)

	// Serve returns as soon as a stop begins; the program ends when the stop has finished.
	var stopOnce sync.Once
	stopped := make(chan struct{})
	stop := func(graceful bool) {
		go func() {
			if graceful {
				server.GracefulStop()
			} else {
				server.Stop()
			}
			stopOnce.Do(func() { close(stopped) })
		}()
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range signals {
			switch sig {
			case syscall.SIGUSR1:
				_, _ = os.Stdout.Write(stats.jsonLine())
			case syscall.SIGTERM:
				stop(true)
			case syscall.SIGINT:
				stop(false)
			}
		}
	}()
	if *stopOnStdinClose {
		echo.OnStdinClosed(func() { stop(false) })
	}

	listening, _ := json.Marshal(map[string]interface{}{"port": listener.Addr().(*net.TCPAddr).Port, "id": service.id})
	_, _ = os.Stdout.Write(append(listening, '\n'))
	if err := server.Serve(echo.CountingListener{Listener: listener, Accepted: &stats.connections}); err != nil {
		fmt.Fprintln(os.Stderr, "echoserver:", err)
		os.Exit(1)
	}
	<-stopped
}
