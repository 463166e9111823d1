// The REST API against a running node (spec §9.1, §9.3-§9.5, §11.1): real HTTP status codes with
// JSON error bodies, the channel queries, socket exclusion, `info` in trigger responses, batches.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { sleep } from '../src/testing/eventually.js';
import { RawClient, presenceAuth, privateAuth, type Frame } from '../src/testing/raw-client.js';
import { signedUrl } from '../src/testing/sign-rest.js';
import { createHmac } from 'node:crypto';

const app = { id: 'app-id', key: 'app-key', secret: 'app-secret' };
const off = { id: 'off-id', key: 'off-key', secret: 'off-secret' };
const nocount = { id: 'nocount-id', key: 'nocount-key', secret: 'nocount-secret' };

let n: NodeHandle;
const raws: RawClient[] = [];

before(async () => {
  n = await startNode({
    config: {
      apps: [
        { ...app, enableSubscriptionCount: true },
        { ...off, enabled: false },
        nocount,
      ],
    },
  });
});

after(async () => {
  for (const r of raws) r.ws.terminate();
  await n?.kill();
});

async function connect(): Promise<RawClient> {
  const c = await RawClient.connect(n.port, app.key);
  raws.push(c);
  return c;
}

async function sub(c: RawClient, channel: string, userId?: string): Promise<Frame> {
  let f: Frame;
  if (channel.startsWith('presence-')) {
    const cd = JSON.stringify({ user_id: userId ?? c.socketId, user_info: { n: userId } });
    f = await c.subscribe(channel, presenceAuth(app.key, app.secret, c.socketId, channel, cd), cd);
  } else if (channel.startsWith('private-')) {
    f = await c.subscribe(channel, privateAuth(app.key, app.secret, c.socketId, channel));
  } else {
    f = await c.subscribe(channel);
  }
  assert.equal(f.event, 'pusher_internal:subscription_succeeded', JSON.stringify(f));
  return f;
}

/** Waits, then counts every frame the client ever received that matches (not only the newer ones). */
async function count(c: RawClient, pred: (f: Frame) => boolean, ms = 300): Promise<number> {
  await sleep(ms);
  return c.frames.filter(pred).length;
}

type Res = { status: number; contentType: string; body: Record<string, unknown> };

/** A signed request with a raw text body (so malformed JSON can be sent correctly signed). */
async function rawRest(method: 'GET' | 'POST', path: string, text?: string, params?: Record<string, string>, creds = app): Promise<Res> {
  const res = await fetch(signedUrl(n.url, creds, method, path, text, params), {
    method,
    headers: text !== undefined ? { 'content-type': 'application/json' } : undefined,
    body: text,
  });
  const raw = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(raw);
  } catch {
    assert.fail(`${method} ${path} → ${res.status}: body is not JSON: ${raw.slice(0, 200)}`);
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body };
}

const post = (path: string, body: unknown, creds = app) => rawRest('POST', path, JSON.stringify(body), undefined, creds);
const events = (body: unknown) => post(`/apps/${app.id}/events`, body);
const batch = (body: unknown) => post(`/apps/${app.id}/batch_events`, body);
const get = (path: string, params?: Record<string, string>) => rawRest('GET', `/apps/${app.id}${path}`, undefined, params);

function assertError(r: Res, status: number, what: string): void {
  assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
  assert.match(r.contentType, /^application\/json/, `${what}: content-type`);
  assert.equal(r.body.code, status, `${what}: body.code`);
  assert.equal(typeof r.body.error, 'string', `${what}: body.error`);
}

function assertOk(r: Res, what = 'request'): void {
  assert.equal(r.status, 200, `${what}: ${JSON.stringify(r.body)}`);
  assert.match(r.contentType, /^application\/json/);
}

// ---------------------------------------------------------------- 400

test('400: body that is not JSON, or JSON that is not an object', async () => {
  for (const text of ['{"name":"x",', 'hello', '{"name":"x","channels":["c"],"data":"d"}}']) {
    assertError(await rawRest('POST', `/apps/${app.id}/events`, text), 400, `events ${text}`);
    assertError(await rawRest('POST', `/apps/${app.id}/batch_events`, text), 400, `batch ${text}`);
  }
  for (const text of ['[]', '"str"', '42', 'null']) assertError(await rawRest('POST', `/apps/${app.id}/events`, text), 400, `events ${text}`);
});

