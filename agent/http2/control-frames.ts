// The frames that are neither DATA nor header blocks — SETTINGS (and the acknowledgement ours must get in time),
// PING, GOAWAY, WINDOW_UPDATE, PRIORITY, RST_STREAM — each checked against RFC 9113 §6 and applied. On a server
// connection, resets, PINGs and SETTINGS are first counted against the client's flood limits (flood-guard.ts).

import type { Clock } from '../vocabulary/clock.ts';
import type { InputOwner, InputParts } from './connection-input.ts';
import type { Http2Connection } from './connection.ts';
import { ErrorCode, Flag } from './constants.ts';
import { DEFAULT_FLOOD_LIMITS, FloodGuard } from './flood-guard.ts';
import type { FrameWriter } from './frame-writer.ts';
import type { Http2Handler } from './handler.ts';
import { type Http2Settings, applySettingsPayload } from './settings.ts';
import type { StreamOutput } from './stream-output.ts';
import type { StreamTable } from './stream-table.ts';

const UNLIMITED_STREAMS = 0xffffffff;

export class ControlFrames {
  private remoteSettingsSeen = false;
  private settingsTimer: unknown = null;
  private readonly connection: Http2Connection;
  private readonly handler: Http2Handler;
  private readonly role: 'server' | 'client';
  private readonly remoteSettings: Http2Settings;
  private readonly timers: Clock;
  private readonly settingsTimeoutMs: number;
  private readonly writer: FrameWriter;
  private readonly streams: StreamTable;
  private readonly output: StreamOutput;
  private readonly owner: InputOwner;
  /** A client's flood limits (server role only: the peers we connect to are endpoints we chose). */
  private readonly flood: FloodGuard | null;

  constructor(parts: InputParts, owner: InputOwner) {
    this.connection = parts.connection;
    this.handler = parts.handler;
    this.role = parts.role;
    this.remoteSettings = parts.remoteSettings;
    this.timers = parts.timers;
    this.settingsTimeoutMs = parts.settingsTimeoutMs;
    this.writer = parts.writer;
    this.streams = parts.streams;
    this.output = parts.output;
    this.owner = owner;
    this.flood =
      parts.role === 'server'
        ? new FloodGuard(parts.timers, DEFAULT_FLOOD_LIMITS, (_kind, reason) => owner.connectionError(ErrorCode.ENHANCE_YOUR_CALM, reason))
        : null;
    // Header intake counts the streams it admits and refuses against the same limits.
    parts.headers.watchFloods(this.flood);
  }

  /** Our SETTINGS are on their way: the peer must acknowledge them in time. */
  awaitSettingsAck(): void {
    this.settingsTimer = this.timers.setTimeout(() => {
      this.settingsTimer = null;
      this.owner.connectionError(ErrorCode.SETTINGS_TIMEOUT, 'SETTINGS not acknowledged in time');
    }, this.settingsTimeoutMs);
  }

  /** The connection closed: no timer fires. */
  stop(): void {
    if (this.settingsTimer !== null) this.timers.clearTimeout(this.settingsTimer);
    this.settingsTimer = null;
  }

  onPriorityFrame(streamId: number, payload: Buffer): void {
    const owner = this.owner;
    if (streamId === 0) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    // RST_STREAM must not name an idle stream (RFC 9113 §6.4), so on one the stream error becomes a connection error (§5.4.1).
    const idle = !this.streams.has(streamId) && this.streams.isIdle(streamId);
    if (payload.length !== 5) {
      if (idle) return owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY length is not 5');
      return owner.streamError(streamId, this.streams.get(streamId), ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY length is not 5');
    }
    if ((payload.readUInt32BE(0) & 0x7fffffff) === streamId) {
      if (idle) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
      return owner.streamError(streamId, this.streams.get(streamId), ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
    }
  }

  onRstStreamFrame(streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) return this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM length is not 4');
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (this.streams.isIdle(streamId)) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
      return;
    }
    if (this.flood !== null && stream.openedByPeer && !this.flood.admitPeerReset(streamId)) return;
    const code = payload.readUInt32BE(0);
    this.owner.forgetStream(stream);
    this.handler.onStreamReset(this.connection, stream, code, true);
    this.owner.closeIfIdle();
  }

  onSettingsFrame(flags: number, streamId: number, payload: Buffer): void {
    const owner = this.owner;
    if (streamId !== 0) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0) return owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      if (this.settingsTimer !== null) {
        this.timers.clearTimeout(this.settingsTimer);
        this.settingsTimer = null;
      }
      return;
    }
    if (payload.length % 6 !== 0) return owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6');
    // The limit also bounds the walks over every stream that a change of INITIAL_WINDOW_SIZE makes below.
    if (this.flood !== null && !this.flood.admitSettings()) return;
    const previousWindow = this.remoteSettings.initialWindowSize;
    // The stream limit we assumed until now gives way to the RFC's "no limit" unless the peer names one.
    if (!this.remoteSettingsSeen) this.remoteSettings.maxConcurrentStreams = UNLIMITED_STREAMS;
    this.remoteSettingsSeen = true;
    const result = applySettingsPayload(this.remoteSettings, payload, this.role === 'client');
    if (!result.ok) return owner.connectionError(result.code, result.reason);
    this.output.setHeaderTableSize(this.remoteSettings.headerTableSize);
    const delta = this.remoteSettings.initialWindowSize - previousWindow;
    if (delta !== 0 && !this.output.shiftStreamWindows(delta)) {
      return owner.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE change overflows a stream window');
    }
    this.writer.writeSettings(Flag.ACK, []);
    owner.requestFlush();
    this.handler.onRemoteSettings(this.connection);
    if (delta > 0) this.output.pumpAll();
  }

  onPingFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) return this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING length is not 8');
    if ((flags & Flag.ACK) === 0) {
      if (this.flood !== null && !this.flood.admitPing()) return;
      this.writer.writePing(Flag.ACK, payload);
      this.owner.requestFlush();
      return;
    }
    this.owner.pingAcknowledged(payload);
  }

  onGoawayFrame(streamId: number, payload: Buffer): void {
    if (streamId !== 0) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) return this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 bytes');
    const lastStreamId = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    this.owner.peerGoingAway();
    // Streams we opened above lastStreamId were never processed: they fail with REFUSED_STREAM and may be retried.
    for (const stream of [...this.streams.values()]) {
      if (!stream.openedByPeer && stream.id > lastStreamId) {
        this.owner.forgetStream(stream);
        this.handler.onStreamReset(this.connection, stream, ErrorCode.REFUSED_STREAM, true);
      }
    }
    this.handler.onGoaway(this.connection, lastStreamId, code, payload.subarray(8));
    this.owner.closeIfIdle();
  }

  onWindowUpdateFrame(streamId: number, payload: Buffer): void {
    const owner = this.owner;
    if (payload.length !== 4) return owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length is not 4');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (increment > 0) this.flood?.peerSentData();
    if (streamId === 0) {
      if (increment === 0) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      if (!this.output.growConnectionWindow(increment)) return owner.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (this.streams.isIdle(streamId)) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
      return;
    }
    if (increment === 0) return owner.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    if (!this.output.growStreamWindow(stream, increment)) return owner.streamError(streamId, stream, ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
  }
}
