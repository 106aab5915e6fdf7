// The explicit-mode authority parser: accepted service names, suffixes, ports, DNS labels, and its bounded cache.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthorityParser } from '../../agent/proxy/authority.ts';

/** The parser's private cache, read (and in one test seeded) to see what it remembers. */
function cacheOf(parser: AuthorityParser): Map<string, string | null> {
  return (parser as unknown as { cache: Map<string, string | null> }).cache;
}

const CACHE_LIMIT = 4096;

describe('AuthorityParser.serviceKey: names', () => {
  const parser = new AuthorityParser('cluster.local');

  it('reads name.namespace:port as namespace/name:port', () => {
    assert.equal(parser.serviceKey('echo.default:50051'), 'default/echo:50051');
  });

  it('strips .svc and .svc.<cluster domain>, with or without the root dot', () => {
    assert.equal(parser.serviceKey('echo.default.svc:50051'), 'default/echo:50051');
    assert.equal(parser.serviceKey('echo.default.svc.cluster.local:50051'), 'default/echo:50051');
    assert.equal(parser.serviceKey('echo.default.svc.cluster.local.:50051'), 'default/echo:50051');
    assert.equal(parser.serviceKey('echo.default.svc.:50051'), 'default/echo:50051');
    assert.equal(parser.serviceKey('echo.default.:50051'), 'default/echo:50051');
  });

  it('strips one suffix only: a namespace called svc survives the cluster-domain suffix', () => {
    assert.equal(parser.serviceKey('echo.svc.svc.cluster.local:80'), 'svc/echo:80');
    assert.equal(parser.serviceKey('echo.svc.svc:80'), 'svc/echo:80');
  });

  it('lowercases the host before matching', () => {
    assert.equal(parser.serviceKey('Echo.DEFAULT.Svc.Cluster.Local:50051'), 'default/echo:50051');
  });

  it('rejects hosts that are not exactly two labels once the suffix is gone', () => {
    for (const bad of [
      'echo:50051',
      'echo.svc:50051',
      'echo.svc.cluster.local:50051',
      'echo.default.other:50051',
      'echo.default.svc.other.local:50051',
      'echo.default.cluster.local:50051',
      'a.b.c:80',
      'echo.default..:50051',
      '.default:50051',
      'echo.:50051',
      '.:50051',
      'localhost:15051',
      '10.0.0.1:50051',
      '[::1]:50051',
    ]) {
      assert.equal(parser.serviceKey(bad), null, bad);
    }
  });

  it('a root dot alone is not a name', () => {
    assert.equal(parser.serviceKey('.:80'), null);
    assert.equal(parser.serviceKey('..:80'), null);
  });

  it('uses the cluster domain it was given, not cluster.local', () => {
    const custom = new AuthorityParser('corp.example');
    assert.equal(custom.serviceKey('echo.default.svc.corp.example:50051'), 'default/echo:50051');
    assert.equal(custom.serviceKey('echo.default.svc:50051'), 'default/echo:50051');
    assert.equal(custom.serviceKey('echo.default:50051'), 'default/echo:50051');
    assert.equal(custom.serviceKey('echo.default.svc.cluster.local:50051'), null);
  });
});

describe('AuthorityParser.serviceKey: ports', () => {
  const parser = new AuthorityParser('cluster.local');

  it('takes the port after the last colon, 1 to 65535', () => {
    assert.equal(parser.serviceKey('a.b:1'), 'b/a:1');
    assert.equal(parser.serviceKey('a.b:2'), 'b/a:2');
    assert.equal(parser.serviceKey('a.b:65534'), 'b/a:65534');
    assert.equal(parser.serviceKey('a.b:65535'), 'b/a:65535');
    assert.equal(parser.serviceKey('a.b:0'), null);
    assert.equal(parser.serviceKey('a.b:65536'), null);
    assert.equal(parser.serviceKey('a.b:99999'), null);
  });

  it('allows 1 to 5 digits, leading zeros included, and writes the port as a number', () => {
    assert.equal(parser.serviceKey('a.b:00080'), 'b/a:80');
    assert.equal(parser.serviceKey('a.b:080'), 'b/a:80');
    assert.equal(parser.serviceKey('a.b:09'), 'b/a:9');
    assert.equal(parser.serviceKey('a.b:00000'), null);
    assert.equal(parser.serviceKey('a.b:000080'), null);
    assert.equal(parser.serviceKey('a.b:100000'), null);
  });

  it('rejects a missing, empty or non-decimal port', () => {
    for (const bad of [
      'a.b',
      'a.b:',
      ':80',
      ':',
      '',
      '80',
      'a.b:8x',
      'a.b:x8',
      'a.b:x',
      'a.b: 80',
      'a.b:80 ',
      'a.b:+80',
      'a.b:-80',
      'a.b:8.0',
      'a.b:1e3',
      'a.b:0x1f',
      'a.b:８０',
      'a.b:80:',
    ]) {
      assert.equal(parser.serviceKey(bad), null, `"${bad}"`);
    }
  });

  it('a colon inside the host is not a port separator', () => {
    assert.equal(parser.serviceKey('a:1.b:80'), null);
    assert.equal(parser.serviceKey('a.b:1:80'), null);
  });
});

