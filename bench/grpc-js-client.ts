// The benchmark's grpc-js load generator, in its own process (bench/loaders.ts starts it): `channels` grpc-js
// channels, each with its own subchannel pool (so its own TCP connection), `streams` unary calls in flight on each,
// as applications use a channel. With a rate, calls start on a fixed schedule over all workers (a late call starts
// at once; its latency counts from when it started). Every channel makes one call before the clock starts.
// Prints one JSON line (GrpcLoadSummary) when the run ends.

import * as grpc from '@grpc/grpc-js';

export interface GrpcJsClientOptions {
  target: string;
  authority: string;
  channels: number;
  streams: number;
  /** Calls per second over all workers; null: as fast as possible. */
  rate: number | null;
  durationS: number;
  requestBytes: number;
  replyBytes: number;
}

/** What both client load generators print (lab/grpc-go/benchclient prints the same fields). */
export interface GrpcLoadSummary {
  calls: number;
  ok: number;
  failed: number;
  badReplies: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  elapsedS: number;
  connections: number | null;
  errors: string[];
}

const METHOD = '/helloworld.Greeter/SayHello';
const passthrough = (b: Buffer): Buffer => b;

function call(client: grpc.Client, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    client.makeUnaryRequest(METHOD, passthrough, passthrough, payload, { deadline }, (error, reply) =>
      error ? reject(error) : resolve(reply as Buffer),
    );
  });
}

async function run(o: GrpcJsClientOptions): Promise<GrpcLoadSummary> {
  const payload = Buffer.alloc(o.requestBytes, 0x62);
  const clients: grpc.Client[] = [];
  for (let i = 0; i < o.channels; i++) {
    const client = new grpc.Client(o.target, grpc.credentials.createInsecure(), {
      'grpc.default_authority': o.authority,
      'grpc.use_local_subchannel_pool': 1,
    });
    await call(client, payload);
    clients.push(client);
  }
  const latencies: number[] = [];
  const errors: string[] = [];
  let ok = 0;
  let failed = 0;
  let badReplies = 0;
  const start = performance.now();
  const end = start + o.durationS * 1000;
  const intervalMs = o.rate === null ? 0 : 1000 / o.rate;
  let issued = 0;
  const note = (message: string): void => {
    if (errors.length < 5 && !errors.includes(message)) errors.push(message);
  };
  const worker = async (client: grpc.Client): Promise<void> => {
    for (;;) {
      const at = intervalMs > 0 ? start + issued++ * intervalMs : performance.now();
      if (at >= end) return;
      const wait = at - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const began = performance.now();
      try {
        const reply = await call(client, payload);
        if (reply.length === o.replyBytes) {
          ok++;
          latencies.push((performance.now() - began) * 1000);
        } else {
          badReplies++;
          note(`reply of ${reply.length} bytes`);
        }
      } catch (error) {
        failed++;
        const e = error as grpc.ServiceError;
        note(`${grpc.status[e.code] ?? e.code}: ${e.details ?? e.message}`);
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < o.channels * o.streams; i++) workers.push(worker(clients[i % clients.length]));
  await Promise.all(workers);
  const elapsedS = (performance.now() - start) / 1000;
  for (const client of clients) client.close();
  const sorted = Float64Array.from(latencies).sort();
  const rank = (q: number): number => (sorted.length === 0 ? 0 : Math.round(sorted[Math.ceil(q * sorted.length) - 1] * 10) / 10);
  return {
    calls: ok + failed + badReplies,
    ok,
    failed,
    badReplies,
    p50Us: rank(0.5),
    p99Us: rank(0.99),
    p999Us: rank(0.999),
    maxUs: rank(1),
    elapsedS,
    connections: o.channels,
    errors,
  };
}

if (import.meta.main) {
  // The harness owns this process: when its stdin closes (the harness died), end too.
  process.stdin.on('end', () => process.exit(3));
  process.stdin.on('error', () => process.exit(3));
  process.stdin.resume();
  try {
    const summary = await run(JSON.parse(process.argv[2]) as GrpcJsClientOptions);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`grpc-js client: ${(error as Error).stack}\n`);
    process.exit(2);
  }
}
