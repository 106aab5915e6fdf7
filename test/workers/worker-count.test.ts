// --workers auto: the CPU limit of cgroup v2's cpu.max, rounded up, within the usable cores and the cap.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { autoWorkerCount, cgroupCpuMax, cpuLimit, MAX_AUTO_WORKERS } from '../../agent/workers/worker-count.ts';

describe('autoWorkerCount', () => {
  it('rounds a fractional CPU limit up', () => {
    assert.equal(autoWorkerCount('150000 100000\n', 16), 2);
    assert.equal(autoWorkerCount('200000 100000', 16), 2);
    assert.equal(autoWorkerCount('50000 100000', 16), 1);
    assert.equal(autoWorkerCount('1000 100000', 16), 1);
  });

  it('is one thread without a limit (max, no file, an unreadable one), however many cores', () => {
    assert.equal(autoWorkerCount('max 100000', 4), 1);
    assert.equal(autoWorkerCount(null, 2), 1);
    assert.equal(autoWorkerCount('garbage', 3), 1);
    assert.equal(autoWorkerCount('0 100000', 3), 1);
    assert.equal(autoWorkerCount(null, 64), 1);
  });

  it('never exceeds the usable cores, the cap, nor goes below 1', () => {
    assert.equal(autoWorkerCount('800000 100000', 2), 2);
    assert.equal(autoWorkerCount('3200000 100000', 64), MAX_AUTO_WORKERS);
    assert.equal(autoWorkerCount('200000 100000', 0), 1);
  });

  it('reads quota over period', () => {
    assert.equal(cpuLimit('250000 100000'), 2.5);
    assert.equal(cpuLimit('max 100000'), null);
    assert.equal(cpuLimit(null), null);
  });
});

describe('cgroupCpuMax', () => {
  it("reads the file of the process's own cgroup, then the namespace root's", () => {
    const files: Record<string, string> = { '/proc/self/cgroup': '0::/kubepods/pod1/c1\n', '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': '150000 100000\n' };
    assert.equal(cgroupCpuMax((path) => files[path] ?? null), '150000 100000\n');
    const inContainer: Record<string, string> = { '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000\n' };
    assert.equal(cgroupCpuMax((path) => inContainer[path] ?? null), 'max 100000\n');
    assert.equal(cgroupCpuMax(() => null), null);
  });
});
