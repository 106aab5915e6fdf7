// What the main thread and a data-plane worker thread say to each other over the worker's port: plain objects only
// (structured clone), one union per direction.

import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../config/agent-config.ts';
import type { PodRef } from '../discovery/opt-in-index.ts';
import type { RegistryUpdate } from '../registry/endpoint.ts';
import type { HostPort } from '../vocabulary/host-port.ts';
import type { ThreadView } from './thread-views.ts';

export interface DataPlaneWorkerData {
  /** The settings, with the client limits already divided among the threads (workers/limit-share.ts). */
  config: Config;
  /** 1..N-1: the main thread is worker 0. */
  id: number;
}

export type ToWorker =
  /** One batch of the main registry's updates; the first ones are the registry's current state as resets. */
  | { type: 'registry'; updates: RegistryUpdate[] }
  /** This node's opted-in pods changed (transparent mode's source check). */
  | { type: 'opt-in'; changes: Array<{ type: 'enroll' | 'unenroll'; ip: string; pod: PodRef }> }
  /** Bind the proxy port (SO_REUSEPORT) at these addresses: the main thread's bound port, never port 0. */
  | { type: 'listen'; addresses: HostPort[] }
  | { type: 'scrape'; id: number }
  /** The drain's steps, as AgentShutdown runs them on the main thread's listener. */
  | { type: 'stop-accepting' }
  | { type: 'finish-connections' }
  | { type: 'destroy-all' }
  /** After the drain: close pools and balancers, then end the thread. */
  | { type: 'stop' };

export type FromWorker =
  | { type: 'listening'; addresses: string[] }
  | { type: 'listen-failed'; message: string }
  /** Its listening sockets are closed: nothing new reaches this thread. */
  | { type: 'stopped-accepting' }
  | { type: 'metrics'; id: number; metrics: Array<MetricObjectWithValues<MetricValue<string>>>; accepted: number }
  /** Its balancers, request counts and endpoints in backoff, every VIEW_INTERVAL_MS (/debug/endpoints, dashboard). */
  | { type: 'view'; view: ThreadView }
  /** One of its log lines at info and above, for the dashboard's recent events (stdout has it already). */
  | { type: 'log-line'; line: string }
  /** Client connections still open; sent once the drain began, at each close. */
  | { type: 'open-connections'; open: number };