describe('AuthorityParser.serviceKey: DNS labels', () => {
  const parser = new AuthorityParser('cluster.local');
  const valid = [
    'a',
    'z',
    '0',
    '9',
    'ab',
    'a9',
    'za',
    '0z',
    'xay',
    'xzy',
    'x0y',
    'x9y',
    'x-y',
    'a--b',
    'x-a',
    'x-z',
    'x-0',
    'x-9',
    `a${'-'.repeat(61)}b`,
    'q'.repeat(62),
    'q'.repeat(63),
  ];
  const invalid = [
    'q'.repeat(64),
    `a${'-'.repeat(62)}b`,
    '-a',
    'a-',
    '-',
    '--',
    'a_b',
    '_a',
    'a_',
    'a b',
    '`a',
    'a`',
    'x`y',
    '{a',
    'a{',
    'x{y',
    '/a',
    'a/',
    'x/y',
    '@a',
    'x@y',
    '[a',
    'x[y',
    'é',
    'xéy',
  ];

  it('accepts RFC 1123 labels of 1 to 63 characters as the name and as the namespace', () => {
    for (const label of valid) {
      assert.equal(parser.serviceKey(`${label}.ns:80`), `ns/${label}:80`, `name ${label}`);
      assert.equal(parser.serviceKey(`svc1.${label}:80`), `${label}/svc1:80`, `namespace ${label}`);
    }
  });

  it('rejects a bad name even with a good namespace, and a bad namespace even with a good name', () => {
    for (const label of invalid) {
      assert.equal(parser.serviceKey(`${label}.ns:80`), null, `name ${label}`);
      assert.equal(parser.serviceKey(`svc1.${label}:80`), null, `namespace ${label}`);
    }
  });
});

describe('AuthorityParser.serviceKey: cache', () => {
  it('remembers each authority it parsed, rejected ones included', () => {
    const parser = new AuthorityParser('cluster.local');
    assert.equal(parser.serviceKey('a.b:80'), 'b/a:80');
    assert.equal(parser.serviceKey('bad'), null);
    assert.deepEqual([...cacheOf(parser)], [
      ['a.b:80', 'b/a:80'],
      ['bad', null],
    ]);
  });

  it('answers from the cache without parsing again, a cached null too', () => {
    const parser = new AuthorityParser('cluster.local');
    cacheOf(parser).set('a.b:80', 'seeded/value:1');
    cacheOf(parser).set('c.d:80', null);
    assert.equal(parser.serviceKey('a.b:80'), 'seeded/value:1');
    assert.equal(parser.serviceKey('c.d:80'), null);
    assert.equal(cacheOf(parser).size, 2);
  });

  it('a repeated authority gives the same answer and adds no entry', () => {
    const parser = new AuthorityParser('cluster.local');
    assert.equal(parser.serviceKey('a.b:80'), 'b/a:80');
    assert.equal(parser.serviceKey('a.b:80'), 'b/a:80');
    assert.equal(parser.serviceKey('A.B:80'), 'b/a:80');
    assert.equal(cacheOf(parser).size, 2);
  });

  it(`holds up to ${CACHE_LIMIT} entries, then starts over with only the new one`, () => {
    const parser = new AuthorityParser('cluster.local');
    for (let i = 0; i < CACHE_LIMIT - 1; i++) parser.serviceKey(`s${i}.ns:80`);
    assert.equal(cacheOf(parser).size, CACHE_LIMIT - 1);
    assert.equal(parser.serviceKey(`s${CACHE_LIMIT - 1}.ns:80`), `ns/s${CACHE_LIMIT - 1}:80`);
    assert.equal(cacheOf(parser).size, CACHE_LIMIT);
    // A hit on a full cache clears nothing.
    assert.equal(parser.serviceKey('s0.ns:80'), 'ns/s0:80');
    assert.equal(cacheOf(parser).size, CACHE_LIMIT);
    assert.equal(parser.serviceKey('new.ns:80'), 'ns/new:80');
    assert.deepEqual([...cacheOf(parser)], [['new.ns:80', 'ns/new:80']]);
    assert.equal(parser.serviceKey('s0.ns:80'), 'ns/s0:80');
    assert.equal(cacheOf(parser).size, 2);
  });
});
