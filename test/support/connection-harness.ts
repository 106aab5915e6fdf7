// Drives an Http2Connection from the peer's side in tests: a recording handler, the memory transport, fake timers, and reaction checks.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ConnectionOptions, Http2Connection } from '../../agent/http2/connection.ts';
import type { Http2ConnectionError, Http2Handler } from '../../agent/http2/handler.ts';
import { HpackDecoder } from '../../agent/http2/hpack-decoder.ts';
import type { Stream } from '../../agent/http2/stream.ts';
import { FakeTimers } from './fake-timers.ts';
import { MemoryTransport, settle } from './memory-transport.ts';
import {
  type GoawayInfo,
  type HeaderBlock,
  type RawFrame,
  clientPreface,
  decodeHeaderBlocks,
  goaways,
  parseFrames,
  ping,
  pings,
  resets,
} from './raw-frames.ts';

export type HandlerEvent =
  | { kind: 'headers'; stream: number; headers: readonly string[]; endStream: boolean; isTrailers: boolean }
  | { kind: 'data'; stream: number; data: Buffer; endStream: boolean }
  | { kind: 'reset'; stream: number; code: number; byPeer: boolean }
  | { kind: 'close'; stream: number }
  | { kind: 'goaway'; lastStreamId: number; code: number }
  | { kind: 'settings' }
  | { kind: 'connection-close'; code: number | null };

export interface HandlerBehaviour {
  /** Answer a request once it ended: :status 200, `responseBody`, trailers grpc-status 0. */
  respond: boolean;
  responseBody: Buffer;
  /** Call consume() for every DATA payload as it arrives. */
  consume: boolean;
}

/** Records every callback; answers requests when told to. */
export class RecordingHandler implements Http2Handler {
  readonly events: HandlerEvent[] = [];
  readonly streams = new Map<number, Stream>();
  readonly dataSent = new Map<number, number>();
  /** Callbacks that broke the handler contract: on a stream after its ending, a second ending, after the connection closed. */
  readonly violations: string[] = [];
  private readonly ended = new Set<number>();
  private connectionClosed = false;
  behaviour: HandlerBehaviour;

  constructor(behaviour: Partial<HandlerBehaviour> = {}) {
    this.behaviour = { respond: true, responseBody: Buffer.from('hello'), consume: true, ...behaviour };
  }

  private check(what: string, stream: Stream | null): void {
    if (this.connectionClosed) this.violations.push(`${what} after onConnectionClose`);
    if (stream !== null && this.ended.has(stream.id)) this.violations.push(`${what} on stream ${stream.id} after it ended`);
  }

  onHeaders(connection: Http2Connection, stream: Stream, headers: readonly string[], endStream: boolean, isTrailers: boolean): void {
    this.check('onHeaders', stream);
    this.events.push({ kind: 'headers', stream: stream.id, headers, endStream, isTrailers });
    this.streams.set(stream.id, stream);
    if (endStream && this.behaviour.respond && connection.role === 'server') this.respond(connection, stream);
  }

  onData(connection: Http2Connection, stream: Stream, data: Buffer, endStream: boolean): void {
    this.check('onData', stream);
    this.events.push({ kind: 'data', stream: stream.id, data: Buffer.from(data), endStream });
    if (this.behaviour.consume) connection.consume(stream, data.length);
    if (endStream && this.behaviour.respond && connection.role === 'server') this.respond(connection, stream);
  }

  onStreamReset(_connection: Http2Connection, stream: Stream, code: number, byPeer: boolean): void {
    this.check('onStreamReset', stream);
    this.ended.add(stream.id);
    this.events.push({ kind: 'reset', stream: stream.id, code, byPeer });
  }

  onStreamClose(_connection: Http2Connection, stream: Stream): void {
    this.check('onStreamClose', stream);
    this.ended.add(stream.id);
    this.events.push({ kind: 'close', stream: stream.id });
  }

  onDataSent(_connection: Http2Connection, stream: Stream, bytes: number): void {
    this.check('onDataSent', stream);
    this.dataSent.set(stream.id, (this.dataSent.get(stream.id) ?? 0) + bytes);
  }

  onGoaway(_connection: Http2Connection, lastStreamId: number, code: number): void {
    this.check('onGoaway', null);
    this.events.push({ kind: 'goaway', lastStreamId, code });
  }

  onRemoteSettings(): void {
    this.check('onRemoteSettings', null);
    this.events.push({ kind: 'settings' });
  }

