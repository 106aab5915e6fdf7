// The agent's admin server as the discovery benchmark reads it: Prometheus text from /metrics, /debug/endpoints JSON.

export interface HistogramReading {
  sum: number;
  count: number;
}

export interface DebugEndpoint {
  address: string;
  ready: boolean;
  eligible: boolean;
}

export interface DebugService {
  key: string;
  endpoints: DebugEndpoint[];
}

async function get(url: string, timeoutMs: number): Promise<Response> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return response;
}

export async function metricsText(admin: string, timeoutMs = 10_000): Promise<string> {
  return (await get(`http://${admin}/metrics`, timeoutMs)).text();
}

/** The value of an unlabelled sample (`name value`), or null when absent. */
export function sampleValue(text: string, name: string): number | null {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match === null ? null : Number(match[1]);
}

/** `_sum` and `_count` of an unlabelled histogram; throws when the agent does not export it. */
export function histogram(text: string, name: string): HistogramReading {
  const sum = sampleValue(text, `${name}_sum`);
  const count = sampleValue(text, `${name}_count`);
  if (sum === null || count === null) throw new Error(`/metrics has no histogram ${name}`);
  return { sum, count };
}

/** Every `name{labels} value` line of a labelled metric, e.g. meshlite_agent_errors_total by code. */
export function labelledSamples(text: string, name: string): Array<{ labels: string; value: number }> {
  const out: Array<{ labels: string; value: number }> = [];
  for (const match of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) out.push({ labels: match[1], value: Number(match[2]) });
  return out;
}

export async function debugServices(admin: string, timeoutMs = 10_000): Promise<DebugService[]> {
  const body = (await (await get(`http://${admin}/debug/endpoints`, timeoutMs)).json()) as { services: DebugService[] };
  return body.services;
}
