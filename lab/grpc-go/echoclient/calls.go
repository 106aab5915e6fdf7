package main

import (
	"context"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"meshlite/lab/grpc-go/echo"
)

// What one call came to: its error (nil or a status), who served it, and for a stream how many messages arrived
// and whether that was fewer than asked for although the status was OK.
type outcome struct {
	err        error
	servedBy   string
	messages   int64
	incomplete bool
}

type call func(ctx context.Context, conn *grpc.ClientConn) outcome

// x-served-by comes in the response headers; a failed call answered Trailers-Only has it in the trailers only.
func servedBy(header, trailer metadata.MD) string {
	if v := header.Get(echo.ServedByKey); len(v) > 0 {
		return v[0]
	}
	if v := trailer.Get(echo.ServedByKey); len(v) > 0 {
		return v[0]
	}
	return ""
}

func unaryCall(payload []byte) call {
	return func(ctx context.Context, conn *grpc.ClientConn) outcome {
		var header, trailer metadata.MD
		var reply []byte
		err := conn.Invoke(ctx, echo.UnaryMethod, payload, &reply, grpc.Header(&header), grpc.Trailer(&trailer))
		return outcome{err: err, servedBy: servedBy(header, trailer)}
	}
}

var serverStreamDesc = &grpc.StreamDesc{StreamName: "ServerStream", ServerStreams: true}

func serverStreamCall(count, size uint32) call {
	request := echo.EncodeServerStreamRequest(count, size)
	return func(ctx context.Context, conn *grpc.ClientConn) outcome {
		stream, err := conn.NewStream(ctx, serverStreamDesc, echo.ServerStreamMethod)
		if err != nil {
			return outcome{err: err}
		}
		if err := stream.SendMsg(request); err != nil && err != io.EOF {
			return outcome{err: err}
		}
		// An io.EOF from SendMsg means the server already answered; RecvMsg below reads its status.
		_ = stream.CloseSend()
		var received int64
		var message []byte
		for {
			err = stream.RecvMsg(&message)
			if err != nil {
				break
			}
			received++
		}
		if err == io.EOF {
			err = nil
		}
		header, _ := stream.Header()
		return outcome{
			err:        err,
			servedBy:   servedBy(header, stream.Trailer()),
			messages:   received,
			incomplete: err == nil && received != int64(count),
		}
	}
}
