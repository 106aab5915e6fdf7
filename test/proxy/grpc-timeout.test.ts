// The grpc-timeout header on its own: every unit, the 8-digit limit, malformed values, and the unit the time left is written in.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatGrpcTimeout, headersWithTimeLeft, parseGrpcTimeout } from '../../agent/proxy/grpc-timeout.ts';

describe('parseGrpcTimeout', () => {
  it('reads each of the six units into milliseconds', () => {
    assert.equal(parseGrpcTimeout('2H'), 7_200_000);
    assert.equal(parseGrpcTimeout('3M'), 180_000);
    assert.equal(parseGrpcTimeout('4S'), 4000);
    assert.equal(parseGrpcTimeout('5m'), 5);
    assert.equal(parseGrpcTimeout('7u'), 0.007);
    assert.equal(parseGrpcTimeout('6n'), 0.000006);
    assert.equal(parseGrpcTimeout('1n'), 0.000001);
  });

  it('reads every digit, in order, including 0 and 9', () => {
    assert.equal(parseGrpcTimeout('0m'), 0);
    assert.equal(parseGrpcTimeout('9m'), 9);
    assert.equal(parseGrpcTimeout('0S'), 0);
    assert.equal(parseGrpcTimeout('1234567m'), 1_234_567);
    assert.equal(parseGrpcTimeout('9876543S'), 9_876_543_000);
    assert.equal(parseGrpcTimeout('10m'), 10);
    assert.equal(parseGrpcTimeout('01m'), 1);
  });

  it('accepts 1 to 8 digits: 8 is the limit, leading zeros count', () => {
    assert.equal(parseGrpcTimeout('99999999S'), 99_999_999_000);
    assert.equal(parseGrpcTimeout('99999999H'), 99_999_999 * 3_600_000);
    assert.equal(parseGrpcTimeout('00000001m'), 1);
    assert.equal(parseGrpcTimeout('12345678u'), 12_345.678);
    assert.equal(parseGrpcTimeout('123456789S'), -1);
    assert.equal(parseGrpcTimeout('000000001m'), -1);
  });

  it('returns -1 for anything that is not digits followed by one unit', () => {
    for (const bad of ['', 'S', 'm', '1', '12', '1s', '1h', '1x', '1 ', ' 1S', '1 S', '-1m', '+1m', '1.5S', '1e3m', '0x1m', '1mm', 'S1', '/m', ':m', '１m']) {
      assert.equal(parseGrpcTimeout(bad), -1, `"${bad}"`);
    }
  });
});

describe('formatGrpcTimeout', () => {
  it('writes microseconds while they fit 8 digits, rounding up so a deadline is never shortened', () => {
    assert.equal(formatGrpcTimeout(3000), '3000000u');
    assert.equal(formatGrpcTimeout(1766), '1766000u');
    assert.equal(formatGrpcTimeout(1), '1000u');
    assert.equal(formatGrpcTimeout(1.5), '1500u');
    assert.equal(formatGrpcTimeout(0.0004), '1u');
    assert.equal(formatGrpcTimeout(0.000001), '1u');
    assert.equal(formatGrpcTimeout(2.0000001), '2001u');
    assert.equal(formatGrpcTimeout(99_999.999), '99999999u');
  });

  it('nothing left, or less than nothing, is 0u', () => {
    assert.equal(formatGrpcTimeout(0), '0u');
    assert.equal(formatGrpcTimeout(-5), '0u');
    assert.equal(formatGrpcTimeout(-0.0001), '0u');
  });

  it('moves to milliseconds at 100,000 ms, to seconds at 100,000,000 ms, and to hours beyond 8 digits of seconds', () => {
    assert.equal(formatGrpcTimeout(99_999.9991), '100000m');
    assert.equal(formatGrpcTimeout(100_000), '100000m');
    assert.equal(formatGrpcTimeout(100_000.5), '100001m');
    assert.equal(formatGrpcTimeout(99_999_999), '99999999m');
    assert.equal(formatGrpcTimeout(99_999_998.5), '99999999m');
    assert.equal(formatGrpcTimeout(99_999_999.5), '100000S');
    assert.equal(formatGrpcTimeout(100_000_000), '100000S');
    assert.equal(formatGrpcTimeout(100_000_001), '100001S');
    assert.equal(formatGrpcTimeout(99_999_999_000), '99999999S');
    assert.equal(formatGrpcTimeout(99_999_999_001), '27778H');
    assert.equal(formatGrpcTimeout(3_600_000 * 50_000_000), '50000000H');
  });

  it('caps what no 8-digit value can say at 99999999H', () => {
    assert.equal(formatGrpcTimeout(3_600_000 * 99_999_999), '99999999H');
    assert.equal(formatGrpcTimeout(3_600_000 * 99_999_999 + 1), '99999999H');
    assert.equal(formatGrpcTimeout(1e20), '99999999H');
    assert.equal(formatGrpcTimeout(Number.POSITIVE_INFINITY), '99999999H');
  });

  it('what it writes parses back to at least the time left, in at most 8 digits', () => {
    const samples = [0, 0.001, 0.5, 1, 999.9999, 65_432.1, 99_999.999, 99_999.9991, 123_456_789.25, 99_999_999_000, 99_999_999_001, 3e14];
    for (const ms of samples) {
      const text = formatGrpcTimeout(ms);
      assert.match(text, /^\d{1,8}[HMSmun]$/, `${ms} ms`);
      assert.ok(parseGrpcTimeout(text) >= ms, `${ms} ms written as ${text}`);
    }
  });
});

describe('headersWithTimeLeft', () => {
  const request = [':method', 'POST', ':path', '/test.Echo/Unary', 'grpc-timeout', '3S', 'x-grpc-timeout', '9S', 'te', 'trailers'];

  it('rewrites the grpc-timeout value, and only it, to the time left; the client\'s list is not touched', () => {
    const before = request.slice();
    const sent = headersWithTimeLeft(request, 1766);
    assert.deepEqual(sent, [':method', 'POST', ':path', '/test.Echo/Unary', 'grpc-timeout', '1766000u', 'x-grpc-timeout', '9S', 'te', 'trailers']);
    assert.notEqual(sent, request);
    assert.deepEqual(request, before);
  });

  it('writes the time left in the unit formatGrpcTimeout picks, 0u when none is left', () => {
    assert.deepEqual(headersWithTimeLeft(['grpc-timeout', '1H'], 3_600_000), ['grpc-timeout', '3600000m']);
    assert.deepEqual(headersWithTimeLeft(['grpc-timeout', '1m'], 0), ['grpc-timeout', '0u']);
  });

  it('without a deadline the very same list goes upstream', () => {
    const plain = [':method', 'POST', 'te', 'trailers'];
    assert.equal(headersWithTimeLeft(plain, Number.POSITIVE_INFINITY), plain);
  });

  it('a list without grpc-timeout is copied unchanged', () => {
    const plain = [':method', 'POST', 'te', 'trailers'];
    const sent = headersWithTimeLeft(plain, 500);
    assert.deepEqual(sent, plain);
  });
});
