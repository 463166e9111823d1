// The signature vectors of spec §4.10 (channel / sign-in tokens) and §9.6 (REST request signing),
// checked against the server's own pure functions, then end to end against a running node: a token
// or request computed the same way is accepted, and one altered in a single place is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { sleep } from '../src/testing/eventually.js';
import { RawClient, type Frame } from '../src/testing/raw-client.js';
import { channelAuthString, hmacSha256Hex, md5Hex, restStringToSign, signinAuthString, verifyToken } from '../src/protocol/signature.js';
import { verifySignedRequest, type SignedRequest } from '../src/api/signed-request.js';
import { HttpError } from '../src/api/errors.js';
import { StaticAppStore } from '../src/apps/static-store.js';
import { AppSchema } from '../src/config/schema.js';

// Pusher docs credentials (spec §4.10, §9.6).
const docs = { id: '3', key: '278d425bdf160c739803', secret: '7ad3773142a6692b25b8' };
const DOCS_TS = 1353088179;

// ---------------------------------------------------------------- §4.10 against src/protocol/signature.ts

const token = (key: string, secret: string, message: string) => `${key}:${hmacSha256Hex(secret, message)}`;

test('§4.10 private vector: 1234.1234:private-foobar', () => {
  const msg = channelAuthString('1234.1234', 'private-foobar');
  assert.equal(msg, '1234.1234:private-foobar');
  const expected = '278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4';
  assert.equal(token(docs.key, docs.secret, msg), expected);
  assert.equal(verifyToken(docs.key, docs.secret, expected, msg), true);
});

test('§4.10 presence vectors: "Mr. Channels" → 31935e7d…, old "Mr. Pusher" text → afaed369…', () => {
  const channels = '{"user_id":10,"user_info":{"name":"Mr. Channels"}}';
  const pusher = '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}';
  const m1 = channelAuthString('1234.1234', 'presence-foobar', channels);
  const m2 = channelAuthString('1234.1234', 'presence-foobar', pusher);
  assert.equal(m1, `1234.1234:presence-foobar:${channels}`);
  const t1 = '278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80';
  const t2 = '278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c';
  assert.equal(token(docs.key, docs.secret, m1), t1);
  assert.equal(token(docs.key, docs.secret, m2), t2);
  assert.equal(verifyToken(docs.key, docs.secret, t1, m1), true);
  // the docs page's mismatched pairing must not verify
  assert.equal(verifyToken(docs.key, docs.secret, t2, m1), false);
});

test('§4.10 user sign-in vector: 1234.1234::user::{"id":"12345"}', () => {
  const msg = signinAuthString('1234.1234', '{"id":"12345"}');
  assert.equal(msg, '1234.1234::user::{"id":"12345"}');
  const expected = '278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba';
  assert.equal(token(docs.key, docs.secret, msg), expected);
  assert.equal(verifyToken(docs.key, docs.secret, expected, msg), true);
});

test('§4.10 SDK test-suite vectors (secret "tofu"), including UTF-8 channel_data and user_data', () => {
  const vectors: [string, string][] = [
    [channelAuthString('123.456', 'test'), 'efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c'],
    [channelAuthString('321.654', 'test'), 'f6ecb0a17d3e4f68aca28f1673197a7608587c09deb0208faa4b5519aee0a777'],
    [channelAuthString('123.456', 'test', '{"foo":"bar"}'), 'f41faf9ead2ea76772cc6b1168363057459f02499ae4d92e88229dc7f4efa2d4'],
    [channelAuthString('1.1', 'test', '"ą§¶™€łü€ß£"'), '2a229263e89d9c50524fd80c2e88be2843379f6931e28995e2cc214282c9db0c'],
    [signinAuthString('123.456', '{"id":"45678"}'), 'f4b1fdeea7c93e32648c7230e32b172057c5623cace6cfce791c6e7035e0babd'],
    [signinAuthString('1.1', '{"id":"ą§¶™€łü€ß£"}'), '620494cee53d6c568b49598313194088afda37218f0d059af03c0c898ed61ff4'],
    [channelAuthString('123.456', 'private-encrypted-bla', '"foo"'), '962c48b78bf93d98ff4c92ee7dff04865821455b7b401e9d60a9e0a90af2c105'],
  ];
  for (const [msg, hex] of vectors) {
    assert.equal(hmacSha256Hex('tofu', msg), hex, msg);
    for (const key of ['aaaa', '1234', 'f00d']) assert.equal(verifyToken(key, 'tofu', `${key}:${hex}`, msg), true, `${key} ${msg}`);
  }
});

