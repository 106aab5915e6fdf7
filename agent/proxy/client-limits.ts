// What bounds a client connection's cost to the agent: how many may be open, how long one has for its handshake, the
// flow-control windows it is given and the bytes it may hold, and the agent-wide budget they all report to.

import type { BufferBudget } from './buffer-budget.ts';

/**
 * A client stream's window: what one request can hold in the agent while its endpoint does not read. 128 KiB (not
 * the 1 MiB upstream connections advertise; grpc-go starts at 64 KiB): a client pod is on this node, so a small window
 * costs little throughput (one stream moves window ÷ round trip, on a node's veth well above 500 MB/s), and 24 streams
 * can stall on one connection before the others feel it (see CLIENT_RECEIVE_BUDGET).
 */
export const CLIENT_STREAM_WINDOW = 128 * 1024;
/** A client connection's window: its bytes are returned on receive (within the budget), so it need not be large. */
export const CLIENT_CONNECTION_WINDOW = 1024 * 1024;
/**
 * Bytes a client connection may hold and still get its window back as they arrive (creditConnectionOnReceive); past
 * it only as they are passed on. One connection so holds at most this plus its window, 3 MiB (measured: 1000 stalled
 * uploads on 4 connections, with 10k idle connections beside them, kept the agent under 300 MiB only at this size);
 * stalled streams (each up to its 128 KiB window) stop the connection's other streams only once together they hold
 * all of it: 24 of them.
 */
export const CLIENT_RECEIVE_BUDGET = 2 * 1024 * 1024;

export interface ClientLimits {
  maxConnections: number;
  handshakeTimeoutMs: number;
  budget: BufferBudget;
}
