// Running one netfilter command: stdout on success, one coded error with the command and its stderr otherwise.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandRunner } from '../../agent/intercept/command-runner.ts';
import { InterceptCommandError, runChecked, runOptional } from '../../agent/intercept/netfilter-command.ts';

const answering =
  (code: number | null, stdout: string, stderr: string): CommandRunner =>
  async () => ({ code, stdout, stderr });

const missing: CommandRunner = async (file) => {
  throw Object.assign(new Error(`spawn ${file} ENOENT`), { code: 'ENOENT' });
};

describe('runChecked', () => {
  it('returns stdout and passes the input as stdin', async () => {
    const seen: unknown[] = [];
    const runner: CommandRunner = async (file, args, options) => {
      seen.push([file, args, options]);
      return { code: 0, stdout: 'out', stderr: '' };
    };
    assert.equal(await runChecked(runner, 'ipset', ['restore'], 'add x 1.2.3.4\n'), 'out');
    assert.equal(await runChecked(runner, 'ipset', ['list', '-n']), 'out');
    assert.deepEqual(seen, [['ipset', ['restore'], { input: 'add x 1.2.3.4\n' }], ['ipset', ['list', '-n'], undefined]]);
  });

  it('throws ML_INTERCEPT_COMMAND_FAILED naming the command, its exit and the first lines of stderr', async () => {
    const stderr = 'iptables-restore: line 3 failed\nsecond\nthird\nfourth\n';
    await assert.rejects(runChecked(answering(1, '', stderr), 'iptables-nft-restore', ['--noflush']), (error: unknown) => {
      assert.ok(error instanceof InterceptCommandError);
      assert.equal(error.code, 'ML_INTERCEPT_COMMAND_FAILED');
      assert.equal(error.message, 'iptables-nft-restore --noflush exited 1: iptables-restore: line 3 failed | second | third');
      assert.deepEqual([error.command, error.exitCode, error.stderr], ['iptables-nft-restore --noflush', 1, stderr]);
      return true;
    });
    await assert.rejects(runChecked(answering(null, '', ''), 'ipset', ['save', 'x']), { message: 'ipset save x did not run to completion' });
    await assert.rejects(runChecked(missing, 'ipset', ['list', '-n']), { code: 'ML_INTERCEPT_COMMAND_FAILED', message: 'ipset list -n did not run to completion: spawn ipset ENOENT' });
  });
});

describe('runOptional', () => {
  it('is null for a command that is missing or fails', async () => {
    assert.equal(await runOptional(answering(0, 'dump', ''), 'iptables-legacy-save', []), 'dump');
    assert.equal(await runOptional(answering(2, '', 'no'), 'iptables-legacy-save', []), null);
    assert.equal(await runOptional(missing, 'iptables-legacy-save', []), null);
  });
});