  onConnectionClose(_connection: Http2Connection, error: Http2ConnectionError | null): void {
    this.check('onConnectionClose', null);
    this.connectionClosed = true;
    this.events.push({ kind: 'connection-close', code: error === null ? null : error.code });
  }

  respond(connection: Http2Connection, stream: Stream, body = this.behaviour.responseBody): void {
    connection.sendHeaders(stream, [':status', '200', 'content-type', 'application/grpc'], false);
    if (body.length > 0) connection.sendData(stream, body, false);
    connection.sendTrailers(stream, ['grpc-status', '0']);
  }

  /** Request heads the handler received (not trailers), by stream id. */
  requests(): number[] {
    return this.events.flatMap((e) => (e.kind === 'headers' && !e.isTrailers ? [e.stream] : []));
  }

  /** How each stream ended: 'close', 'reset:<code>', or several entries when a stream ended twice. */
  endings(stream: number): string[] {
    return this.events.flatMap((e) =>
      e.kind === 'close' && e.stream === stream ? ['close'] : e.kind === 'reset' && e.stream === stream ? [`reset:${e.code}`] : [],
    );
  }
}

export interface PeerOptions extends Omit<ConnectionOptions, 'role' | 'clock'> {
  handler?: Partial<HandlerBehaviour>;
}

/** The test plays the other end of one connection. */
export class Peer {
  readonly transport = new MemoryTransport();
  readonly timers = new FakeTimers();
  readonly handler: RecordingHandler;
  readonly connection: Http2Connection;
  readonly decoder = new HpackDecoder(4096, 1 << 20);
  frames: RawFrame[] = [];
  private blocks: HeaderBlock[] = [];
  private decodedUpTo = 0;
  private pingCounter = 0;

  constructor(role: 'server' | 'client', options: PeerOptions = {}) {
    const { handler, ...connectionOptions } = options;
    this.handler = new RecordingHandler(handler);
    this.connection = new Http2Connection(this.transport, this.handler, { ...connectionOptions, role, clock: this.timers });
    this.transport.onDrain = () => this.connection.transportDrained();
  }

  /** Feeds bytes; receive() must never throw. */
  send(...chunks: Buffer[]): void {
    for (const chunk of chunks) this.connection.receive(chunk);
  }

  /** Lets pending output flush and parses everything written so far. */
  async settle(): Promise<void> {
    await settle();
    this.parse();
    assert.deepEqual(this.handler.violations, [], 'handler callbacks keep their contract');
  }

  parse(): RawFrame[] {
    const output = this.transport.output();
    // The client role's output starts with the connection preface.
    const start = this.connection.role === 'client' && output.length >= 24 ? 24 : 0;
    this.frames = parseFrames(output.subarray(start));
    return this.frames;
  }

  goaways(): GoawayInfo[] {
    return goaways(this.frames);
  }

  resets(): Array<{ stream: number; code: number }> {
    return resets(this.frames);
  }

  /** Decoded header blocks written so far (each block goes through the decoder once). */
  headerBlocks(): HeaderBlock[] {
    const { blocks, next } = decodeHeaderBlocks(this.frames, this.decoder, this.decodedUpTo);
    this.blocks.push(...blocks);
    this.decodedUpTo = next;
    return this.blocks;
  }

  /** Sends a PING and checks that its ACK comes back: the connection is still usable. */
  async assertUsable(): Promise<void> {
    const opaque = `probe${String(this.pingCounter++).padStart(3, '0')}`;
    this.send(ping(opaque));
    await this.settle();
    assert.ok(pings(this.frames, true).includes(opaque), `PING ${opaque} was not acknowledged`);
    assert.equal(this.connection.lifecycle.state, 'open');
  }
}

/** A server-role connection that has started and received a valid client preface (SETTINGS + ACK). */
export function serverPeer(options: PeerOptions = {}, clientSettings: ReadonlyArray<readonly [number, number]> = []): Peer {
  const peer = new Peer('server', options);
  peer.connection.start();
  peer.send(clientPreface(clientSettings));
  return peer;
}

export type Expectation =
  /** GOAWAY with this code (or one of these codes), the last frame written, and the transport ended. */
  | { connectionError: number | readonly number[] }
  /** RST_STREAM on `stream` with `code`, no GOAWAY, and the connection still answers a PING. */
  | { streamError: { stream: number; code: number } }
  /** No GOAWAY, the connection still answers a PING, then the case's own check. */
  | { ok: (peer: Peer) => void };

