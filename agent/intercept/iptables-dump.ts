// Reads `iptables-save` text into tables, chains and rules, and compares rules the way the kernel means them, not as spelled.

export interface SavedRule {
  readonly chain: string;
  /** The rule as printed after `-A CHAIN `: valid input for `-D CHAIN spec` in a restore script. */
  readonly spec: string;
}

export interface SavedTable {
  /** Chain → policy (`ACCEPT`, … for built-in chains, `-` for user chains), in the order declared. */
  readonly chains: Map<string, string>;
  /** Every rule of the table, in order; a chain's rules keep their relative order (their positions). */
  readonly rules: SavedRule[];
}

export type IptablesDump = ReadonlyMap<string, SavedTable>;

/**
 * Lines it does not know (a newer iptables' additions) are skipped rather than failing: the dump is read to find
 * meshlite's own rules and kube-proxy's chains, and one odd line elsewhere must not stop the agent from doing that.
 */
export function parseIptablesSave(text: string): IptablesDump {
  const tables = new Map<string, SavedTable>();
  let table: SavedTable | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      const name = line.slice(1);
      table = tables.get(name) ?? { chains: new Map(), rules: [] };
      tables.set(name, table);
    } else if (line === 'COMMIT') {
      table = null;
    } else if (table !== null && line.startsWith(':')) {
      const [chain, policy = '-'] = line.slice(1).split(/\s+/);
      table.chains.set(chain, policy);
    } else if (table !== null && line.startsWith('-A ')) {
      const rest = line.slice(3);
      const space = rest.indexOf(' ');
      const chain = space < 0 ? rest : rest.slice(0, space);
      table.rules.push({ chain, spec: space < 0 ? '' : rest.slice(space + 1) });
    }
  }
  return tables;
}

/** The specs of one chain's rules, in order; empty when the table or chain does not exist. */
export function chainRules(dump: IptablesDump, table: string, chain: string): string[] {
  return (dump.get(table)?.rules ?? []).filter((rule) => rule.chain === chain).map((rule) => rule.spec);
}

export function hasChain(dump: IptablesDump, table: string, chain: string): boolean {
  return dump.get(table)?.chains.has(chain) ?? false;
}

/** Rules in every table: backend detection's tie-breaker. */
export function ruleCount(dump: IptablesDump): number {
  let count = 0;
  for (const table of dump.values()) count += table.rules.length;
  return count;
}

/**
 * The words of a rule with iptables' optional spellings removed: quotes (`--comment "x"` and `--comment x` are one
 * rule; older versions quote always) and a host prefix length (`-d 10.0.0.1/32` is `-d 10.0.0.1`; versions differ
 * in printing it). Anything else differing is a different rule.
 */
export function ruleWords(spec: string): string[] {
  const words = splitWords(spec);
  for (let i = 1; i < words.length; i++) {
    if (words[i - 1] === '-d' || words[i - 1] === '-s' || words[i - 1] === '--destination' || words[i - 1] === '--source') {
      words[i] = words[i].replace(/\/(32|128)$/, '');
    }
  }
  return words;
}

export function sameRule(a: string, b: string): boolean {
  const left = ruleWords(a);
  const right = ruleWords(b);
  return left.length === right.length && left.every((word, i) => word === right[i]);
}

/** The chain a rule jumps or goes to (`-j X`, `-g X`), or null. */
export function ruleTarget(spec: string): string | null {
  const words = splitWords(spec);
  for (let i = 0; i < words.length - 1; i++) {
    if (words[i] === '-j' || words[i] === '-g' || words[i] === '--jump' || words[i] === '--goto') return words[i + 1];
  }
  return null;
}

/** Whether the rule carries `-m comment --comment <comment>` (quoted or not). */
export function hasComment(spec: string, comment: string): boolean {
  const words = splitWords(spec);
  for (let i = 0; i < words.length - 1; i++) if (words[i] === '--comment' && words[i + 1] === comment) return true;
  return false;
}

/** Splits on spaces outside double quotes and removes the quotes (iptables-save escapes a quote inside as \"). */
function splitWords(spec: string): string[] {
  const words: string[] = [];
  let word = '';
  let quoted = false;
  let started = false;
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i];
    if (c === '\\' && quoted && i + 1 < spec.length) {
      word += spec[++i];
    } else if (c === '"') {
      quoted = !quoted;
      started = true;
    } else if (c === ' ' && !quoted) {
      if (started) words.push(word);
      word = '';
      started = false;
    } else {
      word += c;
      started = true;
    }
  }
  if (started) words.push(word);
  return words;
}
