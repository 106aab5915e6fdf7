// Microbenchmark of HTTP/2 framing alone: FrameReader parsing and FrameWriter serializing typical gRPC unary frames, in ns per op.

import { Flag, FrameType } from '../agent/http2/constants.ts';
import { FrameReader, type FrameSink } from '../agent/http2/frame-reader.ts';
import { FrameWriter } from '../agent/http2/frame-writer.ts';
import { HpackEncoder } from '../agent/http2/hpack-encoder.ts';

export interface MicroResult {
  name: string;
  nsPerOp: number;
  opsPerSec: number;
}

const STREAMS = 1000;
/** gRPC message: 5-byte prefix and a 100-byte protobuf. */
const MESSAGE = Buffer.alloc(105, 0x2a);
/** Responses framed per take(): one event-loop turn's worth of output. */
const RESPONSES_PER_FLUSH = 16;

/** Header blocks as a warmed-up encoder emits them on a busy connection (fields already in the dynamic table). */
function steadyStateBlocks(): { head: Buffer; trailers: Buffer } {
  const encoder = new HpackEncoder();
  const head = [':status', '200', 'content-type', 'application/grpc'];
  const trailers = ['grpc-status', '0', 'grpc-message', ''];
  encoder.encode(head);
  encoder.encode(trailers);
  return { head: Buffer.from(encoder.encode(head)), trailers: Buffer.from(encoder.encode(trailers)) };
}

/** HEADERS + DATA + trailers for `STREAMS` streams, as one buffer of wire bytes. */
function responseStream(): Buffer {
  const { head, trailers } = steadyStateBlocks();
  const writer = new FrameWriter();
  const parts: Buffer[] = [];
  for (let i = 0; i < STREAMS; i++) {
    const id = 1 + 2 * i;
    writer.writeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, head);
    writer.writeData(0, id, MESSAGE);
    writer.writeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, trailers);
    for (const segment of writer.take()) parts.push(Buffer.from(segment));
    writer.afterWrite(true);
  }
  return Buffer.concat(parts);
}

class CountingSink implements FrameSink {
  frames = 0;
  bytes = 0;
  onFrame(_type: number, _flags: number, _streamId: number, _input: Buffer, start: number, end: number): void {
    this.frames++;
    this.bytes += end - start;
  }
  onOversizedFrame(): void {
    throw new Error('unexpected oversized frame');
  }
}

/** Runs `round` (which does `opsPerRound` ops) until `minMs` have passed after a warm-up; returns ns per op. */
function measure(round: () => void, opsPerRound: number, minMs = 300): number {
  for (let i = 0; i < 20; i++) round();
  let rounds = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(minMs) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 10; i++) round();
    rounds += 10;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / (rounds * opsPerRound);
}

function result(name: string, nsPerOp: number): MicroResult {
  return { name, nsPerOp: Math.round(nsPerOp * 10) / 10, opsPerSec: Math.round(1e9 / nsPerOp) };
}

export function runFrameMicro(): MicroResult[] {
  const wire = responseStream();
  const framesPerRound = STREAMS * 3;
  const results: MicroResult[] = [];

  const sink = new CountingSink();
  results.push(
    result(
      'parse: one feed() of 3000 frames (ns/frame)',
      measure(() => new FrameReader(16_384).feed(wire, sink), framesPerRound),
    ),
  );

  // Socket reads of 16 KiB split frames at arbitrary points: the straddling-frame path is part of the cost.
  const reads: Buffer[] = [];
  for (let at = 0; at < wire.length; at += 16_384) reads.push(wire.subarray(at, at + 16_384));
  results.push(
    result(
      'parse: 16 KiB reads (ns/frame)',
      measure(() => {
        const reader = new FrameReader(16_384);
        for (let i = 0; i < reads.length; i++) reader.feed(reads[i], sink);
      }, framesPerRound),
    ),
  );
  if (sink.frames % framesPerRound !== 0) throw new Error(`parsed ${sink.frames} frames, not a multiple of ${framesPerRound}`);

  const { head, trailers } = steadyStateBlocks();
  const writer = new FrameWriter();
  let written = 0;
  results.push(
    result(
      'serialize: HEADERS + DATA + trailers, take() per 16 (ns/response)',
      measure(() => {
        for (let i = 0; i < STREAMS; i++) {
          const id = 1 + 2 * i;
          writer.writeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, head);
          writer.writeData(0, id, MESSAGE);
          writer.writeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, trailers);
          if ((i + 1) % RESPONSES_PER_FLUSH === 0) {
            written += writer.take().length;
            writer.afterWrite(true);
          }
        }
        written += writer.take().length;
        writer.afterWrite(true);
      }, STREAMS),
    ),
  );
  if (written === 0) throw new Error('the writer produced nothing');
  return results;
}

if (import.meta.main) {
  const rows = runFrameMicro();
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'benchmark'.padEnd(width)}  ${'ns/op'.padStart(8)}  ${'ops/s'.padStart(12)}`);
  for (const r of rows) console.log(`${r.name.padEnd(width)}  ${r.nsPerOp.toFixed(1).padStart(8)}  ${r.opsPerSec.toLocaleString('en-US').padStart(12)}`);
}
