// Header list checks (agent/http2/header-validation.ts): a field that passed at a position is remembered there, so the
// memory must never let a different field through, whether its name, its value or both differ.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestHeadersProblem, responseHeadersProblem, trailersProblem } from '../../agent/http2/header-validation.ts';

const HEAD = [':method', 'POST', ':scheme', 'http', ':path', '/bench.Bench/Call', ':authority', 'bench:50051'];

function request(name: string, value: string): string[] {
  return [...HEAD, 'content-type', 'application/grpc', name, value];
}

test('request: a field that differs from the one that passed at its position is checked again', () => {
  assert.equal(requestHeadersProblem(request('te', 'trailers')), null);
  assert.equal(requestHeadersProblem(request('te', 'gzip')), 'te other than "trailers"', 'same name, another value');
  assert.equal(requestHeadersProblem(request('x-a', 'gzip')), null);
  assert.equal(requestHeadersProblem(request('te', 'gzip')), 'te other than "trailers"', 'same value, another name');
  assert.equal(requestHeadersProblem(request('x-a', 'line\nbreak')), 'invalid character in value of "x-a"');
  assert.equal(requestHeadersProblem(request('X-A', 'gzip')), 'invalid field name "X-A"');
  assert.equal(requestHeadersProblem(request('connection', 'close')), 'connection-specific field "connection"');
  // Refusals are not remembered: the bad field is refused again, the good one still passes.
  assert.equal(requestHeadersProblem(request('X-A', 'gzip')), 'invalid field name "X-A"');
  assert.equal(requestHeadersProblem(request('x-a', 'gzip')), null);
});

test('request: fields past the remembered positions are checked every time', () => {
  const filler = new Array<string[]>(20).fill(['x-f', 'v']).flat();
  assert.equal(requestHeadersProblem([...HEAD, ...filler, 'x-a', 'ok']), null);
  assert.equal(requestHeadersProblem([...HEAD, ...filler, 'x-a', 'bad\r']), 'invalid character in value of "x-a"');
  assert.equal(requestHeadersProblem([...HEAD, ...filler, 'te', 'gzip']), 'te other than "trailers"');
});

test('response and trailers: a field that differs from the one that passed at its position is checked again', () => {
  assert.equal(responseHeadersProblem([':status', '200', 'x-a', 'v']), null);
  assert.equal(responseHeadersProblem([':status', '200', 'x-a', 'v\0']), 'invalid character in value of "x-a"');
  assert.equal(responseHeadersProblem([':status', '200', 'keep-alive', 'v']), 'connection-specific field "keep-alive"');
  assert.equal(trailersProblem(['grpc-status', '0', 'grpc-message', '']), null);
  assert.equal(trailersProblem(['grpc-status', '0', 'grpc-Message', '']), 'invalid field name "grpc-Message"');
  assert.equal(trailersProblem(['grpc-status', '0', 'upgrade', '']), 'connection-specific field "upgrade"');
  assert.equal(trailersProblem(['grpc-status', '0', 'grpc-message', '']), null);
});
