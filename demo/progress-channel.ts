// How the demo's programs in pod and node namespaces report to it as they go: JSON lines over a Unix socket.
//
// A socket path is a file, so it reaches every network namespace (the agent's CNI socket works the same way). Their
// stdout would do too, but the harness keeps every process's output in memory for its whole life; a demo left
// running for a day would hold all of it.

import { createConnection, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

/** A client's running totals, sent every few hundred milliseconds and once more when it stops. */
export interface TallyReport {
  kind: 'tally';
  from: string;
  ok: number;
  failed: number;
  /** Successful RPCs by the id of the backend that answered. */
  served: Record<string, number>;
  lastError: string;
}

/** The agent's open client connections, read from its /metrics inside the node namespace; null when unreadable. */
export interface ConnectionsReport {
  kind: 'connections';
  from: string;
  count: number | null;
}

export type Report = TallyReport | ConnectionsReport;

export interface ReportServer {
  /** Resolves when the connection that reported as `from` has closed: every report it sent has been handled. */
  ended(from: string): Promise<void>;
  close(): Promise<void>;
}

/** Listens on `path`; each line received is parsed and handed to `onReport` (a line that is not a report is ignored). */
export async function listenForReports(path: string, onReport: (report: Report) => void): Promise<ReportServer> {
  const sockets = new Set<Socket>();
  const endings = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const ending = (from: string) => {
    let entry = endings.get(from);
    if (entry === undefined) {
      let resolve = (): void => {};
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      entry = { promise, resolve };
      endings.set(from, entry);
    }
    return entry;
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    let from: string | null = null;
    socket.on('error', () => {}); // a reporter that dies resets the connection; 'close' follows
    createInterface({ input: socket }).on('line', (line) => {
      const report = parseReport(line);
      if (report === null) return;
      from = report.from;
      onReport(report);
    });
    socket.once('close', () => {
      sockets.delete(socket);
      if (from !== null) ending(from).resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    ended: (from) => ending(from).promise,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface Reporter {
  send(report: Report): void;
  /** Ends the connection once everything sent is written. */
  close(): Promise<void>;
}

/** Connects to the demo; `onLost` runs if the demo goes away first (its reporters have no one left to report to). */
export async function connectReporter(path: string, onLost: () => void): Promise<Reporter> {
  const socket = createConnection(path);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let closing = false;
  socket.on('error', () => {});
  socket.once('close', () => {
    if (!closing) onLost();
  });
  return {
    send: (report) => void socket.write(`${JSON.stringify(report)}\n`),
    close: () => {
      closing = true;
      return new Promise<void>((resolve) => socket.end(resolve));
    },
  };
}

function parseReport(line: string): Report | null {
  try {
    const value = JSON.parse(line) as Partial<Report>;
    if (typeof value.from !== 'string') return null;
    if (value.kind === 'tally' || value.kind === 'connections') return value as Report;
    return null;
  } catch {
    return null;
  }
}
