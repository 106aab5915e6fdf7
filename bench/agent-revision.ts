// The agent's code a benchmark measured: the commit, and whether agent/ had uncommitted changes (a result file says
// which code its figures belong to).

import { execFileSync } from 'node:child_process';

export function agentRevision(): string {
  const git = (...args: string[]): string => execFileSync('git', ['-C', import.meta.dirname, ...args], { encoding: 'utf8' }).trim();
  try {
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', '../agent') === '' ? '' : ' + uncommitted changes in agent/'}`;
  } catch {
    return 'unknown';
  }
}
