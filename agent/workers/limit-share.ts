// The agent-wide client limits divided among the threads that serve the proxy port.

import type { Config } from '../config/agent-config.ts';

/**
 * --max-client-connections and --max-buffered-mib bound the whole agent (its file descriptors, its memory); each of
 * `threads` data planes enforces its own share, rounded up, so the agent never holds more than the limit plus one per
 * thread. The kernel spreads connections over the threads by a hash, not evenly, so one thread may refuse a
 * connection while another has room: the price of not sharing a counter across threads on every accept.
 */
export function limitShare(config: Config, threads: number): Config {
  if (threads <= 1) return config;
  return {
    ...config,
    maxClientConnections: Math.ceil(config.maxClientConnections / threads),
    maxBufferedBytes: Math.ceil(config.maxBufferedBytes / threads),
  };
}
