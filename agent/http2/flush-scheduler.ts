// Flushes every connection that has pending output once per turn of the event loop, so that all frames a turn
// produced leave in as few writes as possible (fewer, larger writes are what makes a relay cheap). Connections with
// stream frames to send go first, those with only acknowledgments after them: a grpc-go server sends a PING (its
// bandwidth probe) with its answer, and acknowledging it first put one write, with the wake-up of that server, before
// the answer reached the client.

export interface Flushable {
  /** Its output holds frames of a stream (an answer, a request, a reset), not only connection-level ones. */
  readonly carriesStreamFrames: boolean;
  flush(): void;
}

const pending: Flushable[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  // A flush may schedule more output (e.g. a handler reacting to a write); those run in the next turn.
  const batch = pending.splice(0, pending.length);
  let later = 0;
  for (let i = 0; i < batch.length; i++) {
    const target = batch[i];
    if (target.carriesStreamFrames) target.flush();
    else batch[later++] = target;
  }
  for (let i = 0; i < later; i++) batch[i].flush();
}

/** Queue `target` for the next flush. The caller ensures it is queued at most once per turn. */
export function scheduleFlush(target: Flushable): void {
  pending.push(target);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}
