// A gRPC client pod's program: N unary RPCs over ONE grpc-js channel, then a JSON summary of who answered.

import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { makeEchoClient, META, serverStream, unary } from './grpc-peers.ts';
import type { NetHost } from './netns.ts';
import type { NamespaceSpawner } from './netns-process.ts';

export interface GrpcClientOptions {
  /** `IP:port` or `[IPv6]:port`: a ClusterIP or a pod IP. */
  target: string;
  count: number;
  /** Calls in flight at once (on the one channel, unless `channels` says otherwise). */
  concurrency?: number;
  /**
   * Channels to spread the calls over, round-robin (default 1, the usual client). Each gets its own subchannel
   * pool, hence its own connection: with kube-proxy that is what gets balanced.
   */
  channels?: number;
  /** Deadline of each call. */
  timeoutMs?: number;
  /** Pause of each worker between its calls, for clients that must still be calling while something changes. */
  intervalMs?: number;
  /** Request metadata of every call (e.g. META.delayMs). */
  metadata?: Record<string, string>;
  /** Also report when calls failed and when the last one succeeded (wall clock), for tests of an outage's length. */
  timeline?: boolean;
  /**
   * Server-streaming calls instead of unary ones: each asks for this many messages of this size and succeeds only
   * if every one arrives, in order (with META.delayMs, the stream opens and waits before the first).
   */
  serverStream?: { messages: number; size: number };
}

/** Wall-clock milliseconds (Date.now()), comparable with the test's own: the client runs in another process. */
export interface GrpcClientTimeline {
  /** When each failed call ended, in order. */
  failedAtMs: number[];
  /** When the last successful call ended; null when none succeeded. */
  lastOkAtMs: number | null;
}

export interface GrpcFailure {
  code: number;
  /** grpc.status name, e.g. UNAVAILABLE; MISMATCH when the echo did not return the request. */
  name: string;
  details: string;
  count: number;
}

export interface GrpcClientSummary {
  target: string;
  count: number;
  ok: number;
  failed: number;
  /** Successful calls per `x-served-by` value (the backend's id). */
  byBackend: Record<string, number>;
  failures: GrpcFailure[];
  durationMs: number;
  /** With options.timeline only. */
  timeline?: GrpcClientTimeline;
}

const MISMATCH = -1;

type CallOptions = { timeoutMs: number; metadata: Record<string, string> };

async function echoed(client: grpc.Client, request: Buffer, callOptions: CallOptions): Promise<{ intact: boolean; headers: grpc.Metadata }> {
  const { message, headers } = await unary(client, request, callOptions);
  return { intact: message.equals(request), headers };
}

async function streamed(client: grpc.Client, shape: { messages: number; size: number }, callOptions: CallOptions): Promise<{ intact: boolean; headers: grpc.Metadata }> {
  const { messages, headers } = await serverStream(client, shape.messages, shape.size, callOptions);
  return { intact: messages.length === shape.messages && messages.every((m, seq) => m.readUInt32BE(0) === seq), headers };
}

async function callAll(options: GrpcClientOptions): Promise<GrpcClientSummary> {
  const channels = Math.max(1, options.channels ?? 1);
  // grpc-js shares one connection among channels to the same target unless each keeps a local subchannel pool.
  const clients = Array.from({ length: channels }, () =>
    makeEchoClient(options.target, channels > 1 ? { 'grpc.use_local_subchannel_pool': 1 } : {}),
  );
  const byBackend: Record<string, number> = {};
  const failures = new Map<string, GrpcFailure>();
  const fail = (code: number, details: string): void => {
    const name = code === MISMATCH ? 'MISMATCH' : (grpc.status[code] ?? String(code));
    const key = `${code} ${details}`;
    const entry = failures.get(key) ?? { code, name, details, count: 0 };
    entry.count++;
    failures.set(key, entry);
  };
  let next = 0;
  let ok = 0;
  const timeline: GrpcClientTimeline = { failedAtMs: [], lastOkAtMs: null };
  const started = performance.now();
  const worker = async (): Promise<void> => {
    for (let i = next++; i < options.count; i = next++) {
      const request = Buffer.from(`e2e-${i}`);
      const callOptions = { timeoutMs: options.timeoutMs ?? 5_000, metadata: options.metadata ?? {} };
      try {
        const { intact, headers } = options.serverStream === undefined ? await echoed(clients[i % channels], request, callOptions) : await streamed(clients[i % channels], options.serverStream, callOptions);
        if (!intact) {
          fail(MISMATCH, options.serverStream === undefined ? 'response is not the request' : 'messages missing or out of order');
        } else {
          const id = String(headers.get(META.servedBy)[0] ?? '(none)');
          byBackend[id] = (byBackend[id] ?? 0) + 1;
          ok++;
          timeline.lastOkAtMs = Date.now();
        }
      } catch (err) {
        const { code, details } = err as { code?: number; details?: string };
        fail(code ?? grpc.status.UNKNOWN, details ?? String(err));
        if (options.timeline === true) timeline.failedAtMs.push(Date.now());
      }
      if (options.intervalMs !== undefined) await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, worker));
  for (const client of clients) client.close();
  return {
    target: options.target,
    count: options.count,
    ok,
    failed: options.count - ok,
    byBackend,
    failures: [...failures.values()],
    durationMs: Math.round(performance.now() - started),
    ...(options.timeline === true ? { timeline } : {}),
  };
}

/**
 * Runs the client inside a pod's (or node's) namespace and resolves with its summary. A failed call is data, not an error;
 * this rejects only when the program itself fails or overruns `timeoutMs`.
 */
export async function runGrpcClient(
  spawn: NamespaceSpawner,
  host: NetHost,
  options: GrpcClientOptions,
  timeoutMs = 30_000,
): Promise<GrpcClientSummary> {
  const client = spawn(host.ns, process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(options)]);
  const exit = await client.wait(timeoutMs);
  if (exit.code !== 0) {
    throw new Error(`gRPC client in ${host.name} exited ${exit.code ?? exit.signal}: ${client.stderr().trim()}`);
  }
  const lines = client.stdout().trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as GrpcClientSummary;
}

if (import.meta.main) {
  const summary = await callAll(JSON.parse(process.argv[2]) as GrpcClientOptions);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
