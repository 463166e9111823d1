// The debug console (issue 21) through its HTTP stream, as `ripple tail` and the page read it: who
// may watch, every kind of event from a raw client and the REST API, the connection doctor's
// explanations of refused handshakes, subscriptions and REST requests, the bounded rate, and the
// same log from two nodes sharing Redis.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { ConsoleWatch, buildConsolePage, consoleSession, type SeenEvent } from '../src/testing/console-stream.js';
import { eventually } from '../src/testing/eventually.js';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { RawClient, presenceAuth, privateAuth, hmacHex } from '../src/testing/raw-client.js';
import { subscribeRecovering } from '../src/testing/recovery.js';
import { rest } from '../src/testing/sign-rest.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

const OPERATOR = 'operator-token-for-the-console-tests';
const op = `Bearer ${OPERATOR}`;
const a1 = { id: 'a1', key: 'k1', secret: 's1' };
const a2 = { id: 'a2', key: 'k2', secret: 's2' };
const a3 = { id: 'a3', key: 'k3', secret: 's3' };

const nodes: NodeHandle[] = [];
const watches: ConsoleWatch[] = [];
const clients: RawClient[] = [];
let redis: RedisHandle | undefined;
let receiver: WebhookReceiver;

before(async () => {
  buildConsolePage();
  receiver = await WebhookReceiver.start();
});
after(async () => {
  for (const w of watches) w.close();
  for (const c of clients) c.ws.terminate();
  await Promise.all(nodes.map((n) => n.stop(5000)));
  await receiver.stop();
  await redis?.stop();
});

function config() {
  return {
    apps: [
      { ...a1, enableClientMessages: true, webhooks: [{ url: receiver.url, event_types: ['channel_occupied'] }], recovery: { channels: [{ prefix: 'ch-', historySize: 0 }] } },
      a2,
      { ...a3, allowedOrigins: ['https://good.example'] },
      { id: 'a4', key: 'k4', secret: 's4', enabled: false },
    ],
  };
}

async function node(env: Record<string, string> = {}): Promise<NodeHandle> {
  const n = await startNode({ config: config(), env: { OPERATOR_TOKEN: OPERATOR, ...env } });
  nodes.push(n);
  return n;
}

async function watch(n: NodeHandle, appId: string, authorization = op, query = ''): Promise<ConsoleWatch> {
  const w = await ConsoleWatch.open(n.url, appId, authorization, query);
  watches.push(w);
  return w;
}

async function client(n: NodeHandle, key = a1.key, query?: string): Promise<RawClient> {
  const c = await RawClient.connect(n.port, key, query);
  clients.push(c);
  return c;
}

