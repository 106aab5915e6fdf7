// A discrete-event simulation of requests through a picker: a fixed number in flight, latencies per endpoint,
// a fake clock. Lets balancer tests assert spreads under load without real time or sockets.

import type { EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import type { Picker } from '../../agent/balancer/picker.ts';

/** A fake monotonic ns clock: `now()` for load objects, `cell` (a TimeCell) for pickers. */
export class FakeClock {
  readonly cell = new Float64Array(1);
  readonly now = (): number => this.cell[0];

  get ns(): number {
    return this.cell[0];
  }

  set ns(value: number) {
    this.cell[0] = value;
  }
}

export interface SimulationOptions {
  clock: FakeClock;
  /** Read before every pick, so a test can swap the picker mid-run. */
  picker: () => Picker;
  /** Requests kept in flight. */
  concurrency: number;
  /** Stop after this many picks (the ones in flight then are finished too). */
  requests: number;
  latencyNs(endpoint: EndpointLoad): number;
  /** Called after each pick with the endpoint and the clock. */
  onPick?(endpoint: EndpointLoad, nowNs: number): void;
}

interface InFlight {
  endpoint: EndpointLoad;
  startedNs: number;
  doneNs: number;
}

/** Returns picks per endpoint address. */
export function simulate(options: SimulationOptions): Map<string, number> {
  const { clock } = options;
  const counts = new Map<string, number>();
  const inFlight: InFlight[] = [];
  let picked = 0;
  const finishEarliest = (): void => {
    let first = 0;
    for (let i = 1; i < inFlight.length; i++) if (inFlight[i].doneNs < inFlight[first].doneNs) first = i;
    const [done] = inFlight.splice(first, 1);
    if (done.doneNs > clock.ns) clock.ns = done.doneNs;
    done.endpoint.onFinish(done.doneNs - done.startedNs);
  };
  while (picked < options.requests) {
    if (inFlight.length >= options.concurrency) {
      finishEarliest();
      continue;
    }
    const endpoint = options.picker().pick();
    if (endpoint === null) throw new Error('picker returned no endpoint');
    picked++;
    counts.set(endpoint.address, (counts.get(endpoint.address) ?? 0) + 1);
    endpoint.onStart();
    inFlight.push({ endpoint, startedNs: clock.ns, doneNs: clock.ns + options.latencyNs(endpoint) });
    options.onPick?.(endpoint, clock.ns);
  }
  while (inFlight.length > 0) finishEarliest();
  return counts;
}
