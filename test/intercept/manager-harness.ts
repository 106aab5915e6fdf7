// An InterceptionManager on a fake kernel and a fake clock, with its log lines, state changes and metrics recorded.

import type { ErrorCode } from '../../agent/vocabulary/errors.ts';
import type { InterceptionStateName, InterceptObserver, PassKind, RepairKind } from '../../agent/intercept/intercept-metrics.ts';
import { InterceptionManager, type InterceptionManagerOptions } from '../../agent/intercept/interception-manager.ts';
import { createLogger, type Logger } from '../../agent/telemetry/logger.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { FakeNetfilter } from './fake-netfilter.ts';

/** What kube-proxy (iptables mode) leaves in nat and filter, reduced to the jumps meshlite must stay ahead of. */
export const KUBE_PROXY_V4 = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/greeter:grpc cluster IP" -m tcp --dport 8080 -j DNAT --to-destination 10.1.1.7:8080
COMMIT
*filter
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
COMMIT
`;

export const NAT_V4 = `*nat
:MESHLITE-PREROUTING - [0:0]
-A MESHLITE-PREROUTING -p tcp -m set --match-set meshlite-pods-v4 src -m set --match-set meshlite-dsts-v4 dst,dst -j DNAT --to-destination 10.0.0.1:15001
-I PREROUTING 1 -m comment --comment meshlite -j MESHLITE-PREROUTING
COMMIT
`;

export const FILTER_V4 = `*filter
:MESHLITE-INPUT - [0:0]
-A MESHLITE-INPUT -d 10.0.0.1/32 -p tcp -m tcp --dport 15001 -m conntrack --ctstate DNAT -j ACCEPT
-A MESHLITE-INPUT -d 10.0.0.1/32 -p tcp -m tcp --dport 15001 -j REJECT --reject-with tcp-reset
-I INPUT 1 -m comment --comment meshlite -j MESHLITE-INPUT
COMMIT
`;

export const CREATE_V4 = `create meshlite-pods-v4 hash:ip family inet maxelem 65536 timeout 3 -exist
create meshlite-dsts-v4 hash:ip,port family inet maxelem 1048576 -exist
`;

export interface LogLine {
  level: string;
  msg: string;
  code?: string;
  [field: string]: unknown;
}

export interface Harness {
  kernel: FakeNetfilter;
  timers: FakeTimers;
  manager: InterceptionManager;
  logger: Logger;
  lines: LogLine[];
  /** Every observer call, in order: `state ready`, `pass sets ok`, `repaired jump 1`, `error ML_…`. */
  observed: string[];
}

export function createHarness(options: Partial<InterceptionManagerOptions> = {}, prepare?: (kernel: FakeNetfilter) => void): Harness {
  const kernel = new FakeNetfilter();
  kernel.iptables('nft', 4, KUBE_PROXY_V4);
  prepare?.(kernel);
  const timers = new FakeTimers();
  const lines: LogLine[] = [];
  const logger = createLogger('debug', { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const observed: string[] = [];
  const metrics: InterceptObserver = {
    stateChanged: (state: InterceptionStateName) => observed.push(`state ${state}`),
    passFinished: (pass: PassKind, ok: boolean) => observed.push(`pass ${pass} ${ok ? 'ok' : 'failed'}`),
    repaired: (kind: RepairKind, count: number) => observed.push(`repaired ${kind} ${count}`),
    setMembers: () => {},
    countError: (code: ErrorCode) => observed.push(`error ${code}`),
  };
  const manager = new InterceptionManager({
    runner: kernel.runner,
    logger,
    metrics,
    timers,
    nodeIPs: { v4: '10.0.0.1', v6: null },
    proxyPort: 15001,
    backend: 'auto',
    reconcileIntervalMs: 10_000,
    random: () => 0.5,
    ...options,
  });
  return { kernel, timers, manager, logger, lines, observed };
}

/** Lets every promise chain the fake runner started run to its end (the fake answers without I/O). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Starts the manager and forgets the start's commands, log lines and observations. */
export async function started(harness: Harness): Promise<Harness> {
  const start = harness.manager.start();
  await settle();
  await start;
  harness.kernel.take();
  harness.lines.splice(0);
  harness.observed.splice(0);
  return harness;
}

/** Log lines at warn or above, as `level code msg`. */
export function warnings(lines: readonly LogLine[]): string[] {
  return lines.filter((line) => line.level === 'warn' || line.level === 'error').map((line) => `${line.level} ${line.code ?? '-'} ${line.msg}`);
}
