// Decides from a connection's first bytes whether it speaks HTTP/2 with prior knowledge (the client preface).

import { CONNECTION_PREFACE } from '../http2/constants.ts';

export type SniffResult = 'http2' | 'other' | 'need-more';

/** 'http2' once the whole preface is seen, 'other' at the first byte that differs, else 'need-more'. */
export function sniffPreface(bytes: Buffer): SniffResult {
  const length = Math.min(bytes.length, CONNECTION_PREFACE.length);
  for (let i = 0; i < length; i++) if (bytes[i] !== CONNECTION_PREFACE[i]) return 'other';
  return length === CONNECTION_PREFACE.length ? 'http2' : 'need-more';
}
