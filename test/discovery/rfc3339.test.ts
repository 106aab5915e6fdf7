// RFC 3339 timestamps as Kubernetes writes them → epoch ms; everything else → null.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRfc3339Ms } from '../../agent/discovery/rfc3339.ts';

describe('parseRfc3339Ms', () => {
  it('reads whole seconds and fractions up to nanoseconds, dropping what is below a millisecond', () => {
    assert.equal(parseRfc3339Ms('2024-05-01T10:02:03Z'), Date.UTC(2024, 4, 1, 10, 2, 3));
    assert.equal(parseRfc3339Ms('2024-05-01T10:02:03.4Z'), Date.UTC(2024, 4, 1, 10, 2, 3, 400));
    assert.equal(parseRfc3339Ms('2024-05-01T10:02:03.456789123Z'), Date.UTC(2024, 4, 1, 10, 2, 3, 456));
    assert.equal(parseRfc3339Ms('2024-05-01t10:02:03z'), Date.UTC(2024, 4, 1, 10, 2, 3));
  });

  it('applies offsets', () => {
    assert.equal(parseRfc3339Ms('2024-05-01T12:02:03+02:00'), Date.UTC(2024, 4, 1, 10, 2, 3));
    assert.equal(parseRfc3339Ms('2024-05-01T05:32:03.5-04:30'), Date.UTC(2024, 4, 1, 10, 2, 3, 500));
  });

  it('knows month lengths and leap years', () => {
    assert.equal(parseRfc3339Ms('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
    assert.equal(parseRfc3339Ms('2000-02-29T00:00:00Z'), Date.UTC(2000, 1, 29));
    assert.equal(parseRfc3339Ms('0001-01-01T00:00:00Z'), -62135596800000);
    for (const text of ['2023-02-29T00:00:00Z', '1900-02-29T00:00:00Z', '2024-04-31T00:00:00Z', '2024-13-01T00:00:00Z', '2024-00-10T00:00:00Z']) {
      assert.equal(parseRfc3339Ms(text), null, text);
    }
  });

  it('refuses other spellings, out-of-range fields and non-strings', () => {
    for (const text of [
      '',
      '2024-05-01',
      '2024-05-01 10:02:03Z',
      '2024-05-01T10:02:03',
      '2024-05-01T10:02:03.Z',
      '2024-05-01T10:02:03.1234567890Z',
      '2024-05-01T24:00:00Z',
      '2024-05-01T10:60:00Z',
      '2024-12-31T23:59:60Z',
      '2024-05-01T10:02:03+0200',
      '2024-05-01T10:02:03+24:00',
      'Wed, 01 May 2024 10:02:03 GMT',
      '1714557723',
    ]) {
      assert.equal(parseRfc3339Ms(text), null, text);
    }
    for (const value of [undefined, null, 1714557723000, {}, []]) assert.equal(parseRfc3339Ms(value), null);
  });
});
