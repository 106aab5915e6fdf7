// The pre-DNAT destination of an intercepted connection, read through the SO_ORIGINAL_DST addon.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/** What the addon returns; `family` says which conntrack table answered. */
export interface NativeOriginalDestination {
  address: string;
  port: number;
  family: 4 | 6;
}

export interface OriginalDestinationAddon {
  getOriginalDestination(fd: number): NativeOriginalDestination | null;
}

export interface OriginalDestination {
  ip: string;
  port: number;
}

// Relative to this file: agent/proxy → repository root → node-gyp's output.
const ADDON_PATH = '../../build/Release/original_dst.node';

export const ADDON_BUILD_HINT =
  'the SO_ORIGINAL_DST addon (build/Release/original_dst.node) is not built; ' +
  'run `npm rebuild` (or `npm run install`) in the repository root — it needs python3, make and a C compiler';

// Loaded on first use, not at import: explicit mode, static discovery and most tests never need it, so a
// machine without the compiled addon can still run them; transparent mode asks isOriginalDestinationAvailable()
// at start and fails there with the hint, before it accepts a connection.
let loaded: { addon: OriginalDestinationAddon } | { error: Error } | undefined;

function load(): { addon: OriginalDestinationAddon } | { error: Error } {
  if (loaded === undefined) {
    try {
      const addon = createRequire(import.meta.url)(ADDON_PATH) as OriginalDestinationAddon;
      loaded = { addon };
    } catch (cause) {
      // The first line of require's message names the path; the require stack after it is noise here.
      const reason = String((cause as Error).message).split('\n')[0];
      loaded = { error: new Error(`${ADDON_BUILD_HINT} (${reason})`, { cause }) };
    }
  }
  return loaded;
}

/** The addon itself; throws an Error that says how to build it when it is missing. */
export function originalDestinationAddon(): OriginalDestinationAddon {
  const state = load();
  if ('error' in state) throw state.error;
  return state.addon;
}

/** True when the compiled addon loads on this runtime. */
export function isOriginalDestinationAvailable(): boolean {
  return 'addon' in load();
}

/**
 * The address a client dialled before DNAT/REDIRECT sent it to us, or null when there is nothing to learn:
 * the socket has no file descriptor (closed, or not a kernel socket), conntrack has no entry for it, or the
 * entry says the client dialled this very address (it connected to the agent directly — explicit mode).
 * Other kernel errors (EBADF on a socket closed under us, ...) are thrown with their errno name in `code`.
 */
export function originalDestinationOf(socket: Socket): OriginalDestination | null {
  const addon = originalDestinationAddon();
  // biome-ignore lint/suspicious/noExplicitAny: libuv's handle is internal; its fd is the documented way in.
  const fd: unknown = (socket as any)._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  const original = addon.getOriginalDestination(fd);
  if (original === null) return null;
  // A tracked but un-NATed connection reports its own destination, which is our local address.
  if (original.port === socket.localPort && sameIp(original.address, socket.localAddress)) return null;
  return { ip: original.address, port: original.port };
}

// Node shows an IPv4 peer of a dual-stack socket as ::ffff:a.b.c.d; conntrack answers with a.b.c.d.
export function sameIp(a: string, b: string | undefined): boolean {
  return b !== undefined && unmapped(a) === unmapped(b);
}

function unmapped(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}
