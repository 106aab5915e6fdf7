// A process that holds many idle HTTP/2 client connections open to one address: each sends the preface, an empty
// SETTINGS and the ACK of the server's SETTINGS, then nothing (as an idle gRPC channel does). It runs apart from the
// test so that its file descriptors and memory count against neither the test nor the agent.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** An empty SETTINGS frame, then SETTINGS with ACK (the server's SETTINGS always come first on its side). */
const HELLO = Buffer.concat([PREFACE, Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]), Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0])]);
/** Connects in flight at once: the agent's accept queue and the loopback SYN queue stay small. */
const CONNECTS_AT_ONCE = 200;

export interface IdleConnections {
  child: ChildProcess;
  /** Connections open now (updated as the process reports). */
  readonly state: { open: number; closed: number; failed: number };
  /** Opens `count` more connections; resolves when every one of them is open or failed. */
  open(count: number): Promise<void>;
  /** Closes every connection and ends the process. */
  stop(): Promise<void>;
}

/** Starts the opener process (with a file limit that fits `limit` sockets: `ulimit -n` in its shell). */
export async function startIdleConnections(host: string, port: number, limit = 20_000): Promise<IdleConnections> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn('/bin/sh', ['-c', `ulimit -n ${limit} 2>/dev/null; exec "$0" "$@"`, process.execPath, script, host, String(port)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const state = { open: 0, closed: 0, failed: 0 };
  let settle: (() => void) | null = null;
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    const report = JSON.parse(line) as { open: number; closed: number; failed: number; done?: boolean };
    Object.assign(state, { open: report.open, closed: report.closed, failed: report.failed });
    if (report.done === true) settle?.();
  });
  return {
    child,
    state,
    open: async (count) => {
      const done = new Promise<void>((resolve) => {
        settle = resolve;
      });
      child.stdin?.write(`${count}\n`);
      await done;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

if (import.meta.main) {
  const [host, port] = [process.argv[2], Number(process.argv[3])];
  const sockets = new Set<net.Socket>();
  const counts = { open: 0, closed: 0, failed: 0 };
  const report = (done: boolean): void => {
    process.stdout.write(`${JSON.stringify({ ...counts, done })}\n`);
  };
  const connectOne = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect({ host, port });
      let opened = false;
      socket.on('connect', () => {
        opened = true;
        counts.open++;
        sockets.add(socket);
        socket.write(HELLO);
        resolve();
      });
      // What the server sends (its SETTINGS, the ACK of ours, a window update) is read and dropped.
      socket.on('data', () => {});
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        if (opened) {
          counts.open--;
          counts.closed++;
        } else {
          counts.failed++;
          resolve();
        }
      });
    });
  const openMany = async (count: number): Promise<void> => {
    let next = 0;
    const workers = Array.from({ length: Math.min(CONNECTS_AT_ONCE, count) }, async () => {
      while (next < count) {
        next++;
        await connectOne();
      }
    });
    await Promise.all(workers);
    report(true);
  };
  createInterface({ input: process.stdin }).on('line', (line) => {
    openMany(Number(line)).catch(() => report(true));
  });
  const stop = (): void => {
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  setInterval(() => report(false), 500).unref();
}