test('verifyToken refuses: one flipped hex digit, upper-case hex, wrong key, no colon, non-string, truncated', () => {
  const msg = '1234.1234:private-foobar';
  const hex = '58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4';
  for (let i = 0; i < hex.length; i += 7) {
    assert.equal(verifyToken(docs.key, docs.secret, `${docs.key}:${flipHex(hex, i)}`, msg), false, `digit ${i}`);
  }
  assert.equal(verifyToken(docs.key, docs.secret, `${docs.key}:${hex.toUpperCase()}`, msg), false);
  assert.equal(verifyToken(docs.key, docs.secret, `278d425bdf160c739804:${hex}`, msg), false);
  assert.equal(verifyToken(docs.key, docs.secret, `${docs.key}${hex}`, msg), false);
  assert.equal(verifyToken(docs.key, docs.secret, undefined, msg), false);
  assert.equal(verifyToken(docs.key, docs.secret, 12, msg), false);
  assert.equal(verifyToken(docs.key, docs.secret, `${docs.key}:${hex.slice(0, -1)}`, msg), false);
  assert.equal(verifyToken(docs.key, docs.secret, `${docs.key}:${hex}0`, msg), false);
});

/** The same string with the hex digit at i replaced by a different one. */
function flipHex(hex: string, i: number): string {
  const c = hex[i];
  const r = c === '0' ? '1' : '0';
  return hex.slice(0, i) + r + hex.slice(i + 1);
}

// ---------------------------------------------------------------- §9.6 against src/api/signed-request.ts

const DOCS_BODY = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';

