// HTTP/2 SETTINGS: the values, their defaults, our advertised defaults, and the validation of a received frame.

import {
  DEFAULT_HEADER_TABLE_SIZE,
  DEFAULT_INITIAL_WINDOW_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  ErrorCode,
  MAX_ALLOWED_FRAME_SIZE,
  MAX_WINDOW_SIZE,
  SettingId,
} from './constants.ts';

export interface Http2Settings {
  headerTableSize: number;
  enablePush: boolean;
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  maxHeaderListSize: number;
}

/** What RFC 9113 says a peer's settings are before its SETTINGS frame arrives. */
export function protocolDefaultSettings(): Http2Settings {
  return {
    headerTableSize: DEFAULT_HEADER_TABLE_SIZE,
    enablePush: true,
    // Unlimited by the RFC; assume a common server limit until the peer says otherwise.
    maxConcurrentStreams: 100,
    initialWindowSize: DEFAULT_INITIAL_WINDOW_SIZE,
    maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
    maxHeaderListSize: Number.MAX_SAFE_INTEGER,
  };
}

/** What we advertise unless told otherwise: large windows so that a relay is never window-bound on a LAN. */
export function advertisedDefaultSettings(): Http2Settings {
  return {
    headerTableSize: DEFAULT_HEADER_TABLE_SIZE,
    enablePush: false,
    maxConcurrentStreams: 1000,
    initialWindowSize: 1024 * 1024,
    maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
    maxHeaderListSize: 64 * 1024,
  };
}

/** The id/value pairs of a SETTINGS frame announcing `settings`. */
export function settingsPairs(settings: Http2Settings): Array<[number, number]> {
  return [
    [SettingId.HEADER_TABLE_SIZE, settings.headerTableSize],
    [SettingId.ENABLE_PUSH, settings.enablePush ? 1 : 0],
    [SettingId.MAX_CONCURRENT_STREAMS, settings.maxConcurrentStreams],
    [SettingId.INITIAL_WINDOW_SIZE, settings.initialWindowSize],
    [SettingId.MAX_FRAME_SIZE, settings.maxFrameSize],
    [SettingId.MAX_HEADER_LIST_SIZE, settings.maxHeaderListSize],
  ];
}

export type SettingsResult = { ok: true } | { ok: false; code: number; reason: string };

/**
 * Applies a received SETTINGS payload (length already checked to be a multiple of 6) to `target`, in order.
 * Unknown identifiers are ignored as RFC 9113 §6.5.2 requires.
 */
export function applySettingsPayload(target: Http2Settings, payload: Buffer, receivedByClient: boolean): SettingsResult {
  for (let at = 0; at < payload.length; at += 6) {
    const id = payload.readUInt16BE(at);
    const value = payload.readUInt32BE(at + 2);
    switch (id) {
      case SettingId.HEADER_TABLE_SIZE:
        target.headerTableSize = value;
        break;
      case SettingId.ENABLE_PUSH:
        if (value > 1) return { ok: false, code: ErrorCode.PROTOCOL_ERROR, reason: 'ENABLE_PUSH not 0 or 1' };
        if (value === 1 && receivedByClient) {
          return { ok: false, code: ErrorCode.PROTOCOL_ERROR, reason: 'server sent ENABLE_PUSH=1' };
        }
        target.enablePush = value === 1;
        break;
      case SettingId.MAX_CONCURRENT_STREAMS:
        target.maxConcurrentStreams = value;
        break;
      case SettingId.INITIAL_WINDOW_SIZE:
        if (value > MAX_WINDOW_SIZE) {
          return { ok: false, code: ErrorCode.FLOW_CONTROL_ERROR, reason: 'INITIAL_WINDOW_SIZE above 2^31-1' };
        }
        target.initialWindowSize = value;
        break;
      case SettingId.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_ALLOWED_FRAME_SIZE) {
          return { ok: false, code: ErrorCode.PROTOCOL_ERROR, reason: 'MAX_FRAME_SIZE out of range' };
        }
        target.maxFrameSize = value;
        break;
      case SettingId.MAX_HEADER_LIST_SIZE:
        target.maxHeaderListSize = value;
        break;
      default:
        break;
    }
  }
  return { ok: true };
}
