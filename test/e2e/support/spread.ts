// The e2e tests' one measure of "balanced": every RPC answered, and each backend within ±25% of an equal share.

import assert from 'node:assert/strict';
import type { GrpcBackend } from '../../../lab/grpc-backend-pod.ts';
import type { GrpcClientSummary } from '../../../lab/grpc-client-run.ts';

/** The spread is reported through `t` when given, so a run's figures are in its output. */
export function assertSpread(summary: GrpcClientSummary, backends: GrpcBackend[], total: number, t?: { diagnostic(message: string): void }): void {
  assert.deepEqual(summary.failures, [], `${summary.target}: failures`);
  assert.equal(summary.ok, total);
  const counts = backends.map((b) => summary.byBackend[b.id] ?? 0);
  t?.diagnostic(`${summary.target}: ${counts.join('/')}`);
  const share = total / backends.length;
  for (const count of counts) assert.ok(Math.abs(count - share) <= share * 0.25, `${summary.target}: spread ${counts.join('/')}`);
}
