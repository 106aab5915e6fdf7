// Flushes every connection that has pending output once per turn of the event loop, so that all frames a turn
// produced leave in as few writes as possible (fewer, larger writes are what makes a relay cheap).

export interface Flushable {
  flush(): void;
}

const pending: Flushable[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  // A flush may schedule more output (e.g. a handler reacting to a write); those run in the next turn.
  const batch = pending.splice(0, pending.length);
  for (let i = 0; i < batch.length; i++) batch[i].flush();
}

/** Queue `target` for the next flush. The caller ensures it is queued at most once per turn. */
export function scheduleFlush(target: Flushable): void {
  pending.push(target);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}