/** Checks one reaction; throws an assertion error describing the first mismatch. */
export async function checkReaction(peer: Peer, expect: Expectation): Promise<void> {
  await peer.settle();
  if ('connectionError' in expect) {
    const codes = typeof expect.connectionError === 'number' ? [expect.connectionError] : expect.connectionError;
    const sent = peer.goaways();
    assert.equal(sent.length, 1, `expected one GOAWAY, got ${JSON.stringify(sent)}`);
    assert.ok(codes.includes(sent[0].code), `GOAWAY code ${sent[0].code}, expected one of ${codes.join(', ')}`);
    assert.equal(peer.frames.at(-1)?.type, 7, 'GOAWAY is the last frame written');
    assert.ok(peer.transport.endCalls + peer.transport.destroyCalls >= 1, 'transport ended');
    assert.equal(peer.transport.writesAfterClose, 0, 'no write after the transport ended');
    const state = peer.connection.lifecycle;
    assert.equal(state.state, 'closed');
    if (state.state === 'closed') assert.equal(state.error?.code, sent[0].code, 'lifecycle error matches the GOAWAY');
    return;
  }
  assert.deepEqual(peer.goaways(), [], 'no GOAWAY');
  if ('streamError' in expect) {
    const { stream, code } = expect.streamError;
    const onStream = peer.resets().filter((r) => r.stream === stream);
    assert.deepEqual(onStream, [{ stream, code }], `RST_STREAM on stream ${stream}`);
    await peer.assertUsable();
    return;
  }
  await peer.assertUsable();
  expect.ok(peer);
}

/** Passes when any one of the reactions the RFC allows is seen. */
export async function checkAnyReaction(peer: Peer, expect: Expectation | readonly Expectation[]): Promise<void> {
  const options = Array.isArray(expect) ? expect : [expect as Expectation];
  const failures: string[] = [];
  for (const option of options) {
    try {
      await checkReaction(peer, option);
      return;
    } catch (error) {
      failures.push((error as Error).message);
    }
  }
  assert.fail(failures.join('\n  or: '));
}

export interface ConformanceCase {
  name: string;
  options?: PeerOptions;
  clientSettings?: ReadonlyArray<readonly [number, number]>;
  /** Bytes to send first instead of a valid preface. */
  rawStart?: boolean;
  frames: Buffer[];
  expect: Expectation | readonly Expectation[];
}

/** Runs a case with its frames fed one per receive() ('frames') or in small random slices ('slices'). */
export async function runCase(c: ConformanceCase, feeding: 'frames' | 'slices'): Promise<Peer> {
  let peer: Peer;
  if (c.rawStart) {
    peer = new Peer('server', c.options);
    peer.connection.start();
  } else {
    peer = serverPeer(c.options, c.clientSettings);
  }
  if (feeding === 'frames') {
    peer.send(...c.frames);
  } else {
    const all = Buffer.concat(c.frames);
    let seed = all.length * 2654435761;
    for (let at = 0; at < all.length; ) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const size = 1 + (seed % 7);
      peer.send(all.subarray(at, at + size));
      at += size;
    }
  }
  await checkAnyReaction(peer, c.expect);
  return peer;
}

/** Registers each section as a describe() and each case as a test run with both feedings. */
export function runSections(sections: ReadonlyArray<readonly [string, readonly ConformanceCase[]]>, after?: (c: ConformanceCase, peer: Peer) => void): void {
  for (const [section, cases] of sections) {
    describe(section, () => {
      for (const c of cases) {
        test(c.name, async () => {
          for (const feeding of ['frames', 'slices'] as const) after?.(c, await runCase(c, feeding));
        });
      }
    });
  }
}

export const quiet: PeerOptions = { handler: { respond: false } };

/** Checks that the handler received exactly these request heads. */
export function requestsWere(expected: number[]): (peer: Peer) => void {
  return (peer) => assert.deepEqual(peer.handler.requests(), expected, 'requests the handler received');
}

/** Checks that a response head with :status 200 went out on `stream`. */
export function answered(stream: number): (peer: Peer) => void {
  return (peer) => {
    const block = peer.headerBlocks().find((b) => b.streamId === stream);
    assert.deepEqual(block?.headers.slice(0, 2), [':status', '200'], `response on stream ${stream}`);
  };
}

export function all(...checks: Array<(peer: Peer) => void>): (peer: Peer) => void {
  return (peer) => {
    for (const check of checks) check(peer);
  };
}
