// A recording command runner backed by a small model of the kernel's iptables tables and ipsets, for unit tests.

import type { CommandResult, CommandRunner } from '../../agent/intercept/command-runner.ts';

/** One table: chains in declaration order, each with its policy and rules (specs as iptables-save prints them). */
type Table = Map<string, { policy: string; rules: string[] }>;
type Tables = Map<string, Table>;

const BUILTIN: Record<string, string[]> = {
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};

interface FakeSet {
  type: string;
  family: string;
  /** The default timeout of a set created with timeout support; null without. */
  timeout: number | null;
  members: string[];
  /** A member's timeout as last added (never counting down); only in a set with timeout support. */
  timeouts: Map<string, number>;
}

export interface Call {
  /** `file arg…`, e.g. `iptables-nft-restore --noflush`. */
  command: string;
  /** What was written to stdin, if anything. */
  input?: string;
}

/**
 * Understands only what interception uses (`*-save`, `*-restore --noflush` with `:CHAIN`, -A, -I N, -D, -F, -X,
 * `ipset list -n`, `ipset save NAME`, `ipset restore` with create, add, del, flush, swap, destroy, and `timeout`) and
 * fails like the real tools do where it matters (deleting a rule that is not there, a rule naming a missing set,
 * destroying a set in use, a timeout on a set without timeout support). Timeouts never run out here.
 * A restore is all or nothing, as iptables-restore's commit is.
 */
export class FakeNetfilter {
  readonly calls: Call[] = [];
  /** Backend+family → tables; a backend absent from `installed` behaves as a command that cannot be started. */
  private readonly tables = new Map<string, Tables>();
  private readonly sets = new Map<string, FakeSet>();
  installed = new Set(['nft', 'legacy']);
  /** Return a result to make that call fail (checked before the model runs); null to run it normally. */
  failWhen: (call: Call) => CommandResult | null = () => null;

  readonly runner: CommandRunner = async (file, args, options) => {
    const call: Call = { command: [file, ...args].join(' ') };
    if (options?.input !== undefined) call.input = options.input;
    this.calls.push(call);
    const failure = this.failWhen(call);
    if (failure !== null) return failure;
    const tool = /^(ip6?tables)-(nft|legacy)-(save|restore)$/.exec(file);
    if (tool !== null) {
      if (!this.installed.has(tool[2])) throw Object.assign(new Error(`spawn ${file} ENOENT`), { code: 'ENOENT' });
      const key = `${tool[2]}/${tool[1] === 'iptables' ? 4 : 6}`;
      return tool[3] === 'save' ? ok(this.save(key)) : this.restore(key, options?.input ?? '');
    }
    if (file === 'ipset') return this.ipset(args, options?.input ?? '');
    throw new Error(`fake netfilter: unexpected command ${call.command}`);
  };

  /** Applies restore lines directly (test set-up and "someone else" changing things); throws on error. */
  iptables(backend: string, family: 4 | 6, script: string): void {
    const result = this.restore(`${backend}/${family}`, script);
    if (result.code !== 0) throw new Error(result.stderr);
  }

  ipsetRestore(script: string): void {
    const result = this.ipset(['restore'], script);
    if (result.code !== 0) throw new Error(result.stderr);
  }

  /** The dump as `*-save` prints it (without the comment lines). */
  save(key: string): string {
    const lines: string[] = [];
    for (const [name, table] of this.tables.get(key) ?? []) {
      lines.push(`*${name}`);
      for (const [chain, { policy }] of table) lines.push(`:${chain} ${policy} [0:0]`);
      for (const [chain, { rules }] of table) for (const rule of rules) lines.push(`-A ${chain} ${rule}`);
      lines.push('COMMIT');
    }
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }

  /** Members of a set in insertion order, or null when it does not exist. */
  members(name: string): string[] | null {
    return this.sets.get(name)?.members ?? null;
  }

  /** `member timeout` of each member in insertion order (a set with timeout support), or null. */
  timeouts(name: string): string[] | null {
    const set = this.sets.get(name);
    return set === undefined ? null : set.members.map((member) => `${member} ${set.timeouts.get(member) ?? '-'}`);
  }

  setNames(): string[] {
    return [...this.sets.keys()];
  }

  /** The commands run since the last call, then forgets them. */
  take(): Call[] {
    return this.calls.splice(0);
  }

