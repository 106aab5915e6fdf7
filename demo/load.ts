// The demo's client load: a fixed number of unary RPCs kept in flight on one grpc-js channel, tallied by backend.

import type { Client } from '@grpc/grpc-js';
import { META, unary } from '../lab/grpc-peers.ts';

export interface Tally {
  /** Successful RPCs by the id of the backend that answered (its `x-served-by` response header). */
  readonly served: Map<string, number>;
  ok: number;
  failed: number;
  /** The most recent failure, e.g. "14 UNAVAILABLE: ..."; empty while nothing failed. */
  lastError: string;
}

export interface Load {
  readonly tally: Tally;
  /** Sends no new RPC and resolves when the ones in flight have finished (each has a deadline). */
  stop(): Promise<void>;
}

const PAYLOAD = Buffer.from('hello from the meshlite demo');
const PAUSE_AFTER_FAILURE_MS = 100;

/** Starts `inFlight` workers, each sending its next RPC as soon as the previous one finished. */
export function startLoad(client: Client, inFlight: number, deadlineMs: number): Load {
  const tally: Tally = { served: new Map(), ok: 0, failed: 0, lastError: '' };
  let running = true;
  const worker = async (): Promise<void> => {
    while (running) {
      try {
        const { headers } = await unary(client, PAYLOAD, { timeoutMs: deadlineMs });
        const backend = String(headers.get(META.servedBy)[0] ?? '(unknown)');
        tally.served.set(backend, (tally.served.get(backend) ?? 0) + 1);
        tally.ok++;
      } catch (error) {
        tally.failed++;
        tally.lastError = error instanceof Error ? error.message : String(error);
        // Without a pause, a worker facing an agent that is gone would spin through failures.
        await new Promise((resolve) => setTimeout(resolve, PAUSE_AFTER_FAILURE_MS));
      }
    }
  };
  const workers = Array.from({ length: inFlight }, worker);
  return {
    tally,
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
}
