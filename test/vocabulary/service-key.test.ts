// Service keys: `namespace/name:port`, and back.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseServiceKey, serviceKey } from '../../agent/vocabulary/service-key.ts';

test('serviceKey formats namespace/name:port', () => {
  assert.equal(serviceKey('default', 'greeter', 50051), 'default/greeter:50051');
});

test('parseServiceKey inverts serviceKey', () => {
  assert.deepEqual(parseServiceKey(serviceKey('team-a', 'orders', 9090)), { namespace: 'team-a', name: 'orders', port: 9090 });
});

test('parseServiceKey rejects what is not a key', () => {
  for (const bad of ['', 'greeter:50051', '/greeter:50051', 'default/:50051', 'default/greeter', 'default/greeter:', 'a/b:0', 'a/b:65536', 'a/b:x1', 'a/b/c:1', 'a/b:c:1']) {
    assert.equal(parseServiceKey(bad), null, bad);
  }
});
