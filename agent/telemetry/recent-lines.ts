// The agent's last log lines at info and above, kept for the dashboard's list of recent events: the agent logs events,
// not requests (one line per notable event), so its recent lines are its recent events.

export interface RecentEvent {
  time: string;
  level: string;
  component: string | null;
  msg: string;
  code: string | null;
}

/** A pino destination that keeps the last `capacity` lines as written (parsed only when asked). */
export class RecentLines {
  private readonly capacity: number;
  private readonly lines: string[] = [];

  constructor(capacity = 50) {
    this.capacity = capacity;
  }

  write(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.shift();
  }

  /** Newest first. A line that is not a JSON object is left out. */
  events(): RecentEvent[] {
    const events: RecentEvent[] = [];
    for (let i = this.lines.length - 1; i >= 0; i--) {
      try {
        const entry = JSON.parse(this.lines[i]) as Record<string, unknown>;
        const text = (key: string): string | null => (typeof entry[key] === 'string' ? (entry[key] as string) : null);
        events.push({ time: text('time') ?? '', level: text('level') ?? '', component: text('component'), msg: text('msg') ?? '', code: text('code') });
      } catch {
        // Not a log line of ours.
      }
    }
    return events;
  }
}
