package echo

import (
	"encoding/binary"
	"errors"
)

// The service and methods of lab/grpc-peers.ts's echoService.
const (
	ServiceName        = "test.Echo"
	UnaryMethod        = "/test.Echo/Unary"
	ClientStreamMethod = "/test.Echo/ClientStream"
	ServerStreamMethod = "/test.Echo/ServerStream"
	BidiStreamMethod   = "/test.Echo/BidiStream"
)

// Request metadata that steers one call (META in lab/grpc-peers.ts).
const (
	DelayMsKey        = "x-delay-ms"         // wait this long before responding (overrides the server's -delay)
	FailCodeKey       = "x-fail-code"        // answer with this gRPC status code instead of OK
	EchoPrefix        = "x-echo-"            // request entries with this prefix come back in the response headers
	ServedByKey       = "x-served-by"        // response header and trailer: the id of the server that answered
	DeadlineLeftMsKey = "x-deadline-left-ms" // response header: time left on the deadline the server saw
)

// EncodeServerStreamRequest is ServerStream's request: how many messages to send back, and the size of each.
func EncodeServerStreamRequest(count, size uint32) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b[0:4], count)
	binary.BigEndian.PutUint32(b[4:8], size)
	return b
}

// DecodeServerStreamRequest reads that request; a size below 4 is raised to 4, room for the sequence number.
func DecodeServerStreamRequest(b []byte) (count, size uint32, err error) {
	if len(b) != 8 {
		return 0, 0, errors.New("ServerStream wants 8 bytes: count, size")
	}
	count, size = binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint32(b[4:8])
	if size < 4 {
		size = 4
	}
	return count, size, nil
}
