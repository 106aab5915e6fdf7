// The test.Echo service by hand (no protoc): the same four methods and steering metadata as lab/grpc-peers.ts's
// grpc-js server, so a test can swap one server for the other.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"meshlite/lab/grpc-go/echo"
)

type echoServer struct {
	id    string
	delay time.Duration
	stats *serverStats
}

// The parts of a call that its request metadata decides.
type callPlan struct {
	headers  metadata.MD
	delay    time.Duration
	failCode codes.Code
}

func serviceDesc(s *echoServer) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: echo.ServiceName,
		HandlerType: (*interface{})(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Unary", Handler: s.unary}},
		Streams: []grpc.StreamDesc{
			{StreamName: "ClientStream", Handler: s.clientStream, ClientStreams: true},
			{StreamName: "ServerStream", Handler: s.serverStream, ServerStreams: true},
			{StreamName: "BidiStream", Handler: s.bidiStream, ClientStreams: true, ServerStreams: true},
		},
	}
}

// begin counts the call and reads its metadata into a plan; the returned end counts it as cancelled when its
// context ended before the handler did (the peer cancelled, its deadline passed, or the server was stopped).
func (s *echoServer) begin(ctx context.Context) (callPlan, func()) {
	s.stats.calls.Add(1)
	s.stats.inFlight.Add(1)
	end := func() {
		s.stats.inFlight.Add(-1)
		if ctx.Err() != nil {
			s.stats.cancelled.Add(1)
		}
	}
	plan := callPlan{headers: metadata.Pairs(echo.ServedByKey, s.id), delay: s.delay, failCode: codes.OK}
	md, _ := metadata.FromIncomingContext(ctx)
	for key, values := range md {
		if strings.HasPrefix(key, echo.EchoPrefix) {
			plan.headers.Append(key, values...)
		}
	}
	if deadline, ok := ctx.Deadline(); ok {
		plan.headers.Set(echo.DeadlineLeftMsKey, strconv.FormatInt(time.Until(deadline).Milliseconds(), 10))
	}
	if v := md.Get(echo.DelayMsKey); len(v) > 0 {
		if ms, err := strconv.ParseFloat(v[0], 64); err == nil {
			plan.delay = time.Duration(ms * float64(time.Millisecond))
		}
	}
	if v := md.Get(echo.FailCodeKey); len(v) > 0 {
		if code, err := strconv.Atoi(v[0]); err == nil {
			plan.failCode = codes.Code(code)
		}
	}
	return plan, end
}

func (s *echoServer) trailer() metadata.MD { return metadata.Pairs(echo.ServedByKey, s.id) }

func failure(code codes.Code) error {
	return status.Error(code, fmt.Sprintf("requested failure %d", code))
}

// pause waits d, and reports false when the call ended meanwhile, so that the handler stops instead of answering.
func pause(ctx context.Context, d time.Duration) bool {
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	return ctx.Err() == nil
}

func contextStatus(ctx context.Context) error { return status.FromContextError(ctx.Err()).Err() }

func (s *echoServer) unary(_ interface{}, ctx context.Context, decode func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var request []byte
	if err := decode(&request); err != nil {
		return nil, err
	}
	plan, end := s.begin(ctx)
	defer end()
	if !pause(ctx, plan.delay) {
		return nil, contextStatus(ctx)
	}
	_ = grpc.SetTrailer(ctx, s.trailer())
	if plan.failCode != codes.OK {
		return nil, failure(plan.failCode)
	}
	_ = grpc.SetHeader(ctx, plan.headers)
	return request, nil
}

// Answers with the count, the byte total and the sha256 of every message in order (decodeSummary in grpc-peers.ts).
func (s *echoServer) clientStream(_ interface{}, stream grpc.ServerStream) error {
	ctx := stream.Context()
	plan, end := s.begin(ctx)
	defer end()
	hash := sha256.New()
	var count, bytes uint32
	var message []byte
	for {
		err := stream.RecvMsg(&message)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		count++
		bytes += uint32(len(message))
		hash.Write(message)
	}
	if !pause(ctx, plan.delay) {
		return contextStatus(ctx)
	}
	stream.SetTrailer(s.trailer())
	if plan.failCode != codes.OK {
		return failure(plan.failCode)
	}
	if err := stream.SetHeader(plan.headers); err != nil {
		return err
	}
	summary := make([]byte, 8, 8+sha256.Size)
	binary.BigEndian.PutUint32(summary[0:4], count)
	binary.BigEndian.PutUint32(summary[4:8], bytes)
	return stream.SendMsg(hash.Sum(summary))
}

// Sends the requested number of messages, each starting with its sequence number; SendMsg blocks on HTTP/2 flow
// control, so a slow reader holds the server back instead of filling its memory.
func (s *echoServer) serverStream(_ interface{}, stream grpc.ServerStream) error {
	var request []byte
	if err := stream.RecvMsg(&request); err != nil {
		return err
	}
	ctx := stream.Context()
	plan, end := s.begin(ctx)
	defer end()
	if !pause(ctx, plan.delay) {
		return contextStatus(ctx)
	}
	stream.SetTrailer(s.trailer())
	if plan.failCode != codes.OK {
		return failure(plan.failCode)
	}
	count, size, err := echo.DecodeServerStreamRequest(request)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if err := stream.SendHeader(plan.headers); err != nil {
		return err
	}
	for seq := uint32(0); seq < count; seq++ {
		message := make([]byte, size)
		binary.BigEndian.PutUint32(message[0:4], seq)
		if err := stream.SendMsg(message); err != nil {
			return err
		}
	}
	return nil
}

// Echoes each message after the delay, one at a time, so that a delay never reorders them.
func (s *echoServer) bidiStream(_ interface{}, stream grpc.ServerStream) error {
	ctx := stream.Context()
	plan, end := s.begin(ctx)
	defer end()
	stream.SetTrailer(s.trailer())
	if plan.failCode != codes.OK {
		return failure(plan.failCode)
	}
	if err := stream.SendHeader(plan.headers); err != nil {
		return err
	}
	for {
		// A new buffer for every message: grpc-go may still be writing the last one after SendMsg returned.
		var message []byte
		err := stream.RecvMsg(&message)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !pause(ctx, plan.delay) {
			return contextStatus(ctx)
		}
		if err := stream.SendMsg(message); err != nil {
			return err
		}
	}
}
