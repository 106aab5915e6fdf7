// A stand-in for agent/data-plane-worker.ts that answers the main thread on a script: logs a line and listens at once, stops
// accepting 50 ms after it is told (so the fleet's wait is observable), drains 2 connections, and dies (exit 3)
// when scraped, as a thread that crashes would.

import { parentPort } from 'node:worker_threads';
import type { FromWorker, ToWorker } from '../../../agent/workers/worker-messages.ts';

const port = parentPort!;
const send = (message: FromWorker): void => port.postMessage(message);

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'listen':
      send({ type: 'log-line', line: '{"level":"warn","msg":"scripted","code":"ML_ENDPOINT_EJECTED"}' });
      send({ type: 'listening', addresses: message.addresses.map(({ host, port }) => `${host}:${port}`) });
      return;
    case 'stop-accepting':
      setTimeout(() => send({ type: 'stopped-accepting' }), 50);
      return;
    case 'finish-connections':
      send({ type: 'open-connections', open: 2 });
      setTimeout(() => send({ type: 'open-connections', open: 0 }), 20);
      return;
    case 'scrape':
      process.exit(3);
      return;
    case 'stop':
      process.exit(0);
      return;
    default:
      return;
  }
});
