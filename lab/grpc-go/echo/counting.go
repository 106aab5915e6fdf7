package echo

import (
	"context"
	"net"
	"sync/atomic"
)

// Connections counted on both sides: how many a server accepted or a client dialled shows whether a proxy reused
// them, or whether a server's GOAWAY made its clients connect again.

// CountingListener counts the connections a server accepts in Accepted.
type CountingListener struct {
	net.Listener
	Accepted *atomic.Int64
}

func (l CountingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		l.Accepted.Add(1)
	}
	return conn, err
}

// CountingDialer dials TCP and counts the connections it made in dialled; for grpc.WithContextDialer.
func CountingDialer(dialled *atomic.Int64) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, address string) (net.Conn, error) {
		var dialer net.Dialer
		conn, err := dialer.DialContext(ctx, "tcp", address)
		if err == nil {
			dialled.Add(1)
		}
		return conn, err
	}
}