test('§9.6 docs vector: body_md5, string to sign and auth_signature', () => {
  assert.equal(DOCS_BODY, String.raw`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`);
  assert.equal(md5Hex(DOCS_BODY), 'ec365a775a4cd0599faeb73354201b6f');
  assert.equal(md5Hex(Buffer.from(DOCS_BODY)), 'ec365a775a4cd0599faeb73354201b6f');
  const q = { auth_key: docs.key, auth_timestamp: String(DOCS_TS), auth_version: '1.0', body_md5: 'ec365a775a4cd0599faeb73354201b6f' };
  const sts = restStringToSign('post', '/apps/3/events', q);
  assert.equal(
    sts,
    'POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f',
  );
  assert.equal(hmacSha256Hex(docs.secret, sts), 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c');
  // auth_signature itself is never part of the string, whatever order the query came in
  assert.equal(restStringToSign('POST', '/apps/3/events', { auth_signature: 'x', body_md5: q.body_md5, auth_version: '1.0', auth_timestamp: q.auth_timestamp, auth_key: q.auth_key }), sts);
});

test('§9.6 additional vectors: GET channels with params, terminate_connections, batch_events', () => {
  const base = { auth_key: docs.key, auth_timestamp: String(DOCS_TS), auth_version: '1.0' };
  assert.equal(
    hmacSha256Hex(docs.secret, restStringToSign('GET', '/apps/3/channels', { ...base, info: 'user_count', filter_by_prefix: 'presence-' })),
    '16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291',
  );
  assert.equal(md5Hex('{}'), '99914b932bd37a50b983c5e7c90ae93b');
  assert.equal(
    hmacSha256Hex(docs.secret, restStringToSign('POST', '/apps/3/users/12345/terminate_connections', { ...base, body_md5: md5Hex('{}') })),
    '01fa634edeb0cae84115307cad5c23f65a46cd286461b1c89637a3b5871a8f0e',
  );
  const batch = String.raw`{"batch":[{"channel":"my-channel","name":"my-event","data":"{\"hello\":\"world\"}"}]}`;
  assert.equal(md5Hex(batch), '8499bbaa10b690d4ea0a5da74296799d');
  assert.equal(
    hmacSha256Hex(docs.secret, restStringToSign('POST', '/apps/3/batch_events', { ...base, body_md5: md5Hex(batch) })),
    '546cea76bf5b7ea7429ab8d6ce5ab3797fd010a3c99159f245ee0d59c4408901',
  );
});

test('§9.6 SDK test-suite vectors (key f00d, secret tofu, GET /event)', () => {
  const base = { auth_key: 'f00d', auth_timestamp: '1234567890', auth_version: '1.0' };
  assert.equal(md5Hex('example body'), '165d5e6d7ca8f73b3853ce45addf42fc');
  assert.equal(
    hmacSha256Hex('tofu', restStringToSign('GET', '/event', { ...base, body_md5: md5Hex('example body') })),
    'a650196dc427ebe837226f8565ca9232198c6d1b9455eaa72374a9dc0b620e7b',
  );
  assert.equal(
    hmacSha256Hex('tofu', restStringToSign('GET', '/event', { foo: 'bar', baz: '123454321', ...base })),
    'd8bdbd31911fb7400a14fbd36fd7de053494725b64400ae5856deafe304b34a9',
  );
});

/** A request as the signature check reads it. */
function fakeReq(method: string, url: string, body?: string): SignedRequest {
  const [path, qs = ''] = url.split('?');
  const appId = /^\/apps\/([^/]+)/.exec(path)?.[1] ?? '';
  return {
    method,
    path,
    appId,
    query: Object.fromEntries(new URLSearchParams(qs)),
    rawBody: body === undefined ? undefined : Buffer.from(body),
  };
}

const docsRegistry = new StaticAppStore([AppSchema.parse(docs)]);
const docsQuery = `auth_key=${docs.key}&auth_timestamp=${DOCS_TS}&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f`;
const docsSig = 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c';

function authStatus(req: SignedRequest, nowMs = DOCS_TS * 1000): number {
  try {
    verifySignedRequest(docsRegistry, req, nowMs);
    return 200;
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    return err.status;
  }
}

test('the signature check accepts the §9.6 docs request at its timestamp, and refuses each single alteration with 401', () => {
  const url = `/apps/3/events?${docsQuery}&auth_signature=${docsSig}`;
  assert.equal(authStatus(fakeReq('POST', url, DOCS_BODY)), 200);
  // within the 600 s window either way
  assert.equal(authStatus(fakeReq('POST', url, DOCS_BODY), (DOCS_TS + 600) * 1000), 200);
  assert.equal(authStatus(fakeReq('POST', url, DOCS_BODY), (DOCS_TS - 600) * 1000), 200);
  const cases: [string, SignedRequest, number?][] = [
    ['timestamp 601 s old', fakeReq('POST', url, DOCS_BODY), (DOCS_TS + 601) * 1000],
    ['timestamp 601 s ahead', fakeReq('POST', url, DOCS_BODY), (DOCS_TS - 601) * 1000],
    ['flipped signature digit', fakeReq('POST', `/apps/3/events?${docsQuery}&auth_signature=${flipHex(docsSig, 10)}`, DOCS_BODY)],
    ['body changed', fakeReq('POST', url, DOCS_BODY.replace('foo', 'fop'))],
    ['different method', fakeReq('PUT', url, DOCS_BODY)],
    ['different path', fakeReq('POST', url.replace('/events', '/batch_events'), DOCS_BODY)],
    ['extra parameter', fakeReq('POST', `${url}&extra=1`, DOCS_BODY)],
    ['wrong auth_key', fakeReq('POST', url.replace(`auth_key=${docs.key}`, 'auth_key=278d425bdf160c739804'), DOCS_BODY)],
    ['no auth_signature', fakeReq('POST', `/apps/3/events?${docsQuery}`, DOCS_BODY)],
  ];
  for (const [what, req, now] of cases) assert.equal(authStatus(req, now), 401, what);
  assert.equal(authStatus(fakeReq('POST', url.replace('/apps/3/', '/apps/4/'), DOCS_BODY)), 404, 'unknown app id');
});

test('the signature check accepts the §9.6 GET vector, with parameters in any order and URL-encoded values', () => {
  const sig = '16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291';
  const q = `info=user_count&auth_version=1.0&filter_by_prefix=presence-&auth_timestamp=${DOCS_TS}&auth_key=${docs.key}&auth_signature=${sig}`;
  assert.equal(authStatus(fakeReq('GET', `/apps/3/channels?${q}`)), 200);
  assert.equal(authStatus(fakeReq('GET', `/apps/3/channels?${q.replace('info=user_count', 'info=user%5Fcount')}`)), 200);
  assert.equal(authStatus(fakeReq('GET', `/apps/3/channels?${q.replace('info=user_count', 'info=subscription_count')}`)), 401);
});

// ---------------------------------------------------------------- end to end against a node

let n: NodeHandle;
const raws: RawClient[] = [];

before(async () => {
  n = await startNode({ config: { apps: [{ ...docs, enableClientMessages: true }] } });
});

after(async () => {
  for (const r of raws) r.ws.terminate();
  await n?.kill();
});

async function connect(): Promise<RawClient> {
  const c = await RawClient.connect(n.port, docs.key);
  raws.push(c);
  return c;
}

/** Waits, then counts every frame the client ever received that matches (not only the newer ones). */
async function count(c: RawClient, pred: (f: Frame) => boolean, ms = 300): Promise<number> {
  await sleep(ms);
  return c.frames.filter(pred).length;
}

/** The token the way the vectors were computed: <key>:HMAC-SHA256(secret, string) with node:crypto. */
function sign(message: string): string {
  return `${docs.key}:${createHmac('sha256', docs.secret).update(message, 'utf8').digest('hex')}`;
}

test('end to end: a private token computed like the §4.10 vector is accepted; one wrong hex digit is refused (AuthError 401)', async () => {
  const c = await connect();
  const good = sign(`${c.socketId}:private-foobar`);
  for (const i of [0, 31, 63]) {
    const [k, hex] = good.split(':');
    const f = await c.subscribe('private-foobar', `${k}:${flipHex(hex, i)}`);
    assert.equal(f.event, 'pusher:subscription_error', `digit ${i}`);
    assert.deepEqual({ type: (f.data as { type: string }).type, status: (f.data as { status: number }).status }, { type: 'AuthError', status: 401 });
  }
  assert.equal((await c.subscribe('private-foobar', good)).event, 'pusher_internal:subscription_succeeded');
});

test('end to end: presence token over the exact §4.10 channel_data (numeric user_id) is accepted; one wrong digit is refused', async () => {
  const c = await connect();
  const cd = '{"user_id":10,"user_info":{"name":"Mr. Channels"}}';
  const good = sign(`${c.socketId}:presence-foobar:${cd}`);
  const [k, hex] = good.split(':');
  const bad = await c.subscribe('presence-foobar', `${k}:${flipHex(hex, 40)}`, cd);
  assert.equal(bad.event, 'pusher:subscription_error');
  assert.equal((bad.data as { status: number }).status, 401);
  const ok = await c.subscribe('presence-foobar', good, cd);
  assert.equal(ok.event, 'pusher_internal:subscription_succeeded', JSON.stringify(ok));
  assert.deepEqual(JSON.parse(ok.data as string).presence.hash, { '10': { name: 'Mr. Channels' } });
});

test('end to end: UTF-8 channel_data is signed over its UTF-8 bytes, as received', async () => {
  const c = await connect();
  const cd = '{"user_id":"ą§¶™€łü€ß£","user_info":{"n":"\\u00e9 é"}}';
  const ok = await c.subscribe('presence-utf8', sign(`${c.socketId}:presence-utf8:${cd}`), cd);
  assert.equal(ok.event, 'pusher_internal:subscription_succeeded', JSON.stringify(ok));
  assert.deepEqual(JSON.parse(ok.data as string).presence.ids, ['ą§¶™€łü€ß£']);
});

test('end to end: sign-in token like the §4.10 user vector gives signin_success; one wrong digit → pusher:error 4009 and close 4009', async () => {
  const ok = await connect();
  const userData = '{"id":"12345"}';
  ok.send({ event: 'pusher:signin', data: { auth: sign(`${ok.socketId}::user::${userData}`), user_data: userData } });
  const s = await ok.next((f) => f.event === 'pusher:signin_success' || f.event === 'pusher:error');
  assert.equal(s.event, 'pusher:signin_success', JSON.stringify(s));
  assert.equal((s.data as { user_data: string }).user_data, userData);

  const bad = await connect();
  const [k, hex] = sign(`${bad.socketId}::user::${userData}`).split(':');
  bad.send({ event: 'pusher:signin', data: { auth: `${k}:${flipHex(hex, 5)}`, user_data: userData } });
  const e = await bad.next((f) => f.event === 'pusher:signin_success' || f.event === 'pusher:error');
  assert.equal(e.event, 'pusher:error');
  assert.equal((e.data as { code: number }).code, 4009);
  assert.equal((await bad.closed).code, 4009);
});

/** Signs exactly as spec §9.2 says, with control over each ingredient, and sends the request. */
async function signedRequest(opts: {
  method?: 'GET' | 'POST';
  path: string;
  body?: string;
  params?: Record<string, string>;
  key?: string;
  secret?: string;
  timestamp?: number;
  bodyMd5?: string | null;
  /** changes the query after signing */
  tamper?: (query: string) => string;
  /** signs this query string instead of the sorted one */
  signedQuery?: (sorted: string) => string;
  signature?: (sig: string) => string;
  signPath?: string;
  signMethod?: string;
}) {
  const method = opts.method ?? 'GET';
  const q: Record<string, string> = {
    ...opts.params,
    auth_key: opts.key ?? docs.key,
    auth_timestamp: String(opts.timestamp ?? Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
  };
  if (opts.body !== undefined && opts.bodyMd5 !== null) q.body_md5 = opts.bodyMd5 ?? createHash('md5').update(opts.body).digest('hex');
  const sorted = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&');
  const toSign = opts.signedQuery ? opts.signedQuery(sorted) : sorted;
  let sig = createHmac('sha256', opts.secret ?? docs.secret).update(`${opts.signMethod ?? method}\n${opts.signPath ?? opts.path}\n${toSign}`).digest('hex');
  if (opts.signature) sig = opts.signature(sig);
  let query = `${sorted}&auth_signature=${sig}`;
  if (opts.tamper) query = opts.tamper(query);
  const res = await fetch(`${n.url}${opts.path}?${query}`, {
    method,
    headers: opts.body !== undefined ? { 'content-type': 'application/json' } : undefined,
    body: opts.body,
  });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text };
}

function assertJson401(r: { status: number; contentType: string; text: string }, what: string): void {
  assert.equal(r.status, 401, `${what}: ${r.text}`);
  assert.match(r.contentType, /^application\/json/, what);
  const body = JSON.parse(r.text);
  assert.equal(typeof body, 'object', what);
  assert.equal(body.code, 401, what);
  assert.equal(typeof body.error, 'string', what);
}

const EVENT_BODY = JSON.stringify({ name: 'signed', channels: ['signed-ch'], data: '{"v":1}' });

test('end to end: a POST /events signed per §9.2 is accepted and delivered', async () => {
  const c = await connect();
  await c.subscribe('signed-ch');
  const r = await signedRequest({ method: 'POST', path: `/apps/${docs.id}/events`, body: EVENT_BODY });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(JSON.parse(r.text), {});
  assert.deepEqual(await c.nextEvent('signed', 'signed-ch'), { event: 'signed', channel: 'signed-ch', data: '{"v":1}' });
});

test('end to end: a GET signed per §9.2 with unsorted, URL-encoded parameters in the URL is accepted', async () => {
  const ts = Math.floor(Date.now() / 1000);
  const q = { filter_by_prefix: 'presence-', info: 'user_count', auth_key: docs.key, auth_timestamp: String(ts), auth_version: '1.0' };
  const sorted = Object.keys(q).sort().map((k) => `${k}=${q[k as keyof typeof q]}`).join('&');
  const path = `/apps/${docs.id}/channels`;
  const sig = createHmac('sha256', docs.secret).update(`GET\n${path}\n${sorted}`).digest('hex');
  const url = `${n.url}${path}?info=user%5Fcount&auth_signature=${sig}&auth_version=1.0&filter_by_prefix=presence-&auth_timestamp=${ts}&auth_key=${docs.key}`;
  const res = await fetch(url);
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { channels: Record<string, { user_count: number }> };
  // the presence channels joined by the tests above, each with its user_count
  assert.equal(body.channels['presence-foobar']?.user_count, 1, JSON.stringify(body));
  for (const [name, attrs] of Object.entries(body.channels)) {
    assert.ok(name.startsWith('presence-'), name);
    assert.equal(typeof attrs.user_count, 'number', name);
  }
});

test('end to end: a timestamp 590 s old is still accepted (600 s window)', async () => {
  const r = await signedRequest({ path: `/apps/${docs.id}/channels`, timestamp: Math.floor(Date.now() / 1000) - 590 });
  assert.equal(r.status, 200, r.text);
});

test('end to end: each single alteration of a signed request → 401 with a JSON body', async () => {
  const path = `/apps/${docs.id}/events`;
  const post = { method: 'POST' as const, path, body: EVENT_BODY };
  const now = Math.floor(Date.now() / 1000);
  const cases: [string, Parameters<typeof signedRequest>[0]][] = [
    ['wrong signature (one hex digit)', { ...post, signature: (s) => flipHex(s, 20) }],
    ['upper-case signature', { ...post, signature: (s) => s.toUpperCase() }],
    ['signed with the wrong secret', { ...post, secret: 'not-the-secret' }],
    ['wrong auth_key', { ...post, key: 'other-key' }],
    ['auth_timestamp 601 s old', { ...post, timestamp: now - 601 }],
    ['auth_timestamp an hour old', { ...post, timestamp: now - 3600 }],
    ['auth_timestamp 700 s in the future', { ...post, timestamp: now + 700 }],
    ['auth_timestamp not a number', { ...post, tamper: (q) => q.replace(/auth_timestamp=\d+/, 'auth_timestamp=soon') }],
    ['wrong body_md5 (signed)', { ...post, bodyMd5: createHash('md5').update('other').digest('hex') }],
    ['body_md5 missing with a body', { ...post, bodyMd5: null }],
    ['body_md5 changed after signing', { ...post, tamper: (q) => q.replace(/body_md5=[0-9a-f]+/, `body_md5=${createHash('md5').update('x').digest('hex')}`) }],
    ['unsorted query signed', { ...post, signedQuery: (s) => s.split('&').reverse().join('&') }],
    ['extra parameter added after signing', { ...post, tamper: (q) => `${q}&extra=1` }],
    ['parameter value changed after signing', { method: 'GET', path: `/apps/${docs.id}/channels`, params: { filter_by_prefix: 'a' }, tamper: (q) => q.replace('filter_by_prefix=a', 'filter_by_prefix=b') }],
    ['auth_signature missing', { ...post, tamper: (q) => q.replace(/&auth_signature=[0-9a-f]+/, '') }],
    ['auth_key missing', { ...post, tamper: (q) => q.replace(/auth_key=[^&]+&/, '') }],
    ['signed for another path', { ...post, signPath: `/apps/${docs.id}/batch_events` }],
    ['signed for another method', { ...post, signMethod: 'PUT' }],
  ];
  for (const [what, opts] of cases) assertJson401(await signedRequest(opts), what);
});

test('end to end: a body changed after signing is refused with 401 and not delivered', async () => {
  const c = await connect();
  await c.subscribe('signed-tamper');
  const signedBody = JSON.stringify({ name: 'nope', channels: ['signed-tamper'], data: 'aaa' });
  const path = `/apps/${docs.id}/events`;
  const ts = Math.floor(Date.now() / 1000);
  const md5 = createHash('md5').update(signedBody).digest('hex');
  const query = `auth_key=${docs.key}&auth_timestamp=${ts}&auth_version=1.0&body_md5=${md5}`;
  const sig = createHmac('sha256', docs.secret).update(`POST\n${path}\n${query}`).digest('hex');
  const res = await fetch(`${n.url}${path}?${query}&auth_signature=${sig}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: signedBody.replace('aaa', 'bbb'),
  });
  assertJson401({ status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() }, 'body swapped');
  assert.equal(await count(c, (f) => f.event === 'nope'), 0);
  assert.equal(c.ws.readyState, WebSocket.OPEN);
  // the same signed URL with the body it was signed for goes through
  const ok = await fetch(`${n.url}${path}?${query}&auth_signature=${sig}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: signedBody });
  assert.equal(ok.status, 200, await ok.text());
  assert.equal((await c.nextEvent('nope', 'signed-tamper')).data, 'aaa');
});
