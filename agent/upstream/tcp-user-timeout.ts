// TCP_USER_TIMEOUT on an upstream socket, through the native addon (agent/native/original_dst.c; Node has no API for
// it). Best effort: without the compiled addon, or with one built before it had the function, the socket keeps the
// kernel's default (data unacknowledged for ~15 min of retransmissions before the connection is dropped).

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

interface TcpUserTimeoutAddon {
  setTcpUserTimeout?(fd: number, ms: number): void;
  getTcpUserTimeout?(fd: number): number;
}

// Relative to this file: agent/upstream → repository root → node-gyp's output (the same addon the listener loads).
const ADDON_PATH = '../../build/Release/original_dst.node';

let loaded: TcpUserTimeoutAddon | null | undefined;

function addon(): TcpUserTimeoutAddon | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)(ADDON_PATH) as TcpUserTimeoutAddon;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

function fdOf(socket: Socket): number | null {
  // biome-ignore lint/suspicious/noExplicitAny: libuv's handle is internal; its fd is the documented way in.
  const fd: unknown = (socket as any)._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/** Sets TCP_USER_TIMEOUT on a connected socket; false when it could not (no addon or function, no fd, kernel refused). */
export function setTcpUserTimeout(socket: Socket, ms: number): boolean {
  const set = addon()?.setTcpUserTimeout;
  const fd = fdOf(socket);
  if (set === undefined || fd === null) return false;
  try {
    set(fd, ms);
    return true;
  } catch {
    return false;
  }
}

/** The socket's TCP_USER_TIMEOUT as the kernel holds it (0: the default), or null when it cannot be read. */
export function tcpUserTimeoutOf(socket: Socket): number | null {
  const get = addon()?.getTcpUserTimeout;
  const fd = fdOf(socket);
  if (get === undefined || fd === null) return null;
  try {
    return get(fd);
  } catch {
    return null;
  }
}
