// The ready line every benchmark backend prints, its control port (what it answered, for the harness to check), and
// the rule that a backend lives only as long as its harness.

import http from 'node:http';
import type net from 'node:net';
import type { BackendReady } from './backend.ts';

/** The control port on loopback: `GET /count` answers `counts` as JSON (read at each request). Resolves to the port. */
export function serveCounts(counts: object): Promise<number> {
  const control = http.createServer((req, res) => {
    if (req.url === '/count') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(counts));
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise<number>((resolve, reject) => {
    control.once('error', reject);
    control.listen(0, '127.0.0.1', () => resolve((control.address() as net.AddressInfo).port));
  });
}

/** Prints the ready line the harness waits for; the process then lives until a signal or until the harness's pipe
 *  on its stdin closes (the harness died). */
export function announceReady(ready: BackendReady): void {
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  const stop = (): void => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The harness owns this process: when its stdin closes (the harness died), end too.
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
