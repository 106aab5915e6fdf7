// The agent's /metrics as Prometheus itself reads it: `promtool check metrics` (Debian's prometheus package) parses
// the whole exposition and lints it; meshlite's own families pass the lint clean.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { populatedMetrics } from '../support/populated-metrics.ts';

const PROMTOOL = '/usr/bin/promtool';
const skip = existsSync(PROMTOOL) ? false : `no ${PROMTOOL} (Debian's prometheus package; scripts/setup.sh installs it)`;

function promtool(exposition: string): { code: number | null; output: string } {
  const run = spawnSync(PROMTOOL, ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  return { code: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

/** Only the families whose names start with `prefix`: their HELP, TYPE and sample lines. */
function familiesStartingWith(exposition: string, prefix: string): string {
  return `${exposition
    .split('\n')
    .filter((line) => line.replace(/^# (HELP|TYPE) /, '').startsWith(prefix))
    .join('\n')}\n`;
}

describe('the exposition, read by promtool', { skip }, () => {
  it("parses whole; its only lint findings are prom-client's own Node.js gauges named _total", async () => {
    const { code, output } = promtool(await populatedMetrics().registry.metrics());
    const findings = output === '' ? [] : output.split('\n');
    assert.ok(code === 0 || code === 3, `promtool exit ${code} (1 is a parse error): ${output}`);
    for (const finding of findings) assert.match(finding, /^nodejs_\w+ /, `a finding about something of meshlite's: ${finding}`);
  });

  it("meshlite's families (1000 services of 3 endpoints) pass the lint clean", async () => {
    const exposition = familiesStartingWith(await populatedMetrics({ services: 1000 }).registry.metrics(), 'meshlite_');
    assert.ok(exposition.split('\n').length > 100_000, 'the whole fleet is there');
    assert.deepEqual(promtool(exposition), { code: 0, output: '' });
  });

  it('a broken exposition is refused (so the check can fail)', () => {
    assert.notEqual(promtool('# TYPE meshlite_x counter\nmeshlite_x{a="1" 2\n').code, 0);
  });
});
