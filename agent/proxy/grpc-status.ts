// gRPC responses made by the agent (Trailers-Only) and the mapping of HTTP/2 reset codes to gRPC status codes
// given by the gRPC "HTTP/2 protocol" document.

import { ErrorCode } from '../http2/constants.ts';
import { GrpcStatus } from '../vocabulary/errors.ts';

/** A Trailers-Only response: HTTP 200 with the status in the only header block (never a 502/503 to gRPC). */
export function trailersOnly(status: number, message: string): string[] {
  return [':status', '200', 'content-type', 'application/grpc', 'grpc-status', String(status), 'grpc-message', encodeGrpcMessage(message)];
}

/** Trailers that end a response whose headers were already sent. */
export function statusTrailers(status: number, message: string): string[] {
  return ['grpc-status', String(status), 'grpc-message', encodeGrpcMessage(message)];
}

/** The gRPC status a client sees when the upstream reset its stream with `code`. */
export function grpcStatusForReset(code: number): number {
  switch (code) {
    case ErrorCode.REFUSED_STREAM:
      return GrpcStatus.UNAVAILABLE;
    case ErrorCode.CANCEL:
      return GrpcStatus.CANCELLED;
    case ErrorCode.ENHANCE_YOUR_CALM:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case ErrorCode.INADEQUATE_SECURITY:
      return GrpcStatus.PERMISSION_DENIED;
    default:
      return GrpcStatus.INTERNAL;
  }
}

/** grpc-message is percent-encoded outside printable ASCII (and `%` itself). */
function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}
