// Package echo holds what the grpc-go echo server and client share: the raw-bytes codec, the test.Echo service's
// names and the request metadata that steers a call (the same as lab/grpc-peers.ts).
package echo

import (
	"fmt"

	"google.golang.org/grpc/encoding"
)

// Registered under the name "proto" so that calls keep the plain `application/grpc` content-type of a protobuf
// application: the wire is what real services send, only the message bytes are ours. Registering it replaces
// grpc-go's own proto codec in this program, which has no generated code to use it anyway.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case []byte:
		return m, nil
	case *[]byte:
		return *m, nil
	}
	return nil, fmt.Errorf("raw codec: cannot marshal %T, only []byte", v)
}

// Copies, because newer grpc-go releases hand the codec a pooled buffer that they reuse after Unmarshal returns.
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	m, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T, only *[]byte", v)
	}
	*m = append((*m)[:0], data...)
	return nil
}

func init() {
	encoding.RegisterCodec(rawCodec{})
}
