// A gRPC unary echo backend on node:http2 that declines some streams the two ways HTTP/2 says "not processed": it
// answers every n-th stream with RST_STREAM(REFUSED_STREAM), and now and then sends GOAWAY with a last-stream-id below
// streams it has already received (it then leaves those unanswered and closes the connection once the streams it kept
// have been answered and closed). Each request carries its RPC's id in `x-rpc-id`; every attempt is logged by id with what became of it, so
// a test can prove each RPC was processed exactly once. A request is processed (counted, answered) after a short delay,
// so that streams are open and unprocessed when a GOAWAY cuts them; a cut stream is never processed.

import { once } from 'node:events';
import * as http2 from 'node:http2';

export const RPC_ID_HEADER = 'x-rpc-id';

export type AttemptOutcome = 'processed' | 'refused' | 'cut';

export interface Attempt {
  rpc: string;
  backend: string;
  outcome: AttemptOutcome;
}

export interface RefusingBackendOptions {
  id: string;
  /** Refuse every n-th stream the backend receives (0: never). */
  refuseEvery?: number;
  /** Every this often, GOAWAY one connection with open unprocessed streams, cutting the newest (0: never). */
  goawayEveryMs?: number;
  /** Streams one GOAWAY cuts at most (default 2: fewer than the five failures in a row that eject an endpoint). */
  cutAtMost?: number;
  /** How long a request waits, received in full, before it is processed. */
  processDelayMs?: number;
}

export interface RefusingBackend {
  id: string;
  port: number;
  counts: { processed: number; refused: number; cut: number; goaways: number; connections: number };
  close(): Promise<void>;
}

interface SessionState {
  /** The last-stream-id of the GOAWAY sent on it; Infinity before one. */
  cutoff: number;
  /** The highest stream id answered: a GOAWAY never claims an answered stream was not processed. */
  maxProcessed: number;
  /** Streams above the cutoff: never answered, reset once the peer has read the GOAWAY. */
  cutStreams: http2.ServerHttp2Stream[];
  /** The peer has read the GOAWAY; the connection is closing. */
  ending: boolean;
  /** Streams received and not yet processed, refused or cut, by stream id. */
  open: Map<number, { rpc: string; stream: http2.ServerHttp2Stream }>;
}

/** Starts the backend on 127.0.0.1 and a free port; every attempt is pushed onto `log` as it is decided. */
export async function startRefusingBackend(options: RefusingBackendOptions, log: Attempt[]): Promise<RefusingBackend> {
  const { id, refuseEvery = 0, goawayEveryMs = 0, cutAtMost = 2, processDelayMs = 5 } = options;
  const counts = { processed: 0, refused: 0, cut: 0, goaways: 0, connections: 0 };
  const sessions = new Map<http2.ServerHttp2Session, SessionState>();
  let received = 0;
  const server = http2.createServer();

  /**
   * Once the peer has read the GOAWAY (it answered the PING sent after it), the cut streams are reset — the peer has
   * already given them up, the reset only frees them here — and the connection closes gracefully: the streams it kept
   * are answered, their frames flushed, then it ends.
   */
  const endAfterGoaway = (session: http2.ServerHttp2Session, state: SessionState): void => {
    if (session.destroyed) return;
    state.ending = true;
    for (const stream of state.cutStreams) if (!stream.closed) stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    session.close();
  };

  const cut = (state: SessionState, streamId: number): void => {
    const entry = state.open.get(streamId);
    if (entry === undefined) return;
    state.open.delete(streamId);
    state.cutStreams.push(entry.stream);
    if (state.ending) entry.stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    counts.cut++;
    log.push({ rpc: entry.rpc, backend: id, outcome: 'cut' });
  };

  server.on('session', (session) => {
    counts.connections++;
    const state: SessionState = { cutoff: Number.POSITIVE_INFINITY, maxProcessed: 0, cutStreams: [], ending: false, open: new Map() };
    sessions.set(session, state);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => {});
  });

  server.on('stream', (stream, headers) => {
    const session = stream.session as http2.ServerHttp2Session;
    const state = sessions.get(session);
    const rpc = String(headers[RPC_ID_HEADER] ?? '?');
    stream.on('error', () => {});
    const streamId = stream.id;
    if (state === undefined || streamId === undefined) return;
    state.open.set(streamId, { rpc, stream });
    if (streamId > state.cutoff) return cut(state, streamId);
    received++;
    if (refuseEvery > 0 && received % refuseEvery === 0) {
      state.open.delete(streamId);
      counts.refused++;
      log.push({ rpc, backend: id, outcome: 'refused' });
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      setTimeout(() => {
        if (!state.open.has(streamId)) return; // cut meanwhile
        state.open.delete(streamId);
        counts.processed++;
        state.maxProcessed = Math.max(state.maxProcessed, streamId);
        log.push({ rpc, backend: id, outcome: 'processed' });
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.concat(chunks)); // the request's length-prefixed message, echoed
      }, processDelayMs);
    });
  });

  // GOAWAY one connection that has unprocessed streams: its last-stream-id cuts the newest (never a stream already
  // answered) and keeps the others, which are answered before the connection ends.
  const goaways =
    goawayEveryMs > 0
      ? setInterval(() => {
          for (const [session, state] of sessions) {
            if (state.cutoff !== Number.POSITIVE_INFINITY || session.destroyed || state.open.size === 0) continue;
            const ids = [...state.open.keys()].sort((a, b) => a - b);
            const cutoff = Math.max(ids[Math.max(0, ids.length - cutAtMost)] - 2, state.maxProcessed);
            if (ids.at(-1) as number <= cutoff) continue;
            state.cutoff = cutoff;
            counts.goaways++;
            session.goaway(http2.constants.NGHTTP2_NO_ERROR, cutoff);
            for (const streamId of ids) if (streamId > cutoff) cut(state, streamId);
            session.ping(() => endAfterGoaway(session, state));
            return;
          }
        }, goawayEveryMs)
      : undefined;

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('refusing backend: no port');
  return {
    id,
    port: address.port,
    counts,
    close: async () => {
      if (goaways !== undefined) clearInterval(goaways);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions.keys()) session.destroy();
      await closed;
    },
  };
}
