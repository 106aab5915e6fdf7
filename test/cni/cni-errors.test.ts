// Every error code the plugin can return is in cni/README.md's table, and only those; well-known ones keep their numbers.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CniErrorCode } from '../../cni/cni-errors.ts';

const readme = readFileSync(new URL('../../cni/README.md', import.meta.url), 'utf8');

function documentedCodes(): number[] {
  const section = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('## Agent protocol'));
  return [...section.matchAll(/^\| (\d+) \|/gm)].map((match) => Number(match[1]));
}

test('the README documents exactly the codes in cni-errors.ts', () => {
  const codes = Object.values(CniErrorCode).sort((a, b) => a - b);
  assert.deepEqual(documentedCodes(), codes);
});

test('well-known codes are the specification numbers; meshlite codes are 100 and up', () => {
  assert.deepEqual(
    { ...CniErrorCode },
    {
      INCOMPATIBLE_VERSION: 1,
      INVALID_ENVIRONMENT: 4,
      IO_FAILURE: 5,
      DECODE_FAILED: 6,
      INVALID_CONFIG: 7,
      PLUGIN_NOT_AVAILABLE: 50,
      AGENT_UNREACHABLE: 100,
      AGENT_TIMEOUT: 101,
      AGENT_FAILED: 102,
      AGENT_DISAGREES: 103,
      INTERNAL_FAILURE: 199,
    },
  );
});
