// The enrollment socket's path on the host: made private, probed, and taken over atomically from a previous agent (an upgrade) or a stale file.

import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { basename, dirname, join } from 'node:path';

/** What was at the path before this agent took it. */
export type PreviousSocket = 'none' | 'stale' | 'live';

/** Only root (the plugin, run by the container runtime) and the socket's group may connect. */
export const SOCKET_MODE = 0o660;
export const DIRECTORY_MODE = 0o750;

/** A binder that listens on a unix socket path and resolves once it does (an http.Server or net.Server). */
export type BindAt = (path: string) => Promise<void>;

export interface TakeOverResult {
  previous: PreviousSocket;
  /** The socket file's inode once it is at the path: release() unlinks the path only while it is still this one. */
  inode: number;
}

/**
 * Puts a listening socket at `path` without a moment where the path is missing or refuses connections:
 * 1. creates the parent directory (mode 0750) if it is missing;
 * 2. refuses a path that holds anything but a socket (a file or directory there was not left by an agent);
 * 3. binds at a private name beside `path`, chmods it 0660 (so it is never reachable with looser permissions), and
 *    renames it over `path`, atomically.
 *
 * During an upgrade (a surge: the old agent still runs) this is the takeover, and main does it once the new agent is
 * ready: from the rename on, the plugin's connections reach the new agent; the old agent finishes the requests it
 * has, its socket is unreachable by name, and its release() leaves the path alone because the inode differs. A
 * socket nothing answers on (an agent that died) is replaced the same way. Nothing that answers is ever unlinked.
 */
export async function takeOverSocketPath(path: string, bind: BindAt, probeTimeoutMs: number): Promise<TakeOverResult> {
  const directory = dirname(path);
  const created = await mkdir(directory, { recursive: true, mode: DIRECTORY_MODE });
  // mkdir's mode passes through the umask; the directory is ours to set when we made it.
  if (created !== undefined) await chmod(directory, DIRECTORY_MODE);
  const previous = await probeSocket(path, probeTimeoutMs);
  await removeStaleTemporaries(path, probeTimeoutMs);
  const temporary = `${path}.${randomBytes(4).toString('hex')}.new`;
  await bind(temporary);
  try {
    await chmod(temporary, SOCKET_MODE);
    const { ino } = await stat(temporary);
    await rename(temporary, path);
    return { previous, inode: ino };
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw error;
  }
}

/** Unlinks `path` if it is still the socket with `inode`: a newer agent that took the path over keeps it. */
export async function releaseSocketPath(path: string, inode: number): Promise<boolean> {
  try {
    if ((await lstat(path)).ino !== inode) return false;
    await unlink(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** What is at `path`: nothing, a socket nothing answers on, or one that accepts a connection. Throws for anything
 *  that is not a socket, and for errors other than a refused connection. A probe that times out counts as live. */
export async function probeSocket(path: string, timeoutMs: number): Promise<PreviousSocket> {
  try {
    const info = await lstat(path);
    if (!info.isSocket()) throw new Error(`${path} exists and is not a socket; remove it if it is not needed`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw error;
  }
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    const done = (result: PreviousSocket | Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    // Someone holds it but does not accept in time (a busy agent): it is not stale.
    const timer = setTimeout(() => done('live'), timeoutMs);
    socket.once('connect', () => done('live'));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') done('stale');
      else if (error.code === 'ENOENT') done('none');
      else done(error);
    });
  });
}

/** Private names left by an agent that died between bind and rename; one that answers belongs to an agent that is
 *  starting right now and is left alone. */
async function removeStaleTemporaries(path: string, probeTimeoutMs: number): Promise<void> {
  const prefix = `${basename(path)}.`;
  const names = await readdir(dirname(path));
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.new')) continue;
    const candidate = join(dirname(path), name);
    const state = await probeSocket(candidate, probeTimeoutMs).catch(() => 'live' as const);
    if (state === 'stale') await unlink(candidate).catch(() => {});
  }
}
