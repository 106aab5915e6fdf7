// Sniffing a connection's first bytes: the full HTTP/2 client preface, any prefix of it, and the first byte that differs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sniffPreface } from '../../agent/proxy/protocol-sniff.ts';

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

function bytes(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

describe('sniffPreface', () => {
  it('the preface is 24 bytes', () => {
    assert.equal(PREFACE.length, 24);
  });

  it('answers http2 for exactly the preface, and for the preface followed by frames', () => {
    assert.equal(sniffPreface(bytes(PREFACE)), 'http2');
    assert.equal(sniffPreface(bytes(`${PREFACE}\x00`)), 'http2');
    assert.equal(sniffPreface(bytes(`${PREFACE}\x00\x00\x00\x04\x00\x00\x00\x00\x00`)), 'http2');
    assert.equal(sniffPreface(bytes(`${PREFACE}GET / HTTP/1.1\r\n`)), 'http2');
  });

  it('answers need-more for no bytes and for every proper prefix of the preface', () => {
    assert.equal(sniffPreface(Buffer.alloc(0)), 'need-more');
    for (let length = 1; length < PREFACE.length; length++) {
      assert.equal(sniffPreface(bytes(PREFACE.slice(0, length))), 'need-more', `${length} bytes`);
    }
  });

  it('answers other as soon as any one byte differs, at every position, whatever follows', () => {
    for (let i = 0; i < PREFACE.length; i++) {
      const changed = String.fromCharCode(PREFACE.charCodeAt(i) ^ 0x01);
      const prefix = `${PREFACE.slice(0, i)}${changed}`;
      assert.equal(sniffPreface(bytes(prefix)), 'other', `byte ${i} alone`);
      assert.equal(sniffPreface(bytes(`${prefix}${PREFACE.slice(i + 1)}`)), 'other', `byte ${i} of a full-length buffer`);
    }
  });

  it('answers other for HTTP/1.1, TLS and other protocols, even before 24 bytes have arrived', () => {
    assert.equal(sniffPreface(bytes('GET / HTTP/1.1\r\nHost: a\r\n\r\n')), 'other');
    assert.equal(sniffPreface(bytes('POST')), 'other');
    assert.equal(sniffPreface(bytes('PRI * HTTP/1.1\r\n')), 'other');
    assert.equal(sniffPreface(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])), 'other');
    assert.equal(sniffPreface(Buffer.from([0x00])), 'other');
    assert.equal(sniffPreface(bytes('pri * http/2.0\r\n\r\nsm\r\n\r\n')), 'other');
  });
});
