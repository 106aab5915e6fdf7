// Loaded into the agent with `node --import` by bench/relay-profile.ts, never by the image: on the first SIGUSR2 it
// starts V8's sampling heap profiler (keeping objects the GC already collected, so it sees every allocation) and
// counts garbage collections; on the second it writes both to the file MESHLITE_ALLOCATION_OUT names.

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { type PerformanceEntry, PerformanceObserver, constants } from 'node:perf_hooks';

/** Bytes between samples: small enough for per-request figures from a few seconds of load. */
const SAMPLING_INTERVAL = 512;

const out = process.env.MESHLITE_ALLOCATION_OUT;
if (out !== undefined && out !== '') {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  const gc = { minor: 0, major: 0, minorMs: 0, majorMs: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gc.minor++;
        gc.minorMs += entry.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.major++;
        gc.majorMs += entry.duration;
      }
    }
  });
  let sampling = false;
  process.on('SIGUSR2', () => {
    if (!sampling) {
      sampling = true;
      observer.observe({ entryTypes: ['gc'] });
      void post('HeapProfiler.enable').then(() =>
        post('HeapProfiler.startSampling', {
          samplingInterval: SAMPLING_INTERVAL,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        }),
      );
      return;
    }
    sampling = false;
    observer.disconnect();
    void post('HeapProfiler.stopSampling').then((result) => {
      writeFileSync(out, JSON.stringify({ gc, profile: (result as { profile: unknown }).profile }));
    });
  });
}
