// What the demo prints: the spread table (counts, shares, rates, bars), redrawn in place on a terminal.

export interface BackendRow {
  id: string;
  address: string;
  /** RPCs it answered since the start. */
  count: number;
  /** RPCs it answered per second, over the last interval. */
  perSecond: number;
}

export interface Frame {
  rows: readonly BackendRow[];
  /** Successful and failed RPCs since the start, and all RPCs per second over the last interval. */
  ok: number;
  failed: number;
  perSecond: number;
  lastError: string;
}

const BAR_WIDTH = 20;

/** The table: one line per backend, then the totals and, when something failed, the last failure. */
export function renderTable(frame: Frame): string[] {
  const header = `  ${pad('backend', 10)}  ${pad('address', 21)}  ${right('requests', 9)}  ${right('share', 6)}  ${right('req/s', 7)}`;
  const lines = [header];
  const total = frame.ok;
  for (const row of frame.rows) {
    const share = total > 0 ? row.count / total : 0;
    const bar = '█'.repeat(Math.round(share * BAR_WIDTH));
    lines.push(
      `  ${pad(row.id, 10)}  ${pad(row.address, 21)}  ${right(row.count, 9)}  ${right(percent(share), 6)}  ` +
        `${right(Math.round(row.perSecond), 7)}  ${bar}`,
    );
  }
  lines.push(
    `  ${pad('total', 10)}  ${pad('', 21)}  ${right(total, 9)}  ${right(total > 0 ? '100%' : '-', 6)}  ` +
      `${right(Math.round(frame.perSecond), 7)}  ${frame.failed} failed`,
  );
  if (frame.lastError !== '') lines.push(`  last failure: ${frame.lastError.slice(0, 100)}`);
  return lines;
}

/** A count and its noun, singular or plural: "1 client connection", "3 client connections". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Prints blocks of lines: on a terminal each block replaces the previous one, elsewhere they follow each other. */
export class LiveBlock {
  private readonly out: NodeJS.WriteStream;
  private readonly inPlace: boolean;
  private shown = 0;

  constructor(out: NodeJS.WriteStream) {
    this.out = out;
    this.inPlace = out.isTTY === true;
  }

  show(lines: readonly string[]): void {
    // CSI n F: to the start of the line n rows up (also past a "^C" the terminal echoed); CSI J: clear below.
    const back = this.inPlace && this.shown > 0 ? `\x1b[${this.shown}F\x1b[J` : '';
    const gap = !this.inPlace && this.shown > 0 ? '\n' : '';
    this.out.write(`${back}${gap}${lines.join('\n')}\n`);
    // A line wider than the terminal takes several rows.
    const columns = this.out.columns > 0 ? this.out.columns : 80;
    this.shown = lines.reduce((rows, line) => rows + Math.max(1, Math.ceil(line.length / columns)), 0);
  }
}

export function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

function pad(text: string, width: number): string {
  return text.padEnd(width);
}

function right(value: string | number, width: number): string {
  return String(value).padStart(width);
}
