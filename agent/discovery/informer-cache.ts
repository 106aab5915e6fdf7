// An informer's objects by namespace and name, and what each LIST or WATCH event changes in them (adds, updates, deletes).

import type { RecordBase } from './kube-objects.ts';

export interface CacheChanges<R> {
  /** New objects and new versions of known ones (same resourceVersion: not a change), in the order given. */
  applied: R[];
  /** Objects gone: the cached (last known) version. */
  deleted: R[];
}

const keyOf = (record: RecordBase): string => `${record.metadata.namespace}/${record.metadata.name}`;

export class InformerCache<R extends RecordBase> {
  private readonly objects = new Map<string, R>();

  records(): R[] {
    return [...this.objects.values()];
  }

  get size(): number {
    return this.objects.size;
  }

  /** An ADDED or MODIFIED event: true when it is a change (a new object or another resourceVersion). */
  apply(record: R): boolean {
    const key = keyOf(record);
    const known = this.objects.get(key);
    if (known !== undefined && known.metadata.resourceVersion !== '' && known.metadata.resourceVersion === record.metadata.resourceVersion) return false;
    this.objects.set(key, record);
    return true;
  }

  /** A DELETED event: true when the object was known. */
  delete(record: R): boolean {
    return this.objects.delete(keyOf(record));
  }

  /** A complete LIST replaces everything: what it lacks was deleted meanwhile, and comes first in the changes. */
  replace(records: readonly R[]): CacheChanges<R> {
    const listed = new Set(records.map(keyOf));
    const deleted: R[] = [];
    for (const [key, known] of this.objects) {
      if (!listed.has(key)) {
        deleted.push(known);
        this.objects.delete(key);
      }
    }
    const applied = records.filter((record) => this.apply(record));
    return { applied, deleted };
  }
}
