// LIST and GET for the test Kubernetes API server: resourceVersion / resourceVersionMatch semantics, limit/continue pagination, the list body.

import { type ListOptions, type ObjectFilter, parseResourceVersion } from './kube-api-query.ts';
import type { ResourceInfo } from './kube-api-resources.ts';
import type { KubeApiStore, StoredObject } from './kube-api-store.ts';
import { badRequest, expired, objectNotFound, tooLargeResourceVersion } from './kube-api-status.ts';

// The messages of k8s.io/apiserver's etcd3 store.
const LIST_EXPIRED = 'The resourceVersion for the provided list is too old.';
const CONTINUE_EXPIRED =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without ' +
  'the continue parameter, or use the continue token in this response to retrieve the remainder of the results. ' +
  'Continuing with the provided token results in an inconsistent list - objects that were created, modified, or ' +
  'deleted between the time the first chunk was returned and now may show up in the list.';

export interface ReadContext {
  readonly store: KubeApiStore;
  readonly info: ResourceInfo;
  readonly filter: ObjectFilter;
  readonly options: ListOptions;
  /** How long a read "not older than" a future resourceVersion waits for it before 504 (a real server: 3 s). */
  readonly tooLargeResourceVersionWaitMs: number;
}

interface ContinueToken {
  readonly resourceVersion: number;
  /** The first key the next page may hold. */
  readonly start: string;
}

/** Opaque to clients, like the real one: base64 of the snapshot's resourceVersion and the next key. */
export function encodeContinue(token: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: token.resourceVersion, start: token.start })).toString('base64url');
}

export function decodeContinue(text: string): ContinueToken {
  try {
    const decoded = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as { v?: unknown; rv?: unknown; start?: unknown };
    if (decoded.v !== 'meta.k8s.io/v1') throw new Error('incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
    if (typeof decoded.rv !== 'number' || !Number.isInteger(decoded.rv) || decoded.rv <= 0) throw new Error('incorrect encoded start resourceVersion');
    if (typeof decoded.start !== 'string' || decoded.start === '') throw new Error('encoded start key is empty');
    return { resourceVersion: decoded.rv, start: decoded.start };
  } catch (error) {
    throw badRequest(`invalid continue token: ${(error as Error).message}`);
  }
}

/** Waits (bounded) until the store reaches `requested`; a real server waits up to 3 s, then answers 504 Timeout. */
export async function awaitResourceVersion(store: KubeApiStore, requested: number, waitMs: number): Promise<void> {
  if (requested <= store.resourceVersion) return;
  if (!(await store.waitForResourceVersion(requested, waitMs))) throw tooLargeResourceVersion(requested, store.resourceVersion);
}

/** The snapshot a LIST reads: its resourceVersion, where it starts, and whether `limit` applies. */
async function resolveSnapshot(context: ReadContext): Promise<{ revision: number; start: string; paged: boolean }> {
  const { store, info, options } = context;
  const paged = options.limit !== undefined;
  if (options.continueToken !== undefined) {
    // "0" is tolerated and ignored with a continue token; any other resourceVersion is a 400 (etcd3 store).
    if (options.resourceVersion !== undefined && options.resourceVersion !== '0') {
      throw badRequest('specifying resource version is not allowed when using continue');
    }
    const token = decodeContinue(options.continueToken);
    if (token.resourceVersion < store.compactedResourceVersion(info.name)) {
      // The 410 carries a token to go on from the latest snapshot, knowingly inconsistent.
      throw expired(CONTINUE_EXPIRED, encodeContinue({ resourceVersion: store.resourceVersion, start: token.start }));
    }
    return { revision: token.resourceVersion, start: token.start, paged };
  }
  if (options.resourceVersion === undefined) return { revision: store.resourceVersion, start: '', paged };
  // "Any": served from the watch cache, which has always ignored limit for resourceVersion=0 (one full page).
  if (options.resourceVersion === '0') return { revision: store.resourceVersion, start: '', paged: false };
  const requested = parseResourceVersion(options.resourceVersion);
  const match = options.resourceVersionMatch;
  // Without resourceVersionMatch, a limit turns "not older than" into "exact" (the legacy rule the docs table keeps).
  const exact = match === 'Exact' || (match === undefined && paged);
  await awaitResourceVersion(store, requested, context.tooLargeResourceVersionWaitMs);
  if (!exact) return { revision: store.resourceVersion, start: '', paged };
  if (requested < store.compactedResourceVersion(info.name)) throw expired(LIST_EXPIRED);
  return { revision: requested, start: '', paged };
}

/** First index whose key is at or after `start` (keys are sorted). */
function lowerBound(items: readonly StoredObject[], start: string): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (items[middle]!.key < start) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The JSON body of a LIST: `{kind: ServiceList, apiVersion, metadata: {resourceVersion, continue?, remainingItemCount?}, items}`. */
export async function listBody(context: ReadContext): Promise<string> {
  const { store, info, filter, options } = context;
  const { revision, start, paged } = await resolveSnapshot(context);
  const items = store.at(info.name, revision);
  if (items === undefined) throw expired(options.continueToken === undefined ? LIST_EXPIRED : CONTINUE_EXPIRED);
  const limit = paged ? options.limit! : Number.POSITIVE_INFINITY;
  const parts: string[] = [];
  let lastKey = '';
  let index = start === '' ? 0 : lowerBound(items, start);
  let more = false;
  for (; index < items.length; index++) {
    const item = items[index]!;
    if (!filter.matches(item)) continue;
    if (parts.length === limit) {
      more = true;
      break;
    }
    // Items are served without kind and apiVersion, as the real server serves them.
    parts.push(item.itemJson);
    lastKey = item.key;
  }
  let metadata = `{"resourceVersion":"${revision}"`;
  if (more) {
    metadata += `,"continue":"${encodeContinue({ resourceVersion: revision, start: `${lastKey}\u0000` })}"`;
    // The count is only known without selectors (etcd counts the keys left in the range, not the matches).
    if (!filter.hasSelectors) {
      let remaining = 0;
      for (; index < items.length; index++) if (filter.matches(items[index]!)) remaining++;
      metadata += `,"remainingItemCount":${remaining}`;
    }
  }
  return `{"kind":"${info.listKind}","apiVersion":"${info.apiVersion}","metadata":${metadata}},"items":[${parts.join(',')}]}`;
}

/** The JSON of one object; resourceVersion unset or "0" reads the latest, any other value reads "not older than" it. */
export async function getBody(
  store: KubeApiStore,
  info: ResourceInfo,
  namespace: string | undefined,
  name: string,
  resourceVersion: string | undefined,
  tooLargeResourceVersionWaitMs: number,
): Promise<string> {
  if (resourceVersion !== undefined && resourceVersion !== '0') {
    await awaitResourceVersion(store, parseResourceVersion(resourceVersion), tooLargeResourceVersionWaitMs);
  }
  const stored = store.get(info.name, namespace ?? '', name);
  if (stored === undefined) throw objectNotFound(info.name, info.group, name);
  return stored.json;
}
