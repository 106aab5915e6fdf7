// The collaborators of one connection — receive window, stream output, header intake, frame input — built from the
// parts they share, each given only what it works on and the owner steps it may call back.

import type { Clock } from '../vocabulary/clock.ts';
import type { Http2Connection } from './connection.ts';
import { ConnectionInput, type InputOwner } from './connection-input.ts';
import { type ConnectionOptions, DEFAULT_RECEIVE_BUDGET, type Transport } from './connection-options.ts';
import type { FrameWriter } from './frame-writer.ts';
import type { Http2Handler } from './handler.ts';
import { IncomingHeaders, type IncomingHeadersOwner } from './incoming-headers.ts';
import { ReceiveWindow } from './receive-window.ts';
import type { Http2Settings } from './settings.ts';
import { type OutputOwner, StreamOutput } from './stream-output.ts';
import type { StreamTable } from './stream-table.ts';

/** What the connection itself holds and its collaborators share. */
export interface SharedParts {
  connection: Http2Connection;
  handler: Http2Handler;
  role: 'server' | 'client';
  localSettings: Http2Settings;
  remoteSettings: Http2Settings;
  clock: Clock;
  writer: FrameWriter;
  streams: StreamTable;
  transport: Transport;
}

export type ConnectionOwner = InputOwner & OutputOwner & IncomingHeadersOwner;

export interface ConnectionParts {
  receiveWindow: ReceiveWindow;
  output: StreamOutput;
  input: ConnectionInput;
}

export function buildConnectionParts(shared: SharedParts, options: ConnectionOptions, owner: ConnectionOwner): ConnectionParts {
  const { connection, handler, role, localSettings, remoteSettings, writer, streams } = shared;
  const windowTarget = options.connectionWindowSize ?? 16 * 1024 * 1024;
  const creditOnReceive = options.creditConnectionOnReceive ?? false;
  const budget = creditOnReceive ? (options.receiveBudget ?? DEFAULT_RECEIVE_BUDGET) : 0;
  const account = options.bufferAccount ?? null;
  const receiveWindow = new ReceiveWindow(writer, localSettings, windowTarget, budget, account, owner.requestFlush);
  const output = new StreamOutput(connection, handler, writer, shared.transport, remoteSettings, streams, owner);
  const headers = new IncomingHeaders(connection, handler, role, localSettings, remoteSettings, streams, output, owner);
  const input = new ConnectionInput(
    {
      connection,
      handler,
      role,
      localSettings,
      remoteSettings,
      timers: shared.clock,
      prefaceTimeoutMs: options.prefaceTimeoutMs ?? 10_000,
      settingsTimeoutMs: options.settingsTimeoutMs ?? 10_000,
      writer,
      streams,
      receiveWindow,
      output,
      headers,
    },
    owner,
  );
  return { receiveWindow, output, input };
}
