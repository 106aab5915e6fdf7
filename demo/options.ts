// The demo's command line: its options, their validation and the usage text.

import { parseArgs } from 'node:util';
import { BALANCER_NAMES, isBalancerName } from '../agent/vocabulary/balancer-names.ts';
import type { BalancerName } from '../agent/vocabulary/balancer-names.ts';

export const MODE_NAMES = ['auto', 'transparent', 'explicit'] as const;
export type ModeName = (typeof MODE_NAMES)[number];

export const USAGE = `Usage: npm run demo -- [--mode auto|transparent|explicit] [--duration SECONDS] [--balancer NAME]

Starts three gRPC echo backends and the meshlite agent (static discovery, no cluster), sends unary RPCs over ONE
client connection, and shows every second how the requests spread over the backends.

  --mode MODE         transparent: as on a node of a cluster. Pods are network namespaces made by the CNI
                      plugins, kube-proxy-like rules give the Service a ClusterIP, the agent intercepts the
                      annotated client pod's connection to it; a second pod without the annotation shows what
                      happens without meshlite. Needs root on Linux and the CNI plugins in /usr/lib/cni.
                      explicit: backends, agent and client are plain processes on 127.0.0.1; the client dials
                      the agent and names the service in :authority. Runs anywhere.
                      auto (default): transparent when this machine can, explicit otherwise (it says why).
  --duration SECONDS  stop by itself after this long (default: run until Ctrl-C); then the exit status is 1
                      if any RPC failed or a backend got none, so the demo doubles as a smoke test
  --balancer NAME     ${BALANCER_NAMES.join(', ')} (default: round-robin)
  --help, -h          print this text
`;

export interface Options {
  mode: ModeName;
  durationS: number | null;
  balancer: BalancerName;
}

export class UsageError extends Error {}

/** The options, or null for --help; throws a UsageError for anything else it cannot use. */
export function parseOptions(argv: string[]): Options | null {
  let values: { mode?: string; duration?: string; balancer?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        mode: { type: 'string' },
        duration: { type: 'string' },
        balancer: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return null;
  const mode = values.mode ?? 'auto';
  if (!isModeName(mode)) throw new UsageError(`--mode wants one of ${MODE_NAMES.join(', ')}, not "${mode}"`);
  const durationS = values.duration === undefined ? null : Number(values.duration);
  if (durationS !== null && !(durationS > 0 && durationS <= 86_400)) {
    throw new UsageError(`--duration wants a number of seconds above 0 (at most 86400), not "${values.duration}"`);
  }
  const balancer = values.balancer ?? 'round-robin';
  if (!isBalancerName(balancer)) {
    throw new UsageError(`--balancer wants one of ${BALANCER_NAMES.join(', ')}, not "${balancer}"`);
  }
  return { mode, durationS, balancer };
}

function isModeName(name: string): name is ModeName {
  return (MODE_NAMES as readonly string[]).includes(name);
}
