// Responses the agent writes itself: Trailers-Only headers, end-of-stream trailers, grpc-message percent-encoding,
// and the HTTP/2 reset code to gRPC status mapping.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { grpcStatusForReset, statusTrailers, trailersOnly } from '../../agent/proxy/grpc-status.ts';
import { GrpcStatus } from '../../agent/vocabulary/errors.ts';

describe('trailersOnly', () => {
  it('is an HTTP 200 gRPC response carrying the status and message in its only header block', () => {
    assert.deepEqual(trailersOnly(14, 'no endpoint for default/echo:50051'), [
      ':status',
      '200',
      'content-type',
      'application/grpc',
      'grpc-status',
      '14',
      'grpc-message',
      'no endpoint for default/echo:50051',
    ]);
  });

  it('writes status 0 and an empty message as they are', () => {
    assert.deepEqual(trailersOnly(0, ''), [':status', '200', 'content-type', 'application/grpc', 'grpc-status', '0', 'grpc-message', '']);
  });

  it('percent-encodes the message', () => {
    assert.deepEqual(trailersOnly(13, '100% down\n'), [
      ':status',
      '200',
      'content-type',
      'application/grpc',
      'grpc-status',
      '13',
      'grpc-message',
      '100%25 down%0A',
    ]);
  });
});

describe('statusTrailers', () => {
  it('is grpc-status and grpc-message only', () => {
    assert.deepEqual(statusTrailers(4, 'deadline exceeded'), ['grpc-status', '4', 'grpc-message', 'deadline exceeded']);
    assert.deepEqual(statusTrailers(0, ''), ['grpc-status', '0', 'grpc-message', '']);
  });

  it('percent-encodes the message', () => {
    assert.deepEqual(statusTrailers(1, 'café'), ['grpc-status', '1', 'grpc-message', 'caf%C3%A9']);
  });
});

describe('grpc-message encoding', () => {
  const encode = (message: string): string => statusTrailers(2, message)[3];

  it('keeps printable ASCII from space to tilde as it is, the edges included', () => {
    assert.equal(encode(' '), ' ');
    assert.equal(encode('~'), '~');
    assert.equal(encode('$'), '$');
    assert.equal(encode('&'), '&');
    assert.equal(encode('plain message: 0-9 A-Z a-z !"#$&\'()*+,-./:;<=>?@[\\]^_`{|}~'), 'plain message: 0-9 A-Z a-z !"#$&\'()*+,-./:;<=>?@[\\]^_`{|}~');
  });

  it('encodes a single control character, DEL, percent or non-ASCII character on its own', () => {
    assert.equal(encode('\x00'), '%00');
    assert.equal(encode('\n'), '%0A');
    assert.equal(encode('\x1f'), '%1F');
    assert.equal(encode('\x7f'), '%7F');
    assert.equal(encode('%'), '%25');
    assert.equal(encode('\x80'), '%C2%80');
    assert.equal(encode('é'), '%C3%A9');
  });

  it('encodes every UTF-8 byte in upper-case two-digit hex', () => {
    assert.equal(encode('\u00ff'), '%C3%BF');
    assert.equal(encode('€'), '%E2%82%AC');
    assert.equal(encode('😀'), '%F0%9F%98%80');
  });

  it('once anything needs encoding, encodes exactly the bytes outside space..tilde and percent, wherever they are', () => {
    assert.equal(encode(' ~$&%\x1f\x7f'), ' ~$&%25%1F%7F');
    assert.equal(encode('\tstart'), '%09start');
    assert.equal(encode('mid\rdle'), 'mid%0Ddle');
    assert.equal(encode('end\n'), 'end%0A');
    assert.equal(encode('a b~c é'), 'a b~c %C3%A9');
  });

  it('keeps the empty message empty', () => {
    assert.equal(encode(''), '');
  });
});

describe('grpcStatusForReset', () => {
  it('maps the four reset codes the gRPC HTTP/2 document names, each to its status', () => {
    assert.equal(grpcStatusForReset(ErrorCode.REFUSED_STREAM), GrpcStatus.UNAVAILABLE);
    assert.equal(grpcStatusForReset(ErrorCode.CANCEL), GrpcStatus.CANCELLED);
    assert.equal(grpcStatusForReset(ErrorCode.ENHANCE_YOUR_CALM), GrpcStatus.RESOURCE_EXHAUSTED);
    assert.equal(grpcStatusForReset(ErrorCode.INADEQUATE_SECURITY), GrpcStatus.PERMISSION_DENIED);
  });

  it('maps every other reset code, and unknown codes, to INTERNAL', () => {
    const mapped = Object.fromEntries(Object.entries(ErrorCode).map(([name, code]) => [name, grpcStatusForReset(code)]));
    assert.deepEqual(mapped, {
      NO_ERROR: 13,
      PROTOCOL_ERROR: 13,
      INTERNAL_ERROR: 13,
      FLOW_CONTROL_ERROR: 13,
      SETTINGS_TIMEOUT: 13,
      STREAM_CLOSED: 13,
      FRAME_SIZE_ERROR: 13,
      REFUSED_STREAM: 14,
      CANCEL: 1,
      COMPRESSION_ERROR: 13,
      CONNECT_ERROR: 13,
      ENHANCE_YOUR_CALM: 8,
      INADEQUATE_SECURITY: 7,
      HTTP_1_1_REQUIRED: 13,
    });
    assert.equal(grpcStatusForReset(0xe), GrpcStatus.INTERNAL);
    assert.equal(grpcStatusForReset(0xffffffff), GrpcStatus.INTERNAL);
  });
});
