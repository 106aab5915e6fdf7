// IP addresses from the API: one spelling per address, mapped IPv4 as IPv4, legacy leading zeros read as decimal, garbage refused.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseKubeIp } from '../../agent/vocabulary/ip-address.ts';

describe('parseKubeIp', () => {
  it('keeps IPv4 as written', () => {
    assert.deepEqual(parseKubeIp('10.96.0.1'), { ip: '10.96.0.1', family: 4 });
    assert.deepEqual(parseKubeIp('0.0.0.0'), { ip: '0.0.0.0', family: 4 });
  });

  it('writes IPv6 in RFC 5952 form (lower case, compressed), as inet_ntop does', () => {
    assert.deepEqual(parseKubeIp('FD00:10:96:0:0:0:0:1A2B'), { ip: 'fd00:10:96::1a2b', family: 6 });
    assert.deepEqual(parseKubeIp('2001:db8:0:0:1:0:0:1'), { ip: '2001:db8::1:0:0:1', family: 6 });
    assert.deepEqual(parseKubeIp('::1'), { ip: '::1', family: 6 });
  });

  it('reads IPv4-mapped IPv6 as IPv4, in either spelling', () => {
    assert.deepEqual(parseKubeIp('::ffff:10.0.0.1'), { ip: '10.0.0.1', family: 4 });
    assert.deepEqual(parseKubeIp('::FFFF:10.0.0.1'), { ip: '10.0.0.1', family: 4 });
    assert.deepEqual(parseKubeIp('::ffff:a00:1'), { ip: '10.0.0.1', family: 4 });
    assert.deepEqual(parseKubeIp('0:0:0:0:0:ffff:c0a8:10a'), { ip: '192.168.1.10', family: 4 });
  });

  it('reads legacy IPv4 with leading zeros as decimal, as Kubernetes did', () => {
    assert.deepEqual(parseKubeIp('010.001.000.009'), { ip: '10.1.0.9', family: 4 });
    assert.equal(parseKubeIp('010.1.1.256'), null);
  });

  it('refuses what is not an address', () => {
    for (const text of ['', 'None', '10.0.0', '10.0.0.1.2', '300.1.1.1', ' 10.0.0.1', '10.0.0.1\n', '[::1]', 'fe80::1%eth0', 'host.example', '::g', 'x'.repeat(100)]) {
      assert.equal(parseKubeIp(text), null, JSON.stringify(text));
    }
    for (const value of [undefined, null, 10, {}, ['10.0.0.1'], true]) assert.equal(parseKubeIp(value), null);
  });
});