test('400: missing or ill-typed name, data, channels', async () => {
  const cases: [string, unknown][] = [
    ['no name', { channels: ['c'], data: 'd' }],
    ['empty name', { name: '', channels: ['c'], data: 'd' }],
    ['numeric name', { name: 5, channels: ['c'], data: 'd' }],
    ['no data', { name: 'e', channels: ['c'] }],
    ['object data', { name: 'e', channels: ['c'], data: { a: 1 } }],
    ['no channels/channel', { name: 'e', data: 'd' }],
    ['empty channels', { name: 'e', channels: [], data: 'd' }],
    ['channels not an array', { name: 'e', channels: 'c', data: 'd' }],
    ['numeric channel in channels', { name: 'e', channels: [1], data: 'd' }],
    ['invalid channel name', { name: 'e', channels: ['bad name'], data: 'd' }],
    ['channel name over 200', { name: 'e', channels: ['c'.repeat(201)], data: 'd' }],
    ['malformed socket_id', { name: 'e', channels: ['c'], data: 'd', socket_id: 'abc' }],
    ['socket_id with colon', { name: 'e', channels: ['c'], data: 'd', socket_id: '1.2:3' }],
    ['unknown info attribute', { name: 'e', channels: ['c'], data: 'd', info: 'bogus' }],
  ];
  for (const [what, body] of cases) assertError(await events(body), 400, what);
});

test('event name: 200 characters accepted, 201 → 400', async () => {
  assertOk(await events({ name: 'e'.repeat(200), channels: ['rest-name'], data: 'd' }));
  assertError(await events({ name: 'e'.repeat(201), channels: ['rest-name'], data: 'd' }), 400, 'name 201');
});

test('channels: 100 at once accepted, 101 → 400 and nothing delivered', async () => {
  const c = await connect();
  await sub(c, 'rest-many-0');
  const chans = (k: number) => Array.from({ length: k }, (_, i) => `rest-many-${i}`);
  assertError(await events({ name: 'too-many', channels: chans(101), data: 'd' }), 400, '101 channels');
  assert.equal(await count(c, (f) => f.event === 'too-many'), 0);
  assertOk(await events({ name: 'hundred', channels: chans(100), data: 'd' }));
  await c.nextEvent('hundred', 'rest-many-0');
});

test('413: data over 10 KB (the default limit) and nothing delivered; exactly 10 KB is accepted (spec §9.3, §9.4)', async () => {
  const c = await connect();
  await sub(c, 'rest-size');
  assertError(await events({ name: 'big', channels: ['rest-size'], data: 'x'.repeat(10 * 1024 + 1) }), 413, '10 KB + 1');
  // multi-byte characters count as bytes
  assertError(await events({ name: 'big', channels: ['rest-size'], data: 'é'.repeat(5 * 1024 + 1) }), 413, 'UTF-8 over');
  assert.equal(await count(c, (f) => f.event === 'big'), 0);
  assertOk(await events({ name: 'fits', channels: ['rest-size'], data: 'x'.repeat(10 * 1024) }));
  assert.equal(((await c.nextEvent('fits', 'rest-size')).data as string).length, 10 * 1024);
});

test('413: a request body over maxRequestBytes (1 MB) is refused before parsing', async () => {
  const r = await rawRest('POST', `/apps/${app.id}/events`, JSON.stringify({ name: 'e', channels: ['c'], data: 'x'.repeat(1024 * 1024 + 10) }));
  assertError(r, 413, '1 MB body');
});

test('batch_events: 10 events accepted, 11 → 400; batch missing or not an array → 400', async () => {
  const ev = (i: number) => ({ channel: 'rest-batch-limit', name: `b${i}`, data: String(i) });
  assertOk(await batch({ batch: Array.from({ length: 10 }, (_, i) => ev(i)) }));
  assertError(await batch({ batch: Array.from({ length: 11 }, (_, i) => ev(i)) }), 400, '11 events');
  assertError(await batch({}), 400, 'no batch');
  assertError(await batch({ batch: 'x' }), 400, 'batch string');
  assertError(await batch({ batch: [ev(0), 'x'] }), 400, 'non-object event');
});

