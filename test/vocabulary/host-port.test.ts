// host:port parsing shared by the settings and the static file: IPv4, bracketed IPv6, hostnames where allowed.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalIPv6, formatHostPort, parseHostPort, splitHostPort } from '../../agent/vocabulary/host-port.ts';

const listener = { allowHostname: true, allowPortZero: true };
const endpoint = { allowHostname: false, allowPortZero: false };

function reason(text: string, rules = endpoint): string {
  const result = parseHostPort(text, rules);
  assert.equal(result.ok, false, `${text} is rejected`);
  return result.ok ? '' : result.reason;
}

describe('parseHostPort', () => {
  it('parses IPv4, IPv6 and hostnames', () => {
    assert.deepEqual(parseHostPort('10.0.0.1:80', endpoint), { ok: true, value: { host: '10.0.0.1', port: 80 } });
    assert.deepEqual(parseHostPort('[::1]:80', endpoint), { ok: true, value: { host: '::1', port: 80 } });
    assert.deepEqual(parseHostPort('[FD00:0:0::A]:80', endpoint), { ok: true, value: { host: 'fd00::a', port: 80 } });
    assert.deepEqual(parseHostPort('Localhost:0', listener), { ok: true, value: { host: 'localhost', port: 0 } });
  });

  it('says what is wrong', () => {
    assert.match(reason('10.0.0.1'), /port is missing/);
    assert.match(reason(':80'), /host is missing/);
    assert.match(reason('::1:80'), /must be in brackets/);
    assert.match(reason('[::1]80'), /\[address\]:port/);
    assert.match(reason('[10.0.0.1]:80'), /not an IPv6 address/);
    assert.match(reason('[fe80::1%eth0]:80'), /not an IPv6 address/);
    assert.match(reason('backend:80'), /not an IP address/);
    assert.match(reason('10.0.0:80', listener), /not an IP address or a hostname/);
    assert.match(reason('bad_name:80', listener), /not an IP address or a hostname/);
    assert.match(reason('10.0.0.1:0'), /not in 1\.\.65535/);
    assert.match(reason('10.0.0.1:65536', listener), /not in 0\.\.65535/);
    assert.match(reason('10.0.0.1:+80'), /not a number/);
    assert.match(reason('10.0.0.1:'), /not a number/);
  });

  it('formats back, with brackets for IPv6', () => {
    assert.equal(formatHostPort('10.0.0.1', 80), '10.0.0.1:80');
    assert.equal(formatHostPort('::1', 80), '[::1]:80');
    assert.equal(canonicalIPv6('0:0:0:0:0:0:0:1'), '::1');
  });

  it('splits an address meshlite wrote itself back into host and port, IPv6 without brackets', () => {
    assert.deepEqual(splitHostPort('10.0.0.1:50051'), { host: '10.0.0.1', port: 50051 });
    assert.deepEqual(splitHostPort('[fd00::1]:80'), { host: 'fd00::1', port: 80 });
    assert.deepEqual(splitHostPort(formatHostPort('::1', 8080)), { host: '::1', port: 8080 });
  });
});
