// The agent's count of open client connections, from its /metrics: the proof that the client uses one.
//
// Run as a program (transparent mode) it sits in the node namespace, where the admin server's 127.0.0.1 is, and
// reports the count to the demo twice a second until the demo goes away.

import { connectReporter } from './progress-channel.ts';

export async function clientConnections(admin: string): Promise<number | null> {
  try {
    const response = await fetch(`http://${admin}/metrics`, { signal: AbortSignal.timeout(500) });
    const match = /^meshlite_downstream_connections (\d+)$/m.exec(await response.text());
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

const REPORT_EVERY_MS = 500;

async function main(admin: string, socket: string): Promise<void> {
  const reporter = await connectReporter(socket, () => process.exit(0));
  process.once('SIGTERM', () => void reporter.close().then(() => process.exit(0)));
  process.stdout.write('running\n');
  for (;;) {
    const count = await clientConnections(admin);
    reporter.send({ kind: 'connections', from: 'agent', count });
    await new Promise((resolve) => setTimeout(resolve, REPORT_EVERY_MS));
  }
}

if (import.meta.main) await main(process.argv[2] ?? '', process.argv[3] ?? '');
