// Real @grpc/grpc-js peers for interop tests: a generic `test.Echo` service with Buffer passthrough, no protobuf.

import { createHash } from 'node:crypto';
import { type EventEmitter, once } from 'node:events';
import * as grpc from '@grpc/grpc-js';

const SERVICE = 'test.Echo';
const passthrough = (b: Buffer): Buffer => b;

function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/${SERVICE}/${name}`,
    requestStream,
    responseStream,
    requestSerialize: passthrough,
    requestDeserialize: passthrough,
    responseSerialize: passthrough,
    responseDeserialize: passthrough,
  };
}

export const echoService = {
  Unary: method('Unary', false, false),
  ClientStream: method('ClientStream', true, false),
  ServerStream: method('ServerStream', false, true),
  BidiStream: method('BidiStream', true, true),
} satisfies grpc.ServiceDefinition;

// Request metadata that steers one call, so a single server can play every part a test needs.
export const META = {
  delayMs: 'x-delay-ms', // wait this long before responding (overrides the server's delayMs)
  failCode: 'x-fail-code', // answer with this gRPC status code instead of OK
  echoPrefix: 'x-echo-', // request entries with this prefix come back in the response headers
  servedBy: 'x-served-by', // response header and trailer: the id of the server that answered
  deadlineLeftMs: 'x-deadline-left-ms', // response header: time left on the deadline the server saw
} as const;

export interface GrpcServerOptions {
  host?: string;
  port?: number;
  /** Reported in `x-served-by`; defaults to `host:port`. Lets balancing tests see which backend answered. */
  id?: string;
  /** Delay before each response (and before each bidi echo). */
  delayMs?: number;
  serverOptions?: grpc.ServerOptions;
}

export interface GrpcServerHandle {
  port: number;
  id: string;
  server: grpc.Server;
  calls: { count: number };
  cancelled: { count: number };
  /** Force-closes at once; with graceMs, waits that long for in-flight calls first. */
  close(options?: { graceMs?: number }): Promise<void>;
}

type AnyServerCall =
  | grpc.ServerUnaryCall<Buffer, Buffer>
  | grpc.ServerReadableStream<Buffer, Buffer>
  | grpc.ServerWritableStream<Buffer, Buffer>
  | grpc.ServerDuplexStream<Buffer, Buffer>;

/** ServerStream's request: how many messages to send back, and the size of each (at least 4 bytes). */
export function encodeServerStreamRequest(count: number, size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(count, 0);
  b.writeUInt32BE(size, 4);
  return b;
}

export interface ClientStreamSummary {
  count: number;
  bytes: number;
  /** sha256 of every request message concatenated in order: proves content and order in one value. */
  sha256: string;
}

function encodeSummary(s: ClientStreamSummary): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(s.count, 0);
  b.writeUInt32BE(s.bytes, 4);
  return Buffer.concat([b, Buffer.from(s.sha256, 'hex')]);
}

export function decodeSummary(b: Buffer): ClientStreamSummary {
  return { count: b.readUInt32BE(0), bytes: b.readUInt32BE(4), sha256: b.subarray(8).toString('hex') };
}

// Waits for room in the write buffer, or for the peer to cancel; the abort removes the loser's listeners.
async function drainOrCancel(call: grpc.ServerWritableStream<Buffer, Buffer>): Promise<void> {
  const ac = new AbortController();
  try {
    await Promise.race([once(call, 'drain', { signal: ac.signal }), once(call, 'cancelled', { signal: ac.signal })]);
  } finally {
    ac.abort();
  }
}

// grpc-js turns an 'error' emitted on a streaming call into its final status (destroy() would send none).
function failStream(
  call: grpc.ServerWritableStream<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>,
  status: Partial<grpc.StatusObject>,
): void {
  call.emit('error', Object.assign(new Error(status.details), status));
}

export async function startGrpcServer(opts: GrpcServerOptions = {}): Promise<GrpcServerHandle> {
  const host = opts.host ?? '127.0.0.1';
  const server = new grpc.Server(opts.serverOptions);
  const calls = { count: 0 };
  const cancelled = { count: 0 };
  let id = opts.id ?? '';

  // Common start of every call: count it, watch for cancellation, build the response headers.
  const begin = (call: AnyServerCall): { headers: grpc.Metadata; delayMs: number; failCode: number } => {
    calls.count++;
    (call as EventEmitter).on('cancelled', () => cancelled.count++);
    const md = call.metadata;
    const headers = new grpc.Metadata();
    headers.set(META.servedBy, id);
    for (const [key, value] of Object.entries(md.getMap())) {
      if (key.startsWith(META.echoPrefix) && typeof value === 'string') headers.set(key, value);
    }
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
    if (Number.isFinite(deadlineMs)) headers.set(META.deadlineLeftMs, String(Math.round(deadlineMs - Date.now())));
    const delayMs = Number(md.get(META.delayMs)[0] ?? opts.delayMs ?? 0);
    const failCode = Number(md.get(META.failCode)[0] ?? grpc.status.OK);
    return { headers, delayMs, failCode };
  };
  const trailers = (): grpc.Metadata => {
    const t = new grpc.Metadata();
    t.set(META.servedBy, id);
    return t;
  };
  const failure = (code: number): Partial<grpc.StatusObject> => ({
    code,
    details: `requested failure ${code}`,
    metadata: trailers(),
  });
  // Resolves false when the call was cancelled while waiting, so the handler stops instead of answering.
  const pause = async (call: AnyServerCall, ms: number): Promise<boolean> => {
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    return !call.cancelled;
  };

  const impl: grpc.UntypedServiceImplementation = {
    Unary: async (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const { headers, delayMs, failCode } = begin(call);
      if (!(await pause(call, delayMs))) return;
      if (failCode !== grpc.status.OK) return callback(failure(failCode));
      call.sendMetadata(headers);
      callback(null, call.request, trailers());
    },
    ClientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const { headers, delayMs, failCode } = begin(call);
      const hash = createHash('sha256');
      let count = 0;
      let bytes = 0;
      call.on('data', (m: Buffer) => {
        count++;
        bytes += m.length;
        hash.update(m);
      });
      call.on('end', async () => {
        if (!(await pause(call, delayMs))) return;
        if (failCode !== grpc.status.OK) return callback(failure(failCode));
        call.sendMetadata(headers);
        callback(null, encodeSummary({ count, bytes, sha256: hash.digest('hex') }), trailers());
      });
    },
    ServerStream: async (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const { headers, delayMs, failCode } = begin(call);
      if (!(await pause(call, delayMs))) return;
      if (failCode !== grpc.status.OK) return failStream(call, failure(failCode));
      if (call.request.length !== 8) {
        const err = { code: grpc.status.INVALID_ARGUMENT, details: 'ServerStream wants 8 bytes: count, size' };
        return failStream(call, err);
      }
      const count = call.request.readUInt32BE(0);
      const size = Math.max(4, call.request.readUInt32BE(4));
      call.sendMetadata(headers);
      try {
        for (let seq = 0; seq < count; seq++) {
          if (call.cancelled) return;
          const m = Buffer.alloc(size);
          m.writeUInt32BE(seq, 0);
          // Respect backpressure, or a large stream would sit in memory before the peer reads it.
          if (!call.write(m)) await drainOrCancel(call);
        }
        call.end(trailers());
      } catch {
        // The call broke under us (peer gone); its status is already decided.
      }
    },
    BidiStream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      const { headers, delayMs, failCode } = begin(call);
      if (failCode !== grpc.status.OK) return failStream(call, failure(failCode));
      call.sendMetadata(headers);
      // Chained so that a delay never reorders echoes.
      let chain: Promise<unknown> = Promise.resolve();
      call.on('data', (m: Buffer) => {
        chain = chain.then(async () => {
          if (await pause(call, delayMs)) call.write(m);
        });
      });
      call.on('end', () => {
        chain = chain.then(() => {
          if (!call.cancelled) call.end(trailers());
        });
      });
    },
  };
  server.addService(echoService, impl);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  id ||= `${host}:${port}`;

  const close = async ({ graceMs = 0 }: { graceMs?: number } = {}): Promise<void> => {
    if (graceMs <= 0) return server.forceShutdown();
    const timer = setTimeout(() => server.forceShutdown(), graceMs);
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    clearTimeout(timer);
  };
  return { port, id, server, calls, cancelled, close };
}

export const EchoClient = grpc.makeGenericClientConstructor(echoService, SERVICE);
export type EchoServiceClient = InstanceType<typeof EchoClient>;

export function makeEchoClient(address: string, options?: Partial<grpc.ChannelOptions>): EchoServiceClient {
  return new EchoClient(address, grpc.credentials.createInsecure(), options);
}

export interface CallOpts {
  /** Absolute deadline, as grpc-js takes it. */
  deadline?: grpc.Deadline;
  /** Relative deadline; ignored when `deadline` is given. */
  timeoutMs?: number;
  metadata?: grpc.Metadata | Record<string, string>;
}

export interface CallResult {
  headers: grpc.Metadata;
  trailers: grpc.Metadata;
}

function prepare(opts: CallOpts): { metadata: grpc.Metadata; options: grpc.CallOptions } {
  let metadata = opts.metadata ?? new grpc.Metadata();
  if (!(metadata instanceof grpc.Metadata)) {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    metadata = md;
  }
  const options: grpc.CallOptions = {};
  if (opts.deadline !== undefined) options.deadline = opts.deadline;
  else if (opts.timeoutMs !== undefined) options.deadline = Date.now() + opts.timeoutMs;
  return { metadata, options };
}

// Settles on the final status, which grpc-js emits after the unary callback and after the last message is pushed;
// a readable call also waits for 'end' so that no message is still in flight inside the stream when it resolves.
// Rejects with a grpc.ServiceError-shaped error (code, details, metadata) for any status other than OK.
function settle<T>(call: EventEmitter, readable: boolean, result: () => T): Promise<T & CallResult> {
  return new Promise((resolve, reject) => {
    let headers = new grpc.Metadata();
    let ended = !readable;
    let status: grpc.StatusObject | undefined;
    const finish = (): void => {
      if (status && ended) resolve({ ...result(), headers, trailers: status.metadata });
    };
    call.on('metadata', (md: grpc.Metadata) => {
      headers = md;
    });
    // Streaming calls also emit 'error' for the same status; the listener only keeps it from being thrown.
    call.on('error', () => {});
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code !== grpc.status.OK) {
        const err = new Error(`${s.code} ${grpc.status[s.code]}: ${s.details}`);
        return reject(Object.assign(err, { code: s.code, details: s.details, metadata: s.metadata }));
      }
      status = s;
      finish();
    });
    if (readable) {
      call.on('end', () => {
        ended = true;
        finish();
      });
    }
  });
}

// Not awaited by the callers: if the call fails mid-way, settle() reports the status, and the failed write is moot.
function writeAll(call: grpc.ClientWritableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>, bufs: Buffer[]) {
  const run = async (): Promise<void> => {
    for (const b of bufs) {
      if (!call.write(b)) await once(call, 'drain');
    }
    call.end();
  };
  run().catch(() => {});
}

export function unary(
  client: grpc.Client,
  buf: Buffer,
  opts: CallOpts = {},
): Promise<{ message: Buffer } & CallResult> {
  const { metadata, options } = prepare(opts);
  let message: Buffer | undefined;
  const m = echoService.Unary;
  // An error here is the same status settle() rejects with.
  const call = client.makeUnaryRequest(m.path, passthrough, passthrough, buf, metadata, options, (err, value) => {
    if (!err) message = value;
  });
  return settle(call, false, () => ({ message: message ?? Buffer.alloc(0) }));
}

export function clientStream(
  client: grpc.Client,
  bufs: Buffer[],
  opts: CallOpts = {},
): Promise<ClientStreamSummary & CallResult> {
  const { metadata, options } = prepare(opts);
  let reply: Buffer | undefined;
  const m = echoService.ClientStream;
  const call = client.makeClientStreamRequest(m.path, passthrough, passthrough, metadata, options, (err, value) => {
    if (!err) reply = value;
  });
  writeAll(call, bufs);
  return settle(call, false, () => decodeSummary(reply ?? Buffer.alloc(40)));
}

export function serverStream(
  client: grpc.Client,
  count: number,
  size: number,
  opts: CallOpts = {},
): Promise<{ messages: Buffer[] } & CallResult> {
  const { metadata, options } = prepare(opts);
  const m = echoService.ServerStream;
  const request = encodeServerStreamRequest(count, size);
  const call = client.makeServerStreamRequest(m.path, passthrough, passthrough, request, metadata, options);
  const messages: Buffer[] = [];
  call.on('data', (b: Buffer) => messages.push(b));
  return settle(call, true, () => ({ messages }));
}

export function bidi(
  client: grpc.Client,
  bufs: Buffer[],
  opts: CallOpts = {},
): Promise<{ messages: Buffer[] } & CallResult> {
  const { metadata, options } = prepare(opts);
  const m = echoService.BidiStream;
  const call = client.makeBidiStreamRequest(m.path, passthrough, passthrough, metadata, options);
  const messages: Buffer[] = [];
  call.on('data', (b: Buffer) => messages.push(b));
  writeAll(call, bufs);
  return settle(call, true, () => ({ messages }));
}
