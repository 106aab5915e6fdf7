// Pod and Namespace records as the projection makes them, for the opt-in index tests: defaults for everything unsaid.

import type { InjectSetting, NamespaceRecord, PodRecord } from '../../agent/discovery/kube-objects.ts';
import type { OptInChange } from '../../agent/discovery/opt-in-index.ts';

export const NODE = 'node-1';

export interface PodFields {
  namespace?: string;
  ips?: string[];
  inject?: InjectSetting | null;
  nodeName?: string;
  hostNetwork?: boolean;
  phase?: string;
  invalid?: string | null;
}

let version = 0;

export function pod(name: string, fields: PodFields = {}): PodRecord {
  return {
    kind: 'Pod',
    metadata: { name, namespace: fields.namespace ?? 'app', resourceVersion: String(++version) },
    invalid: fields.invalid ?? null,
    nodeName: fields.nodeName ?? NODE,
    ips: fields.ips ?? [],
    hostNetwork: fields.hostNetwork ?? false,
    phase: fields.phase ?? 'Running',
    inject: fields.inject ?? null,
  };
}

export function ns(name: string, inject: InjectSetting | null, invalid: string | null = null): NamespaceRecord {
  return { kind: 'Namespace', metadata: { name, namespace: '', resourceVersion: String(++version) }, invalid, inject };
}

/** `+ ip ns/name` for an enroll, `- ip ns/name` for an unenroll. */
export function show(change: OptInChange): string {
  return `${change.type === 'enroll' ? '+' : '-'} ${change.ip} ${change.pod.namespace}/${change.pod.name}`;
}
