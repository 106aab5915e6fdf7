// README's configuration table names every setting of the agent, with its environment variable and default, and
// nothing that is not a setting.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { SETTINGS } from '../../agent/config.ts';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The rows of the table under "| flag | environment | default | meaning |": flag → [environment, default]. */
function settingsTable(): Map<string, [string, string]> {
  const lines = README.split('\n');
  const start = lines.indexOf('| flag | environment | default | meaning |');
  assert.notEqual(start, -1, 'README has the settings table');
  const rows = new Map<string, [string, string]>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const [flag, env, defaultText] = line.split('|').slice(1, 4).map((cell) => cell.trim().replace(/^`|`$/g, ''));
    rows.set(flag, [env, defaultText]);
  }
  return rows;
}

it("README's settings table lists exactly the agent's settings, each with its variable and default", () => {
  const rows = settingsTable();
  assert.deepEqual([...rows.keys()].sort(), SETTINGS.map((s) => s.flag).sort());
  for (const setting of SETTINGS) {
    const [env, defaultText] = rows.get(setting.flag) ?? ['', ''];
    assert.equal(env, setting.env, `${setting.flag}: its variable`);
    assert.equal(defaultText, setting.defaultText === '' ? '(none)' : setting.defaultText, `${setting.flag}: its default`);
  }
});
