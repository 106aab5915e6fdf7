// Records the events of one client-node Watch, so tests can assert the exact sequence an API server sent.

import { type KubeConfig, Watch } from '@kubernetes/client-node';

export interface RecordedEvent {
  readonly type: string;
  readonly object: { kind?: string; apiVersion?: string; metadata?: Record<string, unknown>; [field: string]: unknown };
}

export interface WatchRecording {
  readonly events: RecordedEvent[];
  /** Settles with what client-node's `done` callback got: null for a clean end, else the error. */
  readonly done: Promise<unknown>;
  readonly finished: () => boolean;
  /** `TYPE name rv` per event: short enough to assert a whole sequence at once. */
  readonly summary: () => string[];
  readonly abort: () => void;
}

export async function recordWatch(kubeConfig: KubeConfig, path: string, query: Record<string, string | number | boolean> = {}): Promise<WatchRecording> {
  const events: RecordedEvent[] = [];
  let finished = false;
  let settle: (value: unknown) => void = () => {};
  const done = new Promise<unknown>((resolve) => {
    settle = resolve;
  });
  const controller = await new Watch(kubeConfig).watch(
    path,
    query,
    (type, object) => events.push({ type, object }),
    (error) => {
      finished = true;
      settle(error);
    },
  );
  return {
    events,
    done,
    finished: () => finished,
    summary: () => events.map(({ type, object }) => `${type} ${String(object.metadata?.name ?? '-')} ${String(object.metadata?.resourceVersion ?? '-')}`),
    abort: () => controller.abort(),
  };
}
