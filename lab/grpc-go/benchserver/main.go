// benchserver: the benchmark's grpc-go backend (bench/backends.ts), a peer that nobody here wrote (DESIGN.md
// decision 15). It serves one registered unary method, helloworld.Greeter/SayHello, through grpc-go's ordinary unary
// path, and answers every call with a fixed reply message. It counts what it answered and the connections it
// accepted, and reports both on a second, plain-HTTP port: GET /count answers {"requests","resets","connections"}.
//
// It prints {"grpcPort":N,"controlPort":M} on stdout once both ports listen. SIGTERM or SIGINT stop it at once.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"

	"meshlite/lab/grpc-go/echo"
)

type counts struct {
	requests    atomic.Int64
	connections atomic.Int64
}

func greeterDesc(reply []byte, c *counts) *grpc.ServiceDesc {
	sayHello := func(_ interface{}, _ context.Context, decode func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
		var request []byte
		if err := decode(&request); err != nil {
			return nil, err
		}
		c.requests.Add(1)
		return reply, nil
	}
	return &grpc.ServiceDesc{
		ServiceName: "helloworld.Greeter",
		HandlerType: (*interface{})(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "SayHello", Handler: sayHello}},
	}
}

func listen(address string) net.Listener {
	l, err := net.Listen("tcp", address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
	return l
}

func main() {
	listenAt := flag.String("listen", "127.0.0.1:0", "gRPC address (port 0: any free port)")
	controlAt := flag.String("control", "127.0.0.1:0", "HTTP address of GET /count (port 0: any free port)")
	replySize := flag.Int("reply-size", 32, "bytes of the reply message")
	stopOnStdinClose := flag.Bool("stop-on-stdin-close", false, "stop at once when stdin closes (a harness that died)")
	flag.Parse()

	reply := make([]byte, *replySize)
	for i := range reply {
		reply[i] = 'a'
	}
	c := &counts{}
	server := grpc.NewServer()
	server.RegisterService(greeterDesc(reply, c), c)

	grpcListener := listen(*listenAt)
	controlListener := listen(*controlAt)
	control := http.NewServeMux()
	control.HandleFunc("/count", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "application/json")
		body, _ := json.Marshal(map[string]int64{"requests": c.requests.Load(), "resets": 0, "connections": c.connections.Load()})
		_, _ = w.Write(body)
	})
	go func() { _ = http.Serve(controlListener, control) }()

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		os.Exit(0)
	}()
	if *stopOnStdinClose {
		echo.OnStdinClosed(func() { os.Exit(0) })
	}

	ready, _ := json.Marshal(map[string]int{
		"grpcPort":    grpcListener.Addr().(*net.TCPAddr).Port,
		"controlPort": controlListener.Addr().(*net.TCPAddr).Port,
	})
	_, _ = os.Stdout.Write(append(ready, '\n'))
	if err := server.Serve(echo.CountingListener{Listener: grpcListener, Accepted: &c.connections}); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}
