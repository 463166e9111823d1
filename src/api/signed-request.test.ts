// The REST fast path's query reader against the general way (querystring, then keys lower-cased and
// the last value of each): the same object, or undefined to take the general way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'node:querystring';
import { asSigned, signedQuery } from './signed-request.js';

const general = (raw: string) => asSigned(parse(raw) as Record<string, unknown>);

test('signedQuery reads a signed request\'s query as the general way does', () => {
  const raw = 'auth_key=k&auth_timestamp=1700000000&auth_version=1.0&body_md5=0cc175b9c0f1b6a831c399e269772661&auth_signature=abc';
  assert.deepEqual(signedQuery(raw), general(raw));
  assert.deepEqual(Object.keys(signedQuery(raw)!), Object.keys(general(raw)));
});

test('signedQuery: empty pieces, no "=", "=" in values, empty keys as querystring reads them', () => {
  for (const raw of ['', 'a', 'a=', '=b', '=', '==', 'a==b', 'a=b=c', 'a&&b', '&', '&&', '&a=1&', '1=x&b=2&0=y']) {
    assert.deepEqual(signedQuery(raw), general(raw), raw);
  }
});

test('signedQuery leaves to the general way what must be decoded, lower-cased or merged, and never differs from it', () => {
  for (const raw of ['a=%41', 'a=b+c', 'A=1', 'a=1&a=2', 'a=1&A=2&a=3', '__proto__=x', 'toString=1', 'ä=1', '&'.repeat(5) + 'x=1&'.repeat(1001)]) {
    assert.equal(signedQuery(raw), undefined, raw);
  }
  // random strings over the characters that matter
  const alphabet = ['a', 'b', 'A', '=', '&', '%', '+', '1', '_', 'é'];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let n = 0; n < 20_000; n++) {
    let raw = '';
    const len = next() % 14;
    for (let i = 0; i < len; i++) raw += alphabet[next() % alphabet.length];
    const fast = signedQuery(raw);
    if (fast !== undefined) assert.deepEqual([Object.keys(fast), fast], [Object.keys(general(raw)), general(raw)], raw);
  }
});
