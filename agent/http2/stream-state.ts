// The HTTP/2 stream state machine of RFC 9113 §5.1, as one state value and one transition function.

import { ErrorCode } from './constants.ts';

/** Stream states; `reserved` states never occur because server push is refused. */
export type StreamState = 'idle' | 'open' | 'half-closed-local' | 'half-closed-remote' | 'closed';

/** What happened to a stream: a frame sent or received with END_STREAM, or a reset either way. */
export type StreamEvent = 'send-headers' | 'recv-headers' | 'send-end' | 'recv-end' | 'reset';

const transitions: Record<StreamState, Partial<Record<StreamEvent, StreamState>>> = {
  idle: { 'send-headers': 'open', 'recv-headers': 'open', reset: 'closed' },
  open: { 'send-end': 'half-closed-local', 'recv-end': 'half-closed-remote', reset: 'closed' },
  'half-closed-local': { 'recv-end': 'closed', reset: 'closed' },
  'half-closed-remote': { 'send-end': 'closed', reset: 'closed' },
  closed: {},
};

/**
 * The state after `event`, or `null` when the event is illegal in `state` (the caller decides whether that is a
 * stream error or a connection error, since RFC 9113 makes that depend on the frame type).
 */
export function nextStreamState(state: StreamState, event: StreamEvent): StreamState | null {
  return transitions[state][event] ?? null;
}

/** Moves `stream` past `event`. Callers check legality first, so an illegal transition here is a bug, not the peer's. */
export function transitionStream(stream: { readonly id: number; state: StreamState }, event: StreamEvent): void {
  const next = nextStreamState(stream.state, event);
  if (next === null) throw new Error(`illegal stream transition ${stream.state} --${event}--> (stream ${stream.id})`);
  stream.state = next;
}

/** Whether the peer may still send DATA or HEADERS on a stream in this state. */
export function canReceive(state: StreamState): boolean {
  return state === 'open' || state === 'half-closed-local';
}

/** Whether we may still send DATA or HEADERS on a stream in this state. */
export function canSend(state: StreamState): boolean {
  return state === 'open' || state === 'half-closed-remote';
}

/** The error a frame received on a stream that can no longer receive gets (RFC 9113 §5.1). */
export const STREAM_CLOSED_ERROR = ErrorCode.STREAM_CLOSED;
