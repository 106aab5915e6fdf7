// The query parameters of a LIST or WATCH (metav1.ListOptions): parsing, the API server's validation of their combinations, and the object filter they select.

import type { ResourceInfo } from './kube-api-resources.ts';
import type { StoredObject } from './kube-api-store.ts';
import { badRequest, invalidListOptions } from './kube-api-status.ts';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, SelectorError } from './kube-selectors.ts';

export interface ListOptions {
  readonly watch: boolean;
  /** As sent: undefined (unset), "0" (any) or a number. */
  readonly resourceVersion: string | undefined;
  readonly resourceVersionMatch: string | undefined;
  /** undefined when unset or 0 (both mean "no limit"). */
  readonly limit: number | undefined;
  readonly continueToken: string | undefined;
  readonly labelSelector: string;
  readonly fieldSelector: string;
  readonly allowWatchBookmarks: boolean;
  readonly timeoutSeconds: number | undefined;
  readonly sendInitialEvents: boolean | undefined;
}

/** Go's strconv.ParseBool, which the API server's query decoder uses. */
function parseBool(name: string, raw: string | null): boolean | undefined {
  if (raw === null) return undefined;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(raw)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(raw)) return false;
  throw badRequest(`invalid boolean value for ${name}: ${JSON.stringify(raw)}`);
}

function parseInteger(name: string, raw: string | null): number | undefined {
  if (raw === null || raw === '') return undefined;
  if (!/^-?\d+$/.test(raw)) throw badRequest(`invalid integer value for ${name}: ${JSON.stringify(raw)}`);
  return Number(raw);
}

function nonEmpty(raw: string | null): string | undefined {
  return raw === null || raw === '' ? undefined : raw;
}

export function parseListOptions(params: URLSearchParams, legacyWatch: boolean): ListOptions {
  const limit = parseInteger('limit', params.get('limit'));
  return {
    watch: legacyWatch || (parseBool('watch', params.get('watch')) ?? false),
    resourceVersion: nonEmpty(params.get('resourceVersion')),
    resourceVersionMatch: nonEmpty(params.get('resourceVersionMatch')),
    limit: limit !== undefined && limit > 0 ? limit : undefined,
    continueToken: nonEmpty(params.get('continue')),
    labelSelector: params.get('labelSelector') ?? '',
    fieldSelector: params.get('fieldSelector') ?? '',
    allowWatchBookmarks: parseBool('allowWatchBookmarks', params.get('allowWatchBookmarks')) ?? false,
    timeoutSeconds: parseInteger('timeoutSeconds', params.get('timeoutSeconds')),
    sendInitialEvents: parseBool('sendInitialEvents', params.get('sendInitialEvents')),
  };
}

/** A resourceVersion the client sent, as the number it must be ("0" included). */
export function parseResourceVersion(raw: string): number {
  if (!/^\d+$/.test(raw)) throw badRequest(`invalid resource version: ${JSON.stringify(raw)}`);
  return Number(raw);
}

const NOT_SUPPORTED_LIST = 'Unsupported value: "%s": supported values: "Exact", "NotOlderThan", ""';
const NOT_SUPPORTED_WATCH = 'Unsupported value: "%s": supported values: "NotOlderThan"';

/** The combinations the API server rejects with 422 before it reads storage (metainternalversion validation). */
export function validateListOptions(options: ListOptions): void {
  const causes: Array<{ field: string; message: string }> = [];
  const match = options.resourceVersionMatch;
  const forbid = (field: string, message: string) => causes.push({ field, message: `Forbidden: ${message}` });
  if (options.watch) {
    if (options.sendInitialEvents !== undefined) {
      if (match !== 'NotOlderThan') forbid('resourceVersionMatch', 'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan');
      if (options.sendInitialEvents && !options.allowWatchBookmarks) {
        forbid('allowWatchBookmarks', 'allowWatchBookmarks must be set to true when sendInitialEvents is true');
      }
    }
    if (match !== undefined) {
      if (options.sendInitialEvents === undefined) forbid('resourceVersionMatch', 'resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided');
      if (match !== 'NotOlderThan') causes.push({ field: 'resourceVersionMatch', message: NOT_SUPPORTED_WATCH.replace('%s', match) });
      if (options.continueToken !== undefined) forbid('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided');
    }
  } else {
    if (match !== undefined) {
      if (options.resourceVersion === undefined) forbid('resourceVersionMatch', 'resourceVersionMatch is forbidden unless resourceVersion is provided');
      if (options.continueToken !== undefined) forbid('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided');
      if (match !== 'Exact' && match !== 'NotOlderThan') causes.push({ field: 'resourceVersionMatch', message: NOT_SUPPORTED_LIST.replace('%s', match) });
      if (match === 'Exact' && options.resourceVersion === '0') forbid('resourceVersionMatch', 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"');
    }
    if (options.sendInitialEvents !== undefined) forbid('sendInitialEvents', 'sendInitialEvents is forbidden for list');
  }
  if (causes.length > 0) throw invalidListOptions(causes);
}

/** Which objects a request selects: its namespace (from the path), its name (single-object watch), its selectors. */
export interface ObjectFilter {
  /** True when the request carries a label or field selector: remainingItemCount is then not computed. */
  readonly hasSelectors: boolean;
  readonly namespace: string | undefined;
  matches(object: StoredObject): boolean;
}

export function compileFilter(info: ResourceInfo, namespace: string | undefined, name: string | undefined, options: ListOptions): ObjectFilter {
  let labels: ReturnType<typeof parseLabelSelector>;
  let fields: ReturnType<typeof parseFieldSelector>;
  try {
    labels = parseLabelSelector(options.labelSelector);
    fields = parseFieldSelector(options.fieldSelector, info.fields);
  } catch (error) {
    if (error instanceof SelectorError) throw badRequest(error.message);
    throw error;
  }
  return {
    hasSelectors: labels.length > 0 || fields.length > 0,
    namespace,
    matches: (object) =>
      (namespace === undefined || object.namespace === namespace) &&
      (name === undefined || object.name === name) &&
      (labels.length === 0 || matchesLabels(labels, object.body.metadata.labels)) &&
      (fields.length === 0 || matchesFields(fields, object.body)),
  };
}