/** A REST trigger signed with `secret` (another app's, for the doctor) and the body `sent` (a changed one). */
async function triggerSigned(n: NodeHandle, secret: string, body: string, sent = body, timestamp = Math.floor(Date.now() / 1000)) {
  const path = `/apps/${a1.id}/events`;
  const q: Record<string, string> = { auth_key: a1.key, auth_timestamp: String(timestamp), auth_version: '1.0', body_md5: createHash('md5').update(body).digest('hex') };
  const qs = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&');
  const signature = createHmac('sha256', secret).update(`POST\n${path}\n${qs}`).digest('hex');
  const res = await fetch(`${n.url}${path}?${qs}&auth_signature=${signature}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sent });
  return { status: res.status, signed: `POST\n${path}\n${qs}` };
}

test('the console does not exist without an operator token', async () => {
  const n = await startNode({ config: config(), env: { OPERATOR_TOKEN: '' } });
  nodes.push(n);
  assert.equal((await fetch(`${n.url}/ripple/console/`)).status, 404);
  assert.equal((await fetch(`${n.url}/ripple/console/api/apps/a1/stream`, { headers: { authorization: op } })).status, 404);
  assert.equal((await consoleSession(n.url, a1)).status, 404);
});

test('access: the operator sees every app, an app\'s key and secret open that app only, nobody else gets in', async () => {
  const n = await node();
  const page = await fetch(`${n.url}/ripple/console/`);
  assert.equal(page.status, 200);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
  assert.doesNotMatch(await page.text(), /s1|s2|s3/, 'the page holds no secret');

  await assert.rejects(ConsoleWatch.open(n.url, a1.id, ''), /^Error: 401/);
  await assert.rejects(ConsoleWatch.open(n.url, a1.id, 'Bearer not-the-operator-token'), /^Error: 401/);
  const operatorApps = (await (await fetch(`${n.url}/ripple/console/api/apps`, { headers: { authorization: op } })).json()) as { apps: { id: string }[] };
  assert.deepEqual(operatorApps.apps.map((a) => a.id), ['a1', 'a2', 'a3', 'a4']);
  assert.doesNotMatch(JSON.stringify(operatorApps), /"s1"|secret/, 'no secret is sent to the page');

  // An app owner signs the session request with the app's secret; the answer holds no secret.
  const own = await consoleSession(n.url, a2);
  assert.equal(own.status, 200, own.error);
  assert.doesNotMatch(JSON.stringify(own), /s2/);
  // The owner's stream explains a mistake without naming the other app it points to (the operator's does).
  const ownWatch = await watch(n, a2.id, `Bearer ${own.token}`);
  await ownWatch.waitFor((e) => e.type === 'watching', 'the owner\'s stream');
  const opWatch = await watch(n, a2.id);
  const c2 = await client(n, a2.key);
  await c2.subscribe('private-z', privateAuth(a2.key, a1.secret, c2.socketId, 'private-z'));
  const ownRefusal = await ownWatch.waitFor((e) => e.type === 'subscription_refused' && e.channel === 'private-z', 'the refusal on the owner\'s stream');
  assert.match(ownRefusal.doctor!.matches!, /another app's secret/);
  assert.equal(ownRefusal.doctor!.otherApp, undefined);
  // (the doctor's fields only: a node id or socket id may hold "a1" by chance)
  assert.doesNotMatch(JSON.stringify(ownRefusal.doctor), /\ba1\b|\bk1\b/, 'no other app named to an app owner');
  const opRefusal = await opWatch.waitFor((e) => e.type === 'subscription_refused' && e.channel === 'private-z', 'the refusal on the operator\'s stream');
  assert.equal(opRefusal.doctor!.otherApp, 'a1');
  ownWatch.close();
  opWatch.close();
  const ownApps = (await (await fetch(`${n.url}/ripple/console/api/apps`, { headers: { authorization: `Bearer ${own.token}` } })).json()) as { apps: { id: string }[] };
  assert.deepEqual(ownApps.apps.map((a) => a.id), ['a2']);
  // ...and it does not open another app, for watching or for sending.
  await assert.rejects(ConsoleWatch.open(n.url, a1.id, `Bearer ${own.token}`), /^Error: 403/);
  const send = await fetch(`${n.url}/ripple/console/api/apps/a1/events`, { method: 'POST', headers: { authorization: `Bearer ${own.token}` }, body: JSON.stringify({ name: 'x', channels: ['c'], data: '{}' }) });
  assert.equal(send.status, 403);
  // The event creator sends for the operator, but not for a disabled app; and never without a credential.
  const creator = (appId: string, authorization: string) =>
    fetch(`${n.url}/ripple/console/api/apps/${appId}/events`, { method: 'POST', headers: { authorization }, body: JSON.stringify({ name: 'x', channels: ['c'], data: '{}' }) });
  assert.equal((await creator('a1', op)).status, 200);
  assert.equal((await creator('a4', op)).status, 403);
  assert.equal((await creator('a1', '')).status, 401);
  // Another app's secret, or a forged token, opens nothing.
  assert.equal((await consoleSession(n.url, a1, a2.secret)).status, 401);
  const forged = `rc1.${Buffer.from('a1').toString('base64url')}.${Math.floor(Date.now() / 1000) + 60}.${'0'.repeat(64)}`;
  await assert.rejects(ConsoleWatch.open(n.url, a1.id, `Bearer ${forged}`), /^Error: 401/);
});

test('one node: connections, subscriptions, API messages, client events and webhooks, with the doctor\'s explanations', async () => {
  const n = await node();
  const w = await watch(n, a1.id);
  await w.waitFor((e) => e.type === 'watching', 'this node streams the app');

  const c = await client(n);
  await w.waitFor((e) => e.type === 'connection_opened' && e.socketId === c.socketId && e.detail?.transport === 'ws', 'connection_opened');
  assert.equal((await c.subscribe('ch-pub')).event, 'pusher_internal:subscription_succeeded');
  await w.waitFor((e) => e.type === 'subscribed' && e.channel === 'ch-pub' && e.socketId === c.socketId, 'subscribed');
  await w.waitFor((e) => e.type === 'channel_occupied' && e.channel === 'ch-pub', 'channel_occupied');
  const hook = await w.waitFor((e) => e.type === 'webhook', 'the webhook attempt');
  assert.equal(hook.detail?.status, 200);
  assert.equal(hook.detail?.attempt, 1);
  assert.equal(hook.detail?.events, 'channel_occupied');

  // Channel auth signed with another app's secret, then with socket id and channel swapped.
  assert.equal((await c.subscribe('private-a', privateAuth(a1.key, a2.secret, c.socketId, 'private-a'))).event, 'pusher:subscription_error');
  const wrongSecret = await w.waitFor((e) => e.type === 'subscription_refused' && e.channel === 'private-a', 'the refused subscription');
  assert.equal(wrongSecret.detail?.reason, 'auth');
  assert.equal(wrongSecret.doctor?.signed, `${c.socketId}:private-a`);
  assert.match(wrongSecret.doctor!.matches!, /another app's secret/);
  assert.equal(wrongSecret.doctor!.otherApp, 'a2', 'the operator is told which app');
  assert.match(wrongSecret.doctor!.fix, /secret of app a1/);
  assert.doesNotMatch(JSON.stringify(wrongSecret), /"s1"|"s2"/, 'no secret in the log');
  const swapped = `${a1.key}:${hmacHex(a1.secret, `private-b:${c.socketId}`)}`;
  await c.subscribe('private-b', swapped);
  const swap = await w.waitFor((e) => e.type === 'subscription_refused' && e.channel === 'private-b', 'the swapped signature');
  assert.match(swap.doctor!.fix, /swapped/);

  // A client event, and a REST message that excludes the sender.
  assert.equal((await c.subscribe('private-c', privateAuth(a1.key, a1.secret, c.socketId, 'private-c'))).event, 'pusher_internal:subscription_succeeded');
  c.send({ event: 'client-typing', channel: 'private-c', data: { text: 'hello' } });
  const ce = await w.waitFor((e) => e.type === 'client_event', 'the client event');
  assert.deepEqual([ce.channel, ce.event, ce.socketId, ce.data], ['private-c', 'client-typing', c.socketId, '{"text":"hello"}']);
  const sent = await rest(n.url, a1, 'POST', `/apps/${a1.id}/events`, { name: 'news', channels: ['ch-pub', 'ch-2'], data: '{"n":1}', socket_id: c.socketId });
  assert.equal(sent.status, 200);
  const msg = await w.waitFor((e) => e.type === 'api_message', 'the API message');
  assert.deepEqual([msg.event, msg.channels, msg.data, msg.detail?.excludedSocketId], ['news', ['ch-pub', 'ch-2'], '{"n":1}', c.socketId]);

  // REST refusals: another app's secret, a body changed after signing, a clock off by 1000 s.
  const body = JSON.stringify({ name: 'x', channels: ['c'], data: '{}' });
  const wrong = await triggerSigned(n, a2.secret, body);
  assert.equal(wrong.status, 401);
  const restWrong = await w.waitFor((e) => e.type === 'api_refused' && e.doctor?.otherApp === 'a2' && /another app's secret/.test(e.doctor.matches ?? ''), 'the REST doctor (wrong secret)');
  assert.equal(restWrong.doctor?.signed, wrong.signed);
  assert.equal(restWrong.detail?.status, 401);
  assert.equal((await triggerSigned(n, a1.secret, body, body.replace('"x"', '"y"'))).status, 401);
  await w.waitFor((e) => e.type === 'api_refused' && /body was changed/.test(e.doctor?.problem ?? ''), 'the REST doctor (body changed)');
  assert.equal((await triggerSigned(n, a1.secret, body, body, Math.floor(Date.now() / 1000) - 1000)).status, 401);
  await w.waitFor((e) => e.type === 'api_refused' && /behind the server's/.test(e.doctor?.problem ?? ''), 'the REST doctor (clock skew)');

  // A key no app has: the operator is told which keys exist.
  const unknown = await RawClient.open(n.port, 'no-such-key');
  clients.push(unknown);
  const refused = await w.waitFor((e) => e.type === 'connection_refused' && e.detail?.key === 'no-such-key', 'the unknown key');
  assert.equal(refused.appId, '');
  assert.match(refused.doctor!.fix, /k1, k2, k3, k4/);

  c.ws.close(4000, 'done here');
  const closed = await w.waitFor((e) => e.type === 'connection_closed' && e.socketId === c.socketId, 'connection_closed');
  assert.deepEqual([closed.detail?.code, closed.detail?.reason, closed.detail?.closedBy], [4000, 'done here', 'client']);
  await w.waitFor((e) => e.type === 'channel_vacated' && e.channel === 'ch-pub', 'channel_vacated');
  for (const e of w.events) assert.equal(e.node !== undefined || e.type === 'skipped', true);
});

test('a refused origin and a bad protocol version show the doctor\'s fix; the stream filters by type and channel', async () => {
  const n = await node();
  const w = await watch(n, a3.id);
  const w1 = await watch(n, a1.id);
  const only = await watch(n, a1.id, op, 'type=subscribed&channel=wanted');
  await w.waitFor((e) => e.type === 'watching', 'this node streams the app');
  await w1.waitFor((e) => e.type === 'watching', 'this node streams the app');
  const bad = await RawClient.open(n.port, a3.key);
  clients.push(bad);
  const origin = await w.waitFor((e) => e.type === 'connection_refused' && e.detail?.reason === 'origin', 'the refused origin');
  assert.match(origin.doctor!.problem, /https:\/\/good\.example/);
  assert.match(origin.doctor!.fix, /allowedOrigins/);
  const old = await RawClient.open(n.port, a1.key, 'protocol=3');
  clients.push(old);
  const protocol = await w1.waitFor((e) => e.type === 'connection_refused' && e.detail?.reason === 'protocol', 'the protocol version');
  assert.match(protocol.doctor!.fix, /Upgrade the client library/);

  const c = await client(n);
  await c.subscribe('other');
  await c.subscribe('wanted');
  await only.waitFor((e) => e.type === 'subscribed' && e.channel === 'wanted', 'the filtered stream');
  assert.deepEqual(only.events.filter((e) => e.type !== 'skipped').map((e) => [e.type, e.channel]), [['subscribed', 'wanted']]);
});

test('presence members, a cache miss, a recovery replay, and a refused channels query with the doctor', async () => {
  const n = await node();
  const w = await watch(n, a1.id);
  await w.waitFor((e) => e.type === 'watching', 'this node streams the app');
  const c = await client(n);
  const cd = JSON.stringify({ user_id: 'u1', user_info: { name: '<b>Ann</b>' } });
  assert.equal((await c.subscribe('presence-room', presenceAuth(a1.key, a1.secret, c.socketId, 'presence-room', cd), cd)).event, 'pusher_internal:subscription_succeeded');
  await w.waitFor((e) => e.type === 'member_added' && e.channel === 'presence-room' && e.userId === 'u1', 'member_added');
  await w.waitFor((e) => e.type === 'subscribed' && e.channel === 'presence-room' && e.userId === 'u1', 'the presence subscription');
  await c.subscribe('cache-news');
  await w.waitFor((e) => e.type === 'cache_miss' && e.channel === 'cache-news' && e.socketId === c.socketId, 'the cache miss');

  // A recovering subscribe that replays two missed events.
  const first = await subscribeRecovering(c, 'feed');
  assert.equal((await rest(n.url, a1, 'POST', `/apps/${a1.id}/events`, { name: 'ev', channels: ['feed'], data: '{}' })).status, 200);
  assert.equal((await rest(n.url, a1, 'POST', `/apps/${a1.id}/events`, { name: 'ev', channels: ['feed'], data: '{}' })).status, 200);
  const c2 = await client(n);
  const again = await subscribeRecovering(c2, 'feed', { position: first.position! });
  assert.equal(again.replayed, 2);
  const replay = await w.waitFor((e) => e.type === 'recovery' && e.socketId === c2.socketId, 'the recovery replay');
  assert.deepEqual([replay.detail?.recovered, replay.detail?.replayed, replay.detail?.from], [true, 2, first.position]);

  // A signed query (answered by Fastify) signed with another app's secret.
  const bad = await rest(n.url, { ...a1, secret: a2.secret }, 'GET', `/apps/${a1.id}/channels`);
  assert.equal(bad.status, 401);
  const doc = await w.waitFor((e) => e.type === 'api_refused' && e.detail?.method === 'GET', 'the refused query');
  assert.match(doc.doctor!.matches!, /another app's secret/);

  c.ws.close();
  await w.waitFor((e) => e.type === 'member_removed' && e.userId === 'u1', 'member_removed');
});

test('the overview lists the 500 busiest occupied channels and says how many there are', async () => {
  const n = await node();
  const c = await client(n);
  for (let i = 0; i <= 500; i++) c.send({ event: 'pusher:subscribe', data: { channel: `many-${i}` } });
  c.send({ event: 'pusher:subscribe', data: { channel: 'busy' } });
  await c.nextEvent('pusher_internal:subscription_succeeded', 'busy');
  (await client(n)).send({ event: 'pusher:subscribe', data: { channel: 'busy' } });
  const list = async () => (await (await fetch(`${n.url}/ripple/console/api/apps/a1/channels`, { headers: { authorization: op } })).json()) as { total: number; channels: { name: string; subscriptions: number }[] };
  let body = await list();
  await eventually(async () => (body = await list()).channels[0]?.subscriptions === 2, { timeoutMs: 10_000, what: 'the busy channel counted twice' });
  assert.equal(body.total, 502);
  assert.equal(body.channels.length, 500);
  assert.deepEqual(body.channels[0], { name: 'busy', subscriptions: 2, users: 0 });
  const own = await consoleSession(n.url, a2);
  assert.equal((await fetch(`${n.url}/ripple/console/api/apps/a1/channels`, { headers: { authorization: `Bearer ${own.token}` } })).status, 403);
});

test('a node serves at most 100 console streams at once', async () => {
  const n = await node();
  const open: ConsoleWatch[] = [];
  try {
    for (let i = 0; i < 100; i++) open.push(await ConsoleWatch.open(n.url, a1.id, op));
    await assert.rejects(ConsoleWatch.open(n.url, a1.id, op), /^Error: 503 .*100 console streams already/);
    open.pop()!.close();
    await eventually(async () => {
      const w = await ConsoleWatch.open(n.url, a1.id, op).catch(() => undefined);
      if (w) open.push(w);
      return w !== undefined;
    }, { timeoutMs: 10_000, what: 'a place once a stream closed' });
  } finally {
    for (const w of open) w.close();
  }
});

test('a stream over its rate leaves events out and says how many', async () => {
  const n = await node();
  const w = await watch(n, a1.id, op, 'type=api_message&rate=3');
  await new Promise((r) => setTimeout(r, 200));
  for (let b = 0; b < 3; b++) {
    const batch = Array.from({ length: 10 }, (_, i) => ({ name: `e${b}-${i}`, channel: 'flood', data: '{}' }));
    assert.equal((await rest(n.url, a1, 'POST', `/apps/${a1.id}/batch_events`, { batch })).status, 200);
  }
  const counted = () => w.events.filter((e) => e.type === 'api_message').length + w.events.filter((e) => e.type === 'skipped').reduce((s, e) => s + (e.count ?? 0), 0);
  await w.waitFor(() => counted() === 30, 'every event shown or counted as skipped');
  assert.ok(w.events.some((e) => e.type === 'skipped' && e.count! > 0), 'a skipped record');
  assert.ok(w.events.filter((e) => e.type === 'api_message').length <= 9, 'at most the rate per second');
});

test('two nodes sharing Redis: a console on one node shows what happens on the other', async () => {
  redis = await startRedis();
  const env = { REDIS_URL: redis.url };
  const na = await node({ ...env, NODE_ID: 'node-a' });
  const nb = await node({ ...env, NODE_ID: 'node-b' });
  const w = await watch(na, a1.id);
  await w.waitFor((e) => e.type === 'watching' && e.node === 'node-b', 'node b streams the app');
  await w.waitFor((e) => e.type === 'watching' && e.node === 'node-a', 'node a streams the app');

  const c = await client(nb);
  await w.waitFor((e) => e.type === 'connection_opened' && e.socketId === c.socketId && e.node === 'node-b', 'node b\'s connection');
  await c.subscribe('private-x', privateAuth(a1.key, a1.secret, c.socketId, 'private-x'));
  await w.waitFor((e) => e.type === 'subscribed' && e.channel === 'private-x' && e.node === 'node-b', 'node b\'s subscription');
  c.send({ event: 'client-hi', channel: 'private-x', data: {} });
  await w.waitFor((e) => e.type === 'client_event' && e.node === 'node-b', 'node b\'s client event');
  assert.equal((await rest(nb.url, a1, 'POST', `/apps/${a1.id}/events`, { name: 'via-b', channel: 'private-x', data: '{}' })).status, 200);
  await w.waitFor((e) => e.type === 'api_message' && e.event === 'via-b' && e.node === 'node-b', 'node b\'s API message');
  await w.waitFor((e) => e.type === 'webhook' && e.detail?.status === 200, 'a webhook attempt, from whichever node delivers');
  assert.equal((await triggerSigned(nb, a2.secret, '{"name":"x","channel":"c","data":"{}"}')).status, 401);
  await w.waitFor((e: SeenEvent) => e.type === 'api_refused' && e.node === 'node-b' && e.doctor?.otherApp === 'a2', 'node b\'s REST doctor');
});

test('two nodes sharing Redis: a console opened on an app watched already, on either node, is told which nodes stream it and gets the charts\' history; the first console is not told twice', async () => {
  redis ??= await startRedis();
  // A cluster of their own on the same Redis (the nodes above still stream a1 to their console).
  const env = { REDIS_URL: redis.url, REDIS_PREFIX: 'second-watch' };
  const nc = await node({ ...env, NODE_ID: 'node-c' });
  const nd = await node({ ...env, NODE_ID: 'node-d' });
  const streaming = ['node-c', 'node-d'];
  const first = await watch(nc, a1.id);
  for (const id of streaming) await first.waitFor((e) => e.type === 'watching' && e.node === id, `${id} streams the app`);
  // Each node's first sample of the watched app (within 5 s): the charts' history a later console must get too.
  const firstSample = new Map<string, number>();
  for (const id of streaming) {
    const stats = await first.waitFor((e) => e.type === 'stats' && e.node === id, `${id}'s samples`);
    firstSample.set(id, stats.stats![0].t);
  }

  const second = await watch(nd, a1.id);
  const third = await watch(nc, a1.id);
  for (const [w, name] of [[second, 'a console on the other node'], [third, 'a second console on the same node']] as const) {
    for (const id of streaming) {
      await w.waitFor((e) => e.type === 'watching' && e.node === id, `${name}: ${id} streams the app`, 4000);
      await w.waitFor((e) => e.type === 'stats' && e.node === id && e.stats!.some((s) => s.t === firstSample.get(id)), `${name}: ${id}'s history of samples`, 4000);
    }
  }

  // An event from each node, published after everything it told the consoles: once a console has both,
  // any second `watching` row would have reached it.
  for (const n of [nc, nd]) assert.equal((await rest(n.url, a1, 'POST', `/apps/${a1.id}/events`, { name: 'mark', channel: 'marks', data: '{}' })).status, 200);
  for (const w of [first, second, third]) {
    for (const id of streaming) await w.waitFor((e) => e.type === 'api_message' && e.event === 'mark' && e.node === id, `the mark from ${id}`);
    assert.deepEqual(w.events.filter((e) => e.type === 'watching').map((e) => e.node).sort(), streaming, 'one watching row per node');
    assert.ok(w.events.every((e) => !('to' in e)), 'no stream sees whom a record was addressed to');
  }
});
