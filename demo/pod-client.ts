// The program of the demo's client pods: ONE grpc-js channel to a plain address, a steady load, its tally reported live.
//
// It is an ordinary gRPC client: nothing in it knows meshlite exists. Whether its requests are balanced depends only
// on whether the pod it runs in is annotated.

import { makeEchoClient } from '../lab/grpc-peers.ts';
import { startLoad } from './load.ts';
import { connectReporter } from './progress-channel.ts';

export interface PodClientArgs {
  /** The pod's name: the `from` of its reports. */
  name: string;
  /** `IP:port` to dial: the Service's ClusterIP. */
  target: string;
  inFlight: number;
  deadlineMs: number;
  /** The demo's report socket. */
  socket: string;
  reportEveryMs: number;
}

/** Runs until SIGTERM, then lets the RPCs in flight finish, sends the final tally and exits 0. */
async function main(args: PodClientArgs): Promise<void> {
  const reporter = await connectReporter(args.socket, () => process.exit(1));
  // No channel options: what any grpc-js client does with an address, one channel, one HTTP/2 connection.
  const client = makeEchoClient(args.target);
  const load = startLoad(client, args.inFlight, args.deadlineMs);
  const report = (): void => {
    const { ok, failed, served, lastError } = load.tally;
    reporter.send({ kind: 'tally', from: args.name, ok, failed, served: Object.fromEntries(served), lastError });
  };
  const timer = setInterval(report, args.reportEveryMs);
  process.once('SIGTERM', () => {
    clearInterval(timer);
    void load.stop().then(async () => {
      client.close();
      report();
      await reporter.close();
      process.exit(0);
    });
  });
  process.stdout.write('running\n');
}

if (import.meta.main) await main(JSON.parse(process.argv[2] ?? '{}') as PodClientArgs);
