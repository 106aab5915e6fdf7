// Microbenchmark of HPACK on typical gRPC header blocks: decode and encode, warm (table primed) and cold.

import { HpackDecoder } from '../agent/http2/hpack-decoder.ts';
import { HpackEncoder } from '../agent/http2/hpack-encoder.ts';

export interface MicroResult {
  name: string;
  nsPerOp: number;
  opsPerSec: number;
}

const REQUEST = [
  ...[':method', 'POST', ':scheme', 'http', ':path', '/helloworld.Greeter/SayHello'],
  ...[':authority', 'greeter.default.svc.cluster.local:50051', 'content-type', 'application/grpc'],
  ...['te', 'trailers', 'grpc-timeout', '999m', 'user-agent', 'grpc-node-js/1.14.7'],
  ...['grpc-accept-encoding', 'identity,deflate,gzip'],
];
const RESPONSE = [
  ...[':status', '200', 'content-type', 'application/grpc'],
  ...['grpc-accept-encoding', 'identity,deflate,gzip', 'grpc-encoding', 'identity'],
];
const TRAILERS = ['grpc-status', '0', 'grpc-message', 'OK'];

const TARGET_NS = 500_000_000n;

/** Runs `op` in growing batches until about half a second has passed; returns ns per call. */
function measure(op: () => unknown): number {
  let sink = 0;
  for (let i = 0; i < 10_000; i++) if (op() !== undefined) sink++; // warm up: let the JIT optimise
  let iterations = 0;
  let batch = 1000;
  const started = process.hrtime.bigint();
  let elapsed = 0n;
  while (elapsed < TARGET_NS) {
    for (let i = 0; i < batch; i++) if (op() !== undefined) sink++;
    iterations += batch;
    batch *= 2;
    elapsed = process.hrtime.bigint() - started;
  }
  if (sink < 0) console.log(sink); // keeps the results observable
  return Number(elapsed) / iterations;
}

/** An encoder and a decoder that have already exchanged `lists` once, as on a long-lived connection. */
function primed(lists: string[][]): { encoder: HpackEncoder; decoder: HpackDecoder } {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  for (let round = 0; round < 2; round++) for (const list of lists) decoder.decode(Buffer.from(encoder.encode(list)));
  return { encoder, decoder };
}

export function runHpackMicro(): MicroResult[] {
  const results: MicroResult[] = [];
  const record = (name: string, op: () => unknown): void => {
    const nsPerOp = measure(op);
    results.push({ name, nsPerOp, opsPerSec: 1e9 / nsPerOp });
  };

  // Warm: the steady state of a proxy connection; blocks are mostly indexes into the dynamic table.
  const request = primed([REQUEST]);
  const requestBlock = Buffer.from(request.encoder.encode(REQUEST));
  record(`decode request, warm (${requestBlock.length} B)`, () => request.decoder.decode(requestBlock));
  record('encode request, warm', () => request.encoder.encode(REQUEST));

  const response = primed([RESPONSE, TRAILERS]);
  const responseBlock = Buffer.from(response.encoder.encode(RESPONSE));
  const trailersBlock = Buffer.from(response.encoder.encode(TRAILERS));
  record(`decode response + trailers, warm (${responseBlock.length}+${trailersBlock.length} B)`, () => {
    response.decoder.decode(responseBlock);
    return response.decoder.decode(trailersBlock);
  });
  record('encode response + trailers, warm', () => {
    response.encoder.encode(RESPONSE);
    return response.encoder.encode(TRAILERS);
  });

  // Cold: the first request of a connection; literals with Huffman strings, and a new table each time.
  const coldBlock = Buffer.from(new HpackEncoder().encode(REQUEST));
  record(`decode request, cold (${coldBlock.length} B, Huffman)`, () => new HpackDecoder().decode(coldBlock));
  record('encode request, cold', () => new HpackEncoder().encode(REQUEST));
  return results;
}

function printTable(results: MicroResult[]): void {
  const width = Math.max(...results.map((r) => r.name.length));
  console.log(`${'case'.padEnd(width)}  ${'ns/op'.padStart(9)}  ${'ops/s'.padStart(12)}`);
  for (const r of results) {
    const ops = Math.round(r.opsPerSec).toLocaleString('en-US');
    console.log(`${r.name.padEnd(width)}  ${r.nsPerOp.toFixed(1).padStart(9)}  ${ops.padStart(12)}`);
  }
}

if (import.meta.main) printTable(runHpackMicro());
