// A run that is killed mid-way (the test SIGKILLs this process), so the next run's sweep has leftovers to remove.

import { startE2eRun } from '../../../lab/e2e-harness.ts';

if (import.meta.main) {
  const run = await startE2eRun();
  const node = await run.createNode();
  const pod = await run.createPod(node, { name: 'orphan' });
  const backend = await run.startGrpcBackend(pod);
  // The backend's process keeps the pod namespace alive after its name is gone: the sweep must end it first.
  process.stdout.write(`${JSON.stringify({ prefix: run.prefix, backendPid: backend.process.pid })}\n`);
  setInterval(() => {}, 60_000);
}
