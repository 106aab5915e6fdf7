// The probe socket's own thread: /healthz and /readyz for this agent's exec probes, served with node:http apart from
// the main thread, so that they answer from the process's first moments, while the main thread still loads the
// agent and the Kubernetes client (about a second of module evaluation that blocks its event loop).
//
// The main thread sends a heartbeat with its readiness answer every HEARTBEAT_MS. /healthz fails only when the main
// thread has been silent for longer than the stall limit: then its event loop is stuck and a restart is the cure.
// /readyz answers what the main thread last said (not ready until it said otherwise).

import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { ProbeThreadMessage, ProbeWorkerData, ProbeWorkerReport } from './probe-thread.ts';

const { socketPath, stallLimitMs } = workerData as ProbeWorkerData;
const port = parentPort;
if (port === null) throw new Error('probe-worker.ts runs as a worker thread only');

let lastHeartbeatMs = performance.now();
let readiness: unknown = { ready: false, reason: 'starting: the agent is loading', phase: 'discovery' };
port.on('message', (message: ProbeThreadMessage) => {
  lastHeartbeatMs = performance.now();
  if (message.type === 'readiness') readiness = message.answer;
});

function answer(status: number, type: string, body: string) {
  return { status, headers: { 'content-type': type, 'cache-control': 'no-store' }, body };
}

function respond(path: string | undefined) {
  if (path === '/healthz') {
    const silentMs = performance.now() - lastHeartbeatMs;
    if (silentMs > stallLimitMs) return answer(503, 'text/plain; charset=utf-8', `main thread unresponsive for ${Math.round(silentMs)} ms\n`);
    return answer(200, 'text/plain; charset=utf-8', 'ok\n');
  }
  if (path === '/readyz') {
    const ready = (readiness as { ready?: unknown }).ready === true;
    return answer(ready ? 200 : 503, 'application/json; charset=utf-8', JSON.stringify(readiness));
  }
  return answer(404, 'text/plain; charset=utf-8', 'not found\n');
}

const server = createServer((request, response) => {
  const { status, headers, body } = respond(request.url?.split('?')[0]);
  response.writeHead(status, headers).end(request.method === 'HEAD' ? undefined : body);
});
// The socket is the pod's own (its emptyDir): a file left there was left by this container's previous run.
const report = (message: ProbeWorkerReport): void => port.postMessage(message);
try {
  rmSync(socketPath, { force: true });
  mkdirSync(dirname(socketPath), { recursive: true });
  server.once('error', (error) => report({ type: 'failed', message: error.message }));
  server.listen(socketPath, () => report({ type: 'listening' }));
} catch (error) {
  report({ type: 'failed', message: (error as Error).message });
}
port.on('close', () => server.close());
