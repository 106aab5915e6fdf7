// The dashboard's heartbeat: while someone watches, once a second it reads the metrics and the balancers, makes the
// frame of that second (dashboard-frame.ts) with the agent's own state, and hands it to every watcher. Nobody
// watching, nothing runs: the agent pays for the dashboard only while it is open.

import type { Clock } from '../vocabulary/clock.ts';
import type { ServiceReading } from '../telemetry/metrics.ts';
import type { RecentEvent } from '../telemetry/recent-lines.ts';
import { type BalancedService, type InterceptedPod, type ServiceFrame, serviceFrames } from './dashboard-frame.ts';

export const DASHBOARD_INTERVAL_MS = 1000;

/** What the header shows of the agent itself; asked at each frame. */
export interface AgentState {
  /** /readyz's answer. */
  readiness: unknown;
  version: string;
  node: string;
  rssBytes: number;
  /** The event loop's delay over the last interval (p99), ms. */
  eventLoopDelayMs: number;
  /** The last endpoint change's trip from its trigger time to the new picker, and how long ago; null before one. */
  changeToPicker?: { ms: number; agoMs: number } | null;
  /** Transparent mode's rules and sets; null in explicit mode (or before they are applied). */
  interception?: { state: string; reason: string | null; sets: Record<string, number>; lastPass: { kind: string; agoMs: number } | null } | null;
}

export interface DashboardFrame {
  /** Wall clock (epoch ms) of the reading. */
  atMs: number;
  /** The seconds the rates are over: the time since the previous reading (or the first second). */
  intervalS: number;
  agent: AgentState;
  services: ServiceFrame[];
  /** The pods this agent intercepts on its node. */
  pods: InterceptedPod[];
  /** The agent's recent notable events (its log lines at info and above), newest first. */
  events: RecentEvent[];
}

export interface DashboardSources {
  clock: Clock;
  wallClockMs: () => number;
  readings: () => ServiceReading[];
  services: () => readonly BalancedService[];
  agent: () => AgentState;
  pods?: () => InterceptedPod[];
  events?: () => RecentEvent[];
}

export type FrameListener = (frame: DashboardFrame) => void;

export class DashboardSampler {
  private readonly sources: DashboardSources;
  private readonly listeners = new Set<FrameListener>();
  private timer: unknown = null;
  private previous: { readings: ServiceReading[]; atMs: number } | null = null;
  /** The last frame made, for a watcher that just arrived and for one-off reads. */
  latest: DashboardFrame | null = null;

  constructor(sources: DashboardSources) {
    this.sources = sources;
  }

  get watchers(): number {
    return this.listeners.size;
  }

  /** Starts the heartbeat with the first watcher, and a frame at once; returns the way to stop watching. */
  watch(listener: FrameListener): () => void {
    this.listeners.add(listener);
    if (this.timer === null) {
      this.sample();
      this.schedule();
    } else if (this.latest !== null) {
      listener(this.latest);
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** A frame made now (when nobody watches, its rates are since the last frame anyone saw, or the start). */
  sample(): DashboardFrame {
    const { clock, readings, services, agent, wallClockMs } = this.sources;
    const now = clock.now();
    const current = readings();
    const intervalS = this.previous === null ? 1 : Math.max((now - this.previous.atMs) / 1000, 0.001);
    const frame: DashboardFrame = {
      atMs: wallClockMs(),
      intervalS,
      agent: agent(),
      services: serviceFrames(this.previous?.readings ?? null, current, services(), intervalS),
      pods: this.sources.pods?.() ?? [],
      events: this.sources.events?.() ?? [],
    };
    this.previous = { readings: current, atMs: now };
    this.latest = frame;
    for (const listener of this.listeners) listener(frame);
    return frame;
  }

  stop(): void {
    if (this.timer !== null) this.sources.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    this.timer = this.sources.clock.setTimeout(() => {
      this.timer = null;
      if (this.listeners.size === 0) return;
      this.sample();
      this.schedule();
    }, DASHBOARD_INTERVAL_MS);
  }
}
