// The ready line every benchmark backend prints, and the rule that a backend lives only as long as its harness.

import type { BackendReady } from './backend.ts';

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
