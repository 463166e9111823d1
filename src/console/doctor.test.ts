// The connection doctor's diagnoses: each usual mistake is named from the client's signature alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { hmacSha256Hex } from '../protocol/signature.js';
import { diagnoseChannelAuth, diagnoseHandshake, diagnoseRest, LISTED_KEYS, TRIED_PEERS } from './doctor.js';

const app = { id: 'a1', key: 'k1', secret: 's1' };
const other = { id: 'a2', key: 'k2', secret: 's2' };
const peers = [app, other];
const sid = '123.456';

test('channel auth: another app\'s secret or key, socket id and channel swapped, channel_data left out, no auth', () => {
  const signed = `${sid}:private-x`;
  // The other app is named in otherApp (for the operator), never in the texts (an app owner reads them).
  const secret2 = diagnoseChannelAuth(app, peers, sid, 'private-x', undefined, `k1:${hmacSha256Hex('s2', signed)}`);
  assert.match(secret2.matches!, /another app's secret/);
  assert.equal(secret2.otherApp, 'a2');
  const key2 = diagnoseChannelAuth(app, peers, sid, 'private-x', undefined, `k2:${hmacSha256Hex('s2', signed)}`);
  assert.match(key2.fix, /signs for another app/);
  assert.equal(key2.otherApp, 'a2');
  for (const d of [secret2, key2]) assert.doesNotMatch(`${d.problem} ${d.fix} ${d.matches}`, /a2/);
  assert.match(diagnoseChannelAuth(app, peers, sid, 'private-x', undefined, `k1:${hmacSha256Hex('s1', `private-x:${sid}`)}`).fix, /swapped/);
  const cd = '{"user_id":"u"}';
  const unsigned = diagnoseChannelAuth(app, peers, sid, 'presence-x', cd, `k1:${hmacSha256Hex('s1', `${sid}:presence-x`)}`);
  assert.equal(unsigned.signed, `${sid}:presence-x:${cd}`);
  assert.match(unsigned.fix, /channel_data the client sent was not signed/);
  assert.match(diagnoseChannelAuth(app, peers, sid, 'private-x', undefined, undefined).problem, /no auth/);
  // Only the first TRIED_PEERS other apps are tried.
  const crowd = [app, ...Array.from({ length: TRIED_PEERS }, (_, i) => ({ id: `p${i}`, key: `pk${i}`, secret: `ps${i}` })), other];
  assert.equal(diagnoseChannelAuth(app, crowd, sid, 'private-x', undefined, `k1:${hmacSha256Hex('s2', signed)}`).matches, undefined);
  const plain = diagnoseChannelAuth(app, peers, sid, 'private-x', undefined, 'k1:00');
  assert.equal(plain.matches, undefined);
  assert.doesNotMatch(JSON.stringify(plain), /"s1"|"s2"/);
});

test('REST: another app\'s key or secret, the clock, a changed body, the proxy\'s prefix, a disabled app, a good signature', () => {
  const now = 1_700_000_000_000;
  const ts = String(now / 1000);
  const body = Buffer.from('{"a":1}');
  const md5 = createHash('md5').update(body).digest('hex');
  const req = (secret: string, path = '/apps/a1/events', extra: Record<string, string> = {}, signedPath = path) => {
    const query: Record<string, string> = { auth_key: 'k1', auth_timestamp: ts, auth_version: '1.0', body_md5: md5, ...extra };
    const qs = Object.keys(query).sort().map((k) => `${k}=${query[k]}`).join('&');
    return { method: 'POST', path, rawBody: body, query: { ...query, auth_signature: hmacSha256Hex(secret, `POST\n${signedPath}\n${qs}`) } };
  };
  const secret2 = diagnoseRest(app, true, peers, req('s2'), now, 600)!;
  assert.match(secret2.matches!, /another app's secret/);
  const key2 = diagnoseRest(app, true, peers, { ...req('s1'), query: { ...req('s1').query, auth_key: 'k2' } }, now, 600)!;
  assert.match(key2.fix, /another app's key/);
  for (const d of [secret2, key2]) {
    assert.equal(d.otherApp, 'a2');
    assert.doesNotMatch(`${d.problem} ${d.fix} ${d.matches}`, /a2/);
  }
  assert.match(diagnoseRest(app, true, peers, req('s1'), now + 1_000_000, 600)!.problem, /1000 s behind/);
  assert.match(diagnoseRest(app, true, peers, { ...req('s1'), rawBody: Buffer.from('{"a":2}') }, now, 600)!.problem, /body was changed/);
  const prefixed = diagnoseRest(app, true, peers, req('s1', '/ws/apps/a1/events', {}, '/apps/a1/events'), now, 600)!;
  assert.match(prefixed.fix, /without "\/ws"/);
  assert.match(diagnoseRest(app, false, peers, req('s1'), now, 600)!.problem, /disabled/);
  assert.equal(diagnoseRest(app, true, peers, req('s1'), now, 600), undefined);
  assert.match(diagnoseRest(undefined, false, peers, req('s1'), now, 600)!.fix, /app's id/);
});

test('handshake: the operator is told the keys that exist; an origin gets its exact fix', () => {
  assert.match(diagnoseHandshake('unknown_app', { key: 'x', origin: '', protocol: '7' }, [], ['k1', 'k2']).fix, /Keys this server knows: k1, k2/);
  assert.doesNotMatch(diagnoseHandshake('unknown_app', { key: 'x', origin: '', protocol: '7' }).fix, /Keys/);
  const many = Array.from({ length: LISTED_KEYS + 5 }, (_, i) => `key${i}`);
  const listed = diagnoseHandshake('unknown_app', { key: 'x', origin: '', protocol: '7' }, [], many).fix;
  assert.match(listed, new RegExp(`key${LISTED_KEYS - 1} and 5 more\\.$`));
  assert.doesNotMatch(listed, new RegExp(`key${LISTED_KEYS}\\b`));
  assert.match(diagnoseHandshake('origin', { key: 'k1', origin: 'https://a.example', protocol: '7' }, ['https://b.example']).fix, /Add "https:\/\/a\.example"/);
});
