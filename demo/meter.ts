// Turns a client's running tally into table frames: rates over the last interval, or over the whole run.

import type { Tally } from './load.ts';
import type { Frame } from './screen.ts';

/** The tally at one moment, from which rates are computed. */
interface Mark {
  ok: number;
  failed: number;
  served: ReadonlyMap<string, number>;
}

export class Meter {
  private readonly ids: readonly string[];
  private readonly addresses: ReadonlyMap<string, string>;
  private readonly tally: Tally;
  private last: Mark & { at: number };

  constructor(addresses: ReadonlyMap<string, string>, tally: Tally, startedAt: number) {
    this.ids = [...addresses.keys()];
    this.addresses = addresses;
    this.tally = tally;
    this.last = { at: startedAt, ok: 0, failed: 0, served: new Map() };
  }

  sinceLast(): Frame {
    const now = performance.now();
    const seconds = Math.max((now - this.last.at) / 1000, 0.001);
    const frame = this.frame(seconds, this.last);
    this.last = { at: now, ok: this.tally.ok, failed: this.tally.failed, served: new Map(this.tally.served) };
    return frame;
  }

  overall(seconds: number): Frame {
    return this.frame(seconds, { ok: 0, failed: 0, served: new Map() });
  }

  private frame(seconds: number, from: Mark): Frame {
    const { served, ok, failed, lastError } = this.tally;
    // Any id the backends did not announce (none expected) still shows, so that nothing is hidden.
    const ids = [...new Set([...this.ids, ...served.keys()])];
    return {
      rows: ids.map((id) => ({
        id,
        address: this.addresses.get(id) ?? '?',
        count: served.get(id) ?? 0,
        perSecond: ((served.get(id) ?? 0) - (from.served.get(id) ?? 0)) / seconds,
      })),
      ok,
      failed,
      perSecond: (ok + failed - from.ok - from.failed) / seconds,
      lastError,
    };
  }
}