test('batch_events is validated whole: one bad event → 400 (or 413 for its size) and none of the batch is delivered', async () => {
  const c = await connect();
  await sub(c, 'rest-batch-atomic');
  const good = { channel: 'rest-batch-atomic', name: 'first', data: '1' };
  assertError(await batch({ batch: [good, { channel: 'rest-batch-atomic', data: '2' }] }), 400, 'missing name');
  assertError(await batch({ batch: [good, { channel: 'rest-batch-atomic', name: 'x', data: 'y'.repeat(10 * 1024 + 1) }] }), 413, 'too big');
  assertError(await batch({ batch: [good, { name: 'x', data: 'y' }] }), 400, 'missing channel');
  assert.equal(await count(c, (f) => f.event === 'first'), 0, 'nothing of a refused batch delivered');
});

// ---------------------------------------------------------------- 401 / 403 / 404

test('401: unsigned request, bad signature, wrong key — JSON body', async () => {
  const unsigned = await fetch(`${n.url}/apps/${app.id}/channels`);
  assert.equal(unsigned.status, 401);
  assert.match(unsigned.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(((await unsigned.json()) as { code: number }).code, 401);

  const url = signedUrl(n.url, app, 'GET', `/apps/${app.id}/channels`);
  const badSig = await fetch(url.replace(/auth_signature=([0-9a-f])/, (_m, c: string) => `auth_signature=${c === '0' ? '1' : '0'}`));
  assert.equal(badSig.status, 401);
  assert.equal(((await badSig.json()) as { code: number }).code, 401);

  assertError(await rawRest('GET', `/apps/${app.id}/channels`, undefined, undefined, { ...app, secret: 'wrong' }), 401, 'wrong secret');
  assertError(await rawRest('GET', `/apps/${app.id}/channels`, undefined, undefined, { ...app, key: 'off-key' }), 401, 'another app key');
});

test('403: a disabled app, correctly signed', async () => {
  assertError(await post(`/apps/${off.id}/events`, { name: 'e', channels: ['c'], data: 'd' }, off), 403, 'events');
  assertError(await rawRest('GET', `/apps/${off.id}/channels`, undefined, undefined, off), 403, 'channels');
});

test('404: unknown app id and unknown routes, with JSON bodies', async () => {
  assertError(await post('/apps/no-such-app/events', { name: 'e', channels: ['c'], data: 'd' }), 404, 'unknown app');
  assertError(await rawRest('GET', '/apps/no-such-app/channels'), 404, 'unknown app GET');
  assertError(await rawRest('GET', `/apps/${app.id}/nope`), 404, 'unknown route under the app');
  assertError(await rawRest('POST', `/apps/${app.id}/channels/x/events/more`, '{}'), 404, 'unknown deep route');
  const bare = await fetch(`${n.url}/definitely/not/here`);
  assert.equal(bare.status, 404);
  assert.equal(((await bare.json()) as { code: number }).code, 404);
});

// ---------------------------------------------------------------- channel queries

test('GET /channels lists occupied channels with {} attributes; filter_by_prefix narrows it; vacated channels disappear', async () => {
  const a = await connect();
  const b = await connect();
  await sub(a, 'list1-pub-a');
  await sub(b, 'list1-pub-a');
  await sub(a, 'list1-pub-b');
  await sub(b, 'private-list1');
  const all = await get('/channels');
  assertOk(all);
  const channels = all.body.channels as Record<string, unknown>;
  for (const name of ['list1-pub-a', 'list1-pub-b', 'private-list1']) assert.deepEqual(channels[name], {}, name);

  const filtered = await get('/channels', { filter_by_prefix: 'list1-' });
  assert.deepEqual(filtered.body, { channels: { 'list1-pub-a': {}, 'list1-pub-b': {} } });

  a.send({ event: 'pusher:unsubscribe', data: { channel: 'list1-pub-b' } });
  await sleep(200);
  assert.deepEqual((await get('/channels', { filter_by_prefix: 'list1-' })).body, { channels: { 'list1-pub-a': {} } });
  assert.deepEqual((await get('/channels', { filter_by_prefix: 'list1-none' })).body, { channels: {} });
});

test('GET /channels?filter_by_prefix=presence-…&info=user_count counts users, not sockets; user_count without a presence- prefix → 400', async () => {
  const c1 = await connect();
  const c2 = await connect();
  const c3 = await connect();
  await sub(c1, 'presence-list2-room', 'u1');
  await sub(c2, 'presence-list2-room', 'u1');
  await sub(c3, 'presence-list2-room', 'u2');
  await sub(c3, 'presence-list2-other', 'u3');
  const r = await get('/channels', { filter_by_prefix: 'presence-list2-', info: 'user_count' });
  assertOk(r);
  assert.deepEqual(r.body, { channels: { 'presence-list2-room': { user_count: 2 }, 'presence-list2-other': { user_count: 1 } } });
  assertError(await get('/channels', { info: 'user_count' }), 400, 'no prefix');
  assertError(await get('/channels', { filter_by_prefix: 'list2-', info: 'user_count' }), 400, 'non-presence prefix');
  assertError(await get('/channels', { info: 'bogus' }), 400, 'unknown info');
});

test('GET /channels/{name}: {occupied:false} when empty; occupied + subscription_count for public; user_count for presence; 400 for attributes of another channel type', async () => {
  assert.deepEqual((await get('/channels/chq-empty')).body, { occupied: false });
  // Unoccupied channels give {"occupied":false}, with or without info (spec §9.3).
  assert.deepEqual((await get('/channels/chq-empty', { info: 'subscription_count' })).body, { occupied: false });
  assert.deepEqual((await get('/channels/presence-chq-empty', { info: 'user_count' })).body, { occupied: false });

  const a = await connect();
  const b = await connect();
  await sub(a, 'chq-pub');
  await sub(b, 'chq-pub');
  await sub(b, 'chq-pub'); // duplicate subscribe does not count twice
  assert.deepEqual((await get('/channels/chq-pub')).body, { occupied: true });
  assert.deepEqual((await get('/channels/chq-pub', { info: 'subscription_count' })).body, { occupied: true, subscription_count: 2 });

  await sub(a, 'presence-chq', 'p1');
  await sub(b, 'presence-chq', 'p1');
  const c = await connect();
  await sub(c, 'presence-chq', 'p2');
  assert.deepEqual((await get('/channels/presence-chq', { info: 'user_count' })).body, { occupied: true, user_count: 2 });

  assertError(await get('/channels/chq-pub', { info: 'user_count' }), 400, 'user_count on public');
  assertError(await get('/channels/presence-chq', { info: 'subscription_count' }), 400, 'subscription_count on presence');
  assertError(await get('/channels/chq-pub', { info: 'bogus' }), 400, 'unknown info');
  assertError(await get('/channels/chq-pub', { info: 'cache' }), 400, 'cache on a non-cache channel');
});

test('GET /channels/{name}/users lists distinct user ids; non-presence → 400', async () => {
  const a = await connect();
  const b = await connect();
  const c = await connect();
  await sub(a, 'presence-users', 'ann');
  await sub(b, 'presence-users', 'ann');
  await sub(c, 'presence-users', 'bob');
  const r = await get('/channels/presence-users/users');
  assertOk(r);
  const users = r.body.users as { id: string }[];
  assert.deepEqual(Object.keys(r.body), ['users']);
  assert.deepEqual([...users].sort((x, y) => x.id.localeCompare(y.id)), [{ id: 'ann' }, { id: 'bob' }]);

  c.send({ event: 'pusher:unsubscribe', data: { channel: 'presence-users' } });
  await sleep(200);
  assert.deepEqual((await get('/channels/presence-users/users')).body, { users: [{ id: 'ann' }] });
  assert.deepEqual((await get('/channels/presence-nobody/users')).body, { users: [] });
  assertError(await get('/channels/users-pub/users'), 400, 'public channel');
  assertError(await get('/channels/private-users/users'), 400, 'private channel');
});

// ---------------------------------------------------------------- POST events / batch_events

test('POST /events: delivered verbatim on every listed channel; response {}', async () => {
  const a = await connect();
  await sub(a, 'ev-one');
  await sub(a, 'private-ev-two');
  const data = '{"hello":"world","u":"ą"}';
  const r = await events({ name: 'my-event', channels: ['ev-one', 'private-ev-two'], data });
  assertOk(r);
  assert.deepEqual(r.body, {});
  assert.deepEqual(await a.nextEvent('my-event', 'ev-one'), { event: 'my-event', channel: 'ev-one', data });
  assert.deepEqual(await a.nextEvent('my-event', 'private-ev-two'), { event: 'my-event', channel: 'private-ev-two', data });
  // the single "channel" form
  assertOk(await events({ name: 'single', channel: 'ev-one', data: 'plain' }));
  assert.deepEqual(await a.nextEvent('single', 'ev-one'), { event: 'single', channel: 'ev-one', data: 'plain' });
});

test('POST /events with socket_id: exactly that connection is excluded, on every channel; an unknown socket_id excludes nobody', async () => {
  const a = await connect();
  const b = await connect();
  for (const c of [a, b]) {
    await sub(c, 'ex-1');
    await sub(c, 'private-ex-2');
  }
  assertOk(await events({ name: 'skip-a', channels: ['ex-1', 'private-ex-2'], data: 'd', socket_id: a.socketId }));
  await b.nextEvent('skip-a', 'ex-1');
  await b.nextEvent('skip-a', 'private-ex-2');
  assert.equal(await count(a, (f) => f.event === 'skip-a'), 0, 'excluded socket got nothing');

  assertOk(await events({ name: 'nobody-skipped', channels: ['ex-1'], data: 'd', socket_id: '1.1' }));
  await a.nextEvent('nobody-skipped', 'ex-1');
  await b.nextEvent('nobody-skipped', 'ex-1');
});

test('POST /events with info: one entry per unique channel; user_count for presence, subscription_count for the others', async () => {
  const a = await connect();
  const b = await connect();
  await sub(a, 'info-pub');
  await sub(b, 'info-pub');
  await sub(a, 'presence-info', 'x');
  await sub(b, 'presence-info', 'y');
  const r = await events({
    name: 'with-info',
    channels: ['info-pub', 'presence-info', 'info-pub', 'info-empty'],
    data: 'd',
    info: 'user_count,subscription_count',
  });
  assertOk(r);
  assert.deepEqual(r.body, {
    channels: {
      'info-pub': { subscription_count: 2 },
      'presence-info': { user_count: 2 },
      'info-empty': { subscription_count: 0 },
    },
  });
  const onlyUsers = await events({ name: 'with-info', channels: ['info-pub', 'presence-info'], data: 'd', info: 'user_count' });
  assert.deepEqual(onlyUsers.body, { channels: { 'info-pub': {}, 'presence-info': { user_count: 2 } } });
  // two requests, the first naming info-pub twice: delivered once per request
  await sleep(300);
  assert.equal(a.frames.filter((f) => f.event === 'with-info' && f.channel === 'info-pub').length, 2);
});

test('POST /batch_events: each event on its channel, in order; {} without info, {batch:[…]} index-aligned with info', async () => {
  const a = await connect();
  await sub(a, 'batch-pub');
  await sub(a, 'presence-batch', 'solo');
  const r = await batch({
    batch: [
      { channel: 'batch-pub', name: 'b1', data: '{"a":1}' },
      { channel: 'presence-batch', name: 'b2', data: 'x' },
      { channel: 'batch-pub', name: 'b3', data: 'y' },
    ],
  });
  assertOk(r);
  assert.deepEqual(r.body, {});
  assert.deepEqual(await a.nextEvent('b1', 'batch-pub'), { event: 'b1', channel: 'batch-pub', data: '{"a":1}' });
  assert.deepEqual(await a.nextEvent('b2', 'presence-batch'), { event: 'b2', channel: 'presence-batch', data: 'x' });
  assert.deepEqual(await a.nextEvent('b3', 'batch-pub'), { event: 'b3', channel: 'batch-pub', data: 'y' });
  const order = a.frames.filter((f) => ['b1', 'b3'].includes(f.event)).map((f) => f.event);
  assert.deepEqual(order, ['b1', 'b3']);

  const withInfo = await batch({
    batch: [
      { channel: 'batch-pub', name: 'i1', data: '1' },
      { channel: 'presence-batch', name: 'i2', data: '2', info: 'user_count' },
      { channel: 'batch-pub', name: 'i3', data: '3', info: 'subscription_count' },
    ],
  });
  assertOk(withInfo);
  assert.deepEqual(withInfo.body, { batch: [{}, { user_count: 1 }, { subscription_count: 1 }] });
});

test('POST /batch_events with socket_id excludes that connection for its event only', async () => {
  const a = await connect();
  const b = await connect();
  await sub(a, 'batch-ex');
  await sub(b, 'batch-ex');
  assertOk(
    await batch({
      batch: [
        { channel: 'batch-ex', name: 'not-for-a', data: '1', socket_id: a.socketId },
        { channel: 'batch-ex', name: 'for-all', data: '2' },
      ],
    }),
  );
  await b.nextEvent('not-for-a', 'batch-ex');
  await a.nextEvent('for-all', 'batch-ex');
  await b.nextEvent('for-all', 'batch-ex');
  assert.ok(!a.frames.some((f) => f.event === 'not-for-a'));
});

test('subscription_count is reported only for apps that enable it (spec §9.3)', async () => {
  const c = await RawClient.connect(n.port, nocount.key);
  raws.push(c);
  await c.subscribe('nc-pub');
  const trig = await post(`/apps/${nocount.id}/events`, { name: 'e', channel: 'nc-pub', data: 'x', info: 'subscription_count' }, nocount);
  assert.equal(trig.status, 200);
  assert.deepEqual(trig.body, { channels: { 'nc-pub': {} } });
  const one = await rawRest('GET', `/apps/${nocount.id}/channels/nc-pub`, undefined, { info: 'subscription_count' }, nocount);
  assert.deepEqual(one.body, { occupied: true });
  const list = await rawRest('GET', `/apps/${nocount.id}/channels`, undefined, { info: 'subscription_count' }, nocount);
  assert.deepEqual(list.body, { channels: { 'nc-pub': {} } });
});

/** Signs over the lower-cased keys (spec §9.2) but sends the query exactly as given. */
async function getWithQuery(path: string, sendQuery: string, signParams: Record<string, string>) {
  const q: Record<string, string> = { ...signParams, auth_key: app.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  const qs = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&');
  const sig = createHmac('sha256', app.secret).update(`GET\n${path}\n${qs}`).digest('hex');
  const extra = `auth_key=${q.auth_key}&auth_timestamp=${q.auth_timestamp}&auth_version=1.0&auth_signature=${sig}`;
  const res = await fetch(`${n.url}${path}?${sendQuery}&${extra}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('query keys are read as signed: upper-case names apply, a repeated name takes its last value, never a 500', async () => {
  const c = await connect();
  await sub(c, 'presence-qk', 'qk-user');
  await sub(c, 'qk-public');
  const path = `/apps/${app.id}/channels`;
  const upper = await getWithQuery(path, 'FILTER_BY_PREFIX=presence-qk&INFO=user_count', { filter_by_prefix: 'presence-qk', info: 'user_count' });
  assert.equal(upper.status, 200);
  assert.deepEqual(upper.body, { channels: { 'presence-qk': { user_count: 1 } } });
  const repeated = await getWithQuery(`${path}/presence-qk`, 'info=subscription_count&info=user_count', { info: 'user_count' });
  assert.equal(repeated.status, 200);
  assert.deepEqual(repeated.body, { occupied: true, user_count: 1 });
  const twoPrefixes = await getWithQuery(path, 'filter_by_prefix=nothing-&filter_by_prefix=qk-', { filter_by_prefix: 'qk-' });
  assert.equal(twoPrefixes.status, 200);
  assert.deepEqual(twoPrefixes.body, { channels: { 'qk-public': {} } });
});
