// The error table: docs/errors.md lists exactly its codes with their statuses, and no entry uses an application's status.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  APPLICATION_RESERVED_STATUSES,
  ERROR_CODES,
  ERRORS,
  type ErrorCode,
  GrpcStatus,
  grpcStatusOf,
  MeshliteError,
} from '../../agent/vocabulary/errors.ts';

const docsPath = new URL('../../docs/errors.md', import.meta.url);

interface DocRow {
  code: string;
  status: string;
}

/** Rows of the form "| `ML_X` | 14 UNAVAILABLE | meaning |"; any other line mentioning ML_ is reported too. */
function documentedRows(): DocRow[] {
  const rows: DocRow[] = [];
  for (const line of readFileSync(docsPath, 'utf8').split('\n')) {
    const match = /^\| `(ML_[A-Z0-9_]+)` \| ([^|]+) \|/.exec(line);
    if (match) rows.push({ code: match[1], status: match[2].trim() });
  }
  return rows;
}

function statusName(status: number): string {
  const entry = Object.entries(GrpcStatus).find(([, value]) => value === status);
  assert.ok(entry, `status ${status} has a name`);
  return entry[0];
}

describe('errors table', () => {
  it('docs/errors.md lists every code of the table, once', () => {
    const documented = documentedRows().map((row) => row.code);
    for (const code of ERROR_CODES) {
      assert.equal(documented.filter((c) => c === code).length, 1, `docs/errors.md lists ${code} exactly once`);
    }
  });

  it('docs/errors.md lists no code that is not in the table', () => {
    for (const row of documentedRows()) {
      assert.ok(Object.hasOwn(ERRORS, row.code), `${row.code} is documented but not in agent/vocabulary/errors.ts`);
    }
    // A code mentioned anywhere in the page (prose included) must exist too.
    const mentioned = readFileSync(docsPath, 'utf8').match(/ML_[A-Z0-9_]+/g) ?? [];
    for (const code of mentioned) assert.ok(Object.hasOwn(ERRORS, code), `${code} is mentioned but not in the table`);
  });

  it('docs/errors.md gives each code the status of the table', () => {
    for (const row of documentedRows()) {
      const status = grpcStatusOf(row.code as ErrorCode);
      const expected = status === null ? '—' : `${status} ${statusName(status)}`;
      assert.equal(row.status, expected, `status column of ${row.code}`);
    }
  });

  it('no code maps to a status that gRPC reserves for applications', () => {
    for (const code of ERROR_CODES) {
      const status = grpcStatusOf(code);
      if (status === null) continue;
      assert.ok(!APPLICATION_RESERVED_STATUSES.includes(status), `${code} uses ${statusName(status)}`);
      assert.notEqual(status, GrpcStatus.OK, `${code} is an error, not OK`);
    }
  });

  it('maps the request errors the relay produces to the statuses docs/errors.md lists', () => {
    assert.equal(grpcStatusOf('ML_NO_ENDPOINT'), GrpcStatus.UNAVAILABLE);
    assert.equal(grpcStatusOf('ML_UNKNOWN_TARGET'), GrpcStatus.UNAVAILABLE);
    assert.equal(grpcStatusOf('ML_CONNECT_FAILED'), GrpcStatus.UNAVAILABLE);
    assert.equal(grpcStatusOf('ML_DEADLINE'), GrpcStatus.DEADLINE_EXCEEDED);
    assert.equal(grpcStatusOf('ML_CLIENT_CANCELLED'), GrpcStatus.CANCELLED);
    assert.equal(grpcStatusOf('ML_BAD_TIMEOUT'), GrpcStatus.INTERNAL);
    assert.equal(grpcStatusOf('ML_CONFIG_INVALID'), null);
    assert.equal(grpcStatusOf('ML_STATIC_FILE_RELOAD_FAILED'), null);
  });

  it('numbers the statuses as the gRPC specification does', () => {
    assert.deepEqual(Object.values(GrpcStatus), Array.from({ length: 17 }, (_, i) => i));
    assert.equal(GrpcStatus.UNAVAILABLE, 14);
    assert.equal(GrpcStatus.RESOURCE_EXHAUSTED, 8);
    assert.equal(GrpcStatus.INTERNAL, 13);
  });

  it('every description is one line', () => {
    for (const code of ERROR_CODES) {
      const { description } = ERRORS[code];
      assert.ok(description.length > 10 && !description.includes('\n'), `${code} description`);
    }
  });

  it('MeshliteError carries its code', () => {
    const error = new MeshliteError('ML_INTERNAL', 'boom');
    assert.ok(error instanceof Error);
    assert.equal(error.code, 'ML_INTERNAL');
    assert.equal(error.message, 'boom');
  });
});