  private restore(key: string, script: string): CommandResult {
    const current = this.tables.get(key) ?? new Map();
    const tables: Tables = new Map([...current].map(([name, table]) => [name, new Map([...table].map(([c, v]) => [c, { policy: v.policy, rules: [...v.rules] }]))]));
    let table: Table | null = null;
    for (const raw of script.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('*')) {
        const name = line.slice(1);
        if (!tables.has(name)) tables.set(name, new Map((BUILTIN[name] ?? []).map((c) => [c, { policy: 'ACCEPT', rules: [] }])));
        table = tables.get(name) ?? null;
        continue;
      }
      if (line === 'COMMIT') {
        table = null;
        continue;
      }
      if (table === null) return fail(`line outside a table: ${line}`);
      const error = this.restoreLine(table, line);
      if (error !== null) return fail(error);
    }
    this.tables.set(key, tables);
    return ok('');
  }

  private restoreLine(table: Table, line: string): string | null {
    if (line.startsWith(':')) {
      const [chain, policy] = line.slice(1).split(' ');
      const existing = table.get(chain);
      if (existing === undefined) table.set(chain, { policy, rules: [] });
      else existing.rules = [];
      return null;
    }
    const match = /^(-[AIDFX]) (\S+)(?: (.*))?$/.exec(line);
    if (match === null) return `cannot parse ${line}`;
    const [, op, chainName, rest = ''] = match;
    const chain = table.get(chainName);
    if (chain === undefined) return `${op} ${chainName}: No chain/target/match by that name`;
    if (op === '-F') chain.rules = [];
    if (op === '-X') {
      if (chain.rules.length > 0) return `-X ${chainName}: Directory not empty`;
      for (const other of table.values()) if (other.rules.some((rule) => rule.endsWith(`-j ${chainName}`))) return `-X ${chainName}: Too many links`;
      table.delete(chainName);
    }
    if (op === '-A' || op === '-I') {
      const [position, spec] = op === '-I' ? [Number(rest.split(' ')[0]) - 1, rest.slice(rest.indexOf(' ') + 1)] : [chain.rules.length, rest];
      const missingSet = /--match-set (\S+)/g;
      for (const found of spec.matchAll(missingSet)) if (!this.sets.has(found[1])) return `Set ${found[1]} doesn't exist.`;
      const target = /-j (\S+)/.exec(spec)?.[1];
      if (target?.startsWith('MESHLITE-') && !table.has(target)) return `Couldn't load target ${target}`;
      chain.rules.splice(position, 0, spec);
    }
    if (op === '-D') {
      const index = chain.rules.indexOf(rest);
      if (index < 0) return `-D ${chainName}: Bad rule (does a matching rule exist in that chain?)`;
      chain.rules.splice(index, 1);
    }
    return null;
  }

  private ipset(args: readonly string[], input: string): CommandResult {
    if (args[0] === 'list' && args[1] === '-n') return ok(this.sets.size === 0 ? '' : `${[...this.sets.keys()].join('\n')}\n`);
    if (args[0] === 'save') {
      const set = this.sets.get(args[1]);
      if (set === undefined) return fail('ipset v7.17: The set with the given name does not exist');
      const timeout = set.timeout === null ? '' : ` timeout ${set.timeout}`;
      const lines = [`create ${args[1]} ${set.type} family ${set.family} hashsize 1024 maxelem 65536${timeout} bucketsize 12 initval 0x1`];
      for (const member of set.members) lines.push(`add ${args[1]} ${member}${set.timeout === null ? '' : ` timeout ${set.timeouts.get(member)}`}`);
      return ok(`${lines.join('\n')}\n`);
    }
    if (args[0] !== 'restore') return fail(`unexpected ipset ${args.join(' ')}`);
    let lineNumber = 0;
    for (const raw of input.split('\n')) {
      lineNumber++;
      const words = raw.trim().split(/\s+/).filter((word) => word !== '-exist');
      if (words[0] === undefined || words[0] === '') continue;
      const set = this.sets.get(words[1]);
      const error = `ipset v7.17: Error in line ${lineNumber}`;
      const timeoutAt = words.indexOf('timeout', 2);
      const timeout = timeoutAt < 0 ? null : Number(words[timeoutAt + 1]);
      if (words[0] === 'create') {
        const familyAt = words.indexOf('family');
        if (set === undefined) this.sets.set(words[1], { type: words[2], family: words[familyAt + 1], timeout, members: [], timeouts: new Map() });
        else if (set.type !== words[2] || set.timeout !== timeout) return fail(`${error}: Set cannot be created: set with the same name already exists`);
      } else if (set === undefined) {
        return fail(`${error}: The set with the given name does not exist`);
      } else if (words[0] === 'add') {
        if (timeout !== null && set.timeout === null) return fail(`${error}: Timeout cannot be used: set was created without timeout support`);
        if (!set.members.includes(words[2])) set.members.push(words[2]);
        if (set.timeout !== null) set.timeouts.set(words[2], timeout ?? set.timeout);
      } else if (words[0] === 'del') {
        set.members = set.members.filter((member) => member !== words[2]);
        set.timeouts.delete(words[2]);
      } else if (words[0] === 'flush') {
        set.members = [];
        set.timeouts.clear();
      } else if (words[0] === 'swap') {
        const other = this.sets.get(words[2]);
        if (other === undefined || other.type !== set.type || other.family !== set.family) return fail(`${error}: The sets cannot be swapped`);
        this.sets.set(words[1], other);
        this.sets.set(words[2], set);
      } else if (words[0] === 'destroy') {
        if ([...this.tables.values()].some((tables) => this.referencesSet(tables, words[1]))) return fail(`${error}: Set cannot be destroyed: it is in use by a kernel component`);
        this.sets.delete(words[1]);
      }
    }
    return ok('');
  }

  private referencesSet(tables: Tables, name: string): boolean {
    for (const table of tables.values()) for (const chain of table.values()) if (chain.rules.some((rule) => rule.includes(`--match-set ${name} `))) return true;
    return false;
  }
}

function ok(stdout: string): CommandResult {
  return { code: 0, stdout, stderr: '' };
}

function fail(stderr: string): CommandResult {
  return { code: 1, stdout: '', stderr };
}
