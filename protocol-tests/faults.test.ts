// Robustness of one node under hostile or unlucky clients: a slow consumer is told why it was closed,
// every name the socket API accepts works on the REST API, deep nesting is refused like any oversized
// frame, a connection's channels are capped, and one cache_miss webhook answers a burst of misses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import PusherServer from 'pusher';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient, presenceAuth, privateAuth, signinAuth, type Frame } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

const app = { id: 'fault-id', key: 'fault-key', secret: 'fault-secret' };
const nodes: NodeHandle[] = [];
const clients: RawClient[] = [];
const receivers: WebhookReceiver[] = [];
let redis: RedisHandle | undefined;
let hook: WebhookReceiver;
let n: NodeHandle;

async function node(opts: Parameters<typeof startNode>[0]): Promise<NodeHandle> {
  const started = await startNode(opts);
  nodes.push(started);
  return started;
}

async function connect(target: NodeHandle = n, key = app.key): Promise<RawClient> {
  const c = await RawClient.connect(target.port, key);
  clients.push(c);
  return c;
}

async function metric(target: NodeHandle, name: string): Promise<number> {
  const text = await (await fetch(`${target.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) total += Number(line.split(' ').pop());
  return total;
}

async function assertAlive(c: RawClient): Promise<void> {
  assert.equal(c.ws.readyState, WebSocket.OPEN, 'the connection is open');
  c.send({ event: 'pusher:ping', data: {} });
  await c.nextEvent('pusher:pong', undefined, 2000);
}

function assertSubError(f: Frame, channel: string, status: number, type: string): void {
  assert.equal(f.event, 'pusher:subscription_error', JSON.stringify(f));
  assert.equal(f.channel, channel);
  assert.deepEqual({ type: (f.data as { type: string }).type, status: (f.data as { status: number }).status }, { type, status });
}

/** pino's error and fatal levels (50, 60) in the node's output. */
function errorLines(target: NodeHandle): string[] {
  return target.output().split('\n').filter((l) => /"level":(50|60)/.test(l));
}

/** JSON text of arrays nested `depth` deep (built as text: JSON.stringify would overflow on it too). */
const deepArrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

before(async () => {
  hook = await WebhookReceiver.start();
  receivers.push(hook);
  n = await node({
    config: {
      apps: [
        { ...app, enableClientMessages: true, maxChannelsPerConnection: 5, webhooks: [{ url: hook.url, event_types: ['cache_miss'] }] },
        { id: 'long-id', key: 'long-key', secret: 'long-secret', maxUserIdLength: 200 },
      ],
    },
    env: { WEBHOOK_BATCH_MS: '20' },
  });
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(nodes.map((x) => x.kill()));
  await Promise.all(receivers.map((r) => r.stop()));
  await redis?.stop();
});

// ------------------------------------------------------------------ slow consumer (4100)

test('a client that stops reading sees close code 4100 once it reads again, after the events queued before it', async () => {
  const slowApp = { id: 'slow', key: 'slow-key', secret: 'slow-secret' };
  const s = await node({ env: { MAX_BACKPRESSURE_BYTES: String(256 * 1024), PONG_TIMEOUT: '30', APP_ID: slowApp.id, APP_KEY: slowApp.key, APP_SECRET: slowApp.secret } });
  const slow = await connect(s, slowApp.key);
  assert.equal((await slow.subscribe('feed')).event, 'pusher_internal:subscription_succeeded');
  // The client stops reading its socket: the kernel buffers fill, then the server's send buffer.
  const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  socket.pause();
  const data = 'x'.repeat(8000);
  const closedSlow = async () => (await metric(s, 'ripple_disconnects_total{app="slow",code="4100"}')) === 1;
  for (let b = 0; b < 400 && !(b % 20 === 0 && (await closedSlow())); b++) {
    const batch = Array.from({ length: 10 }, (_, i) => ({ channel: 'feed', name: 'tick', data: `${b * 10 + i}:${data}` }));
    assert.equal((await rest(s.url, slowApp, 'POST', `/apps/${slowApp.id}/batch_events`, { batch })).status, 200);
  }
  await eventually(closedSlow, { timeoutMs: 5000, what: 'the server closed the slow consumer with 4100' });
  // Longer than uWS gives a socket after end() before it cuts the connection.
  await sleep(6000);
  socket.resume();
  const closed = await slow.closed;
  assert.equal(closed.code, 4100, `the client saw ${closed.code} ${closed.reason}`);
  assert.ok(slow.frames.filter((f) => f.event === 'tick').length > 0, 'the events queued before the close arrived first');
  assert.equal(await metric(s, 'ripple_connections{app="slow"}'), 0);
});

// ------------------------------------------------------------------ names on every REST route

test('200-character channel names and long user ids work on every REST route; longer ones get 400 with a JSON error', async () => {
  const sdk = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(n.port), useTLS: false });
  const channel = `c-${'a'.repeat(198)}`;
  const presence = `presence-${'p'.repeat(191)}`;
  assert.equal(channel.length, 200);
  assert.equal(presence.length, 200);
  const c = await connect();
  assert.equal((await c.subscribe(channel)).event, 'pusher_internal:subscription_succeeded');
  const memberId = 'm'.repeat(128);
  const cd = JSON.stringify({ user_id: memberId });
  assert.equal((await c.subscribe(presence, presenceAuth(app.key, app.secret, c.socketId, presence, cd), cd)).event, 'pusher_internal:subscription_succeeded');

  await sdk.trigger(channel, 'e', { via: 'trigger' });
  assert.equal(JSON.parse((await c.nextEvent('e', channel)).data as string).via, 'trigger');
  await sdk.triggerBatch([{ channel, name: 'b', data: 'batch' }]);
  await c.nextEvent('b', channel);
  const list = (await (await sdk.get({ path: '/channels', params: { filter_by_prefix: channel } })).json()) as { channels: Record<string, unknown> };
  assert.deepEqual(Object.keys(list.channels), [channel]);
  assert.deepEqual(await (await sdk.get({ path: `/channels/${channel}` })).json(), { occupied: true });
  assert.deepEqual(await (await sdk.get({ path: `/channels/${presence}`, params: { info: 'user_count' } })).json(), { occupied: true, user_count: 1 });
  assert.deepEqual(await (await sdk.get({ path: `/channels/${presence}/users` })).json(), { users: [{ id: memberId }] });

  // A 128-character user id (the default limit) signed in, terminated through the SDK.
  const signedIn = await connect();
  const userData = JSON.stringify({ id: 'u'.repeat(128) });
  signedIn.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, signedIn.socketId, userData), user_data: userData } });
  await signedIn.nextEvent('pusher:signin_success');
  await sdk.terminateUserConnections('u'.repeat(128));
  assert.equal((await signedIn.closed).code, 4009);
  // An app that allows 200-character user ids terminates them too.
  const long = { id: 'long-id', key: 'long-key', secret: 'long-secret' };
  const longSdk = new PusherServer({ appId: long.id, key: long.key, secret: long.secret, host: '127.0.0.1', port: String(n.port), useTLS: false });
  const longUser = await connect(n, long.key);
  const longData = JSON.stringify({ id: 'v'.repeat(200) });
  longUser.send({ event: 'pusher:signin', data: { auth: signinAuth(long.key, long.secret, longUser.socketId, longData), user_data: longData } });
  await longUser.nextEvent('pusher:signin_success');
  await longSdk.terminateUserConnections('v'.repeat(200));
  assert.equal((await longUser.closed).code, 4009);

  // One character over the limit, or far over it: 400 with the JSON error shape, never 414.
  for (const path of [`/apps/${app.id}/channels/${channel}x`, `/apps/${app.id}/channels/${presence}x/users`, `/apps/${app.id}/channels/${'z'.repeat(5000)}`]) {
    const r = await rest(n.url, app, 'GET', path);
    assert.equal(r.status, 400, `${path.length}-character path: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.code, 400);
    assert.equal(typeof r.body.error, 'string');
  }
  const over = await rest(n.url, app, 'POST', `/apps/${app.id}/users/${'u'.repeat(129)}/terminate_connections`, {});
  assert.deepEqual([over.status, over.body.code], [400, 400]);
  // The socket API refuses the same ids at sign-in, so no connection is left that REST cannot name.
  const tooLong = await connect();
  const tooLongData = JSON.stringify({ id: 'w'.repeat(129) });
  tooLong.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, tooLong.socketId, tooLongData), user_data: tooLongData } });
  assert.equal((await tooLong.closed).code, 4009);
});

// ------------------------------------------------------------------ deep nesting

test('client-event data nested 100,000 deep is refused with pusher:error 4301, the socket stays open, nothing is logged as an error', async () => {
  const a = await connect();
  const b = await connect();
  for (const c of [a, b]) assert.equal((await c.subscribe('private-deep', privateAuth(app.key, app.secret, c.socketId, 'private-deep'))).event, 'pusher_internal:subscription_succeeded');
  for (const depth of [100_000, 5000]) {
    // 5000 levels fit in the 10 KB payload limit yet overflow JSON.stringify.
    a.send(`{"event":"client-deep","channel":"private-deep","data":${deepArrays(depth)}}`);
    const err = await a.nextEvent('pusher:error');
    assert.equal((err.data as { code: number }).code, 4301, JSON.stringify(err));
    assert.equal(err.channel, 'private-deep');
    await assertAlive(a);
  }
  // Ordinary nesting is relayed.
  a.send(`{"event":"client-ok","channel":"private-deep","data":${deepArrays(20)}}`);
  await b.nextEvent('client-ok', 'private-deep');
  assert.ok(await b.nothing((f) => f.event === 'client-deep', 300), 'nothing deep was relayed');

  // Deep presence user_info, in channel_data or in the sign-in's user_data, is refused the same way.
  const deepInfo = `{"user_id":"deep","user_info":${deepArrays(5000)}}`;
  assertSubError(await a.subscribe('presence-deep', presenceAuth(app.key, app.secret, a.socketId, 'presence-deep', deepInfo), deepInfo), 'presence-deep', 4301, 'LimitReached');
  await assertAlive(a);
  const deepUser = `{"id":"deep","user_info":${deepArrays(5000)}}`;
  b.send({ event: 'pusher:signin', data: { auth: signinAuth(app.key, app.secret, b.socketId, deepUser), user_data: deepUser } });
  assert.equal((await b.closed).code, 4009);
  await sleep(200);
  assert.deepEqual(errorLines(n), [], 'no error-level log line');
});

// ------------------------------------------------------------------ channels per connection

test('maxChannelsPerConnection (5 here): the sixth channel, presence counted, gets subscription_error LimitReached 4100 and leaves no trace', async () => {
  const c = await connect();
  for (let i = 0; i < 4; i++) assert.equal((await c.subscribe(`cap-${i}`)).event, 'pusher_internal:subscription_succeeded');
  const cd = JSON.stringify({ user_id: 'capped' });
  assert.equal((await c.subscribe('presence-cap', presenceAuth(app.key, app.secret, c.socketId, 'presence-cap', cd), cd)).event, 'pusher_internal:subscription_succeeded');
  assertSubError(await c.subscribe('cap-over'), 'cap-over', 4100, 'LimitReached');
  const cd2 = JSON.stringify({ user_id: 'capped-2' });
  assertSubError(await c.subscribe('presence-cap-over', presenceAuth(app.key, app.secret, c.socketId, 'presence-cap-over', cd2), cd2), 'presence-cap-over', 4100, 'LimitReached');
  // A channel it already has is confirmed again, not refused.
  assert.equal((await c.subscribe('cap-0')).event, 'pusher_internal:subscription_succeeded');
  await assertAlive(c);
  // No trace: the refused channels are not occupied and get no events.
  for (const ch of ['cap-over', 'presence-cap-over']) assert.deepEqual((await rest(n.url, app, 'GET', `/apps/${app.id}/channels/${ch}`)).body, { occupied: false });
  await rest(n.url, app, 'POST', `/apps/${app.id}/events`, { name: 'e', channels: ['cap-over', 'cap-0'], data: 'x' });
  await c.nextEvent('e', 'cap-0');
  assert.ok(await c.nothing((f) => f.channel === 'cap-over', 300));
  // Leaving one channel makes room for another.
  c.send({ event: 'pusher:unsubscribe', data: { channel: 'cap-1' } });
  assert.equal((await c.subscribe('cap-over')).event, 'pusher_internal:subscription_succeeded');
});

test('the default cap is 1,000 channels a connection, and APP_MAX_CHANNELS_PER_CONNECTION sets it', async () => {
  const d = await node({});
  const c = await connect(d, 'app-key');
  for (let i = 0; i < 1000; i++) c.send({ event: 'pusher:subscribe', data: { channel: `many-${i}`, auth: '' } });
  await eventually(() => c.frames.filter((f) => f.event === 'pusher_internal:subscription_succeeded').length === 1000, { timeoutMs: 20_000, what: '1000 subscriptions' });
  assertSubError(await c.subscribe('many-1000'), 'many-1000', 4100, 'LimitReached');
  const e = await node({ env: { APP_MAX_CHANNELS_PER_CONNECTION: '2' } });
  const ce = await connect(e, 'app-key');
  await ce.subscribe('one');
  await ce.subscribe('two');
  assertSubError(await ce.subscribe('three'), 'three', 4100, 'LimitReached');
});

// ------------------------------------------------------------------ webhook receiver recovery

test('a receiver answering 503 for 30 s gets its backlog within 2 s of recovering; while down it gets about one one-event probe a second', async () => {
  const r = await WebhookReceiver.start();
  receivers.push(r);
  r.status = 503;
  const w = await node({ config: { apps: [{ ...app, webhooks: [{ url: r.url, event_types: ['channel_occupied', 'channel_vacated'] }] }] }, env: { WEBHOOK_BATCH_MS: '20' } });
  const c = await connect(w);
  for (let i = 0; i < 5; i++) await c.subscribe(`outage-${i}`);
  await c.close();
  await eventually(() => r.attempts.length > 0, { timeoutMs: 2000, what: 'the first attempt' });
  await sleep(30_000);
  const downAttempts = r.attempts.length;
  r.status = 200;
  const recoveredAt = Date.now();
  await eventually(() => r.named('channel_vacated').length === 5, { timeoutMs: 10_000, what: 'the backlog after the outage' });
  const startedMs = r.received[0].at - recoveredAt;
  assert.ok(startedMs < 2000, `the backlog started ${startedMs} ms after the receiver recovered`);
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(r.events().filter((e) => e.channel === `outage-${i}`).map((e) => e.name), ['channel_occupied', 'channel_vacated'], 'in order, once each');
  }
  // A down receiver is not flooded: at most two requests a second, the probes carrying one event.
  assert.ok(downAttempts <= 60, `${downAttempts} requests in the 30 s outage`);
});

// ------------------------------------------------------------------ cache_miss de-duplication

test('three sockets missing an empty cache channel at once: three pusher:cache_miss, one cache_miss webhook; a miss after the window is a new one', async () => {
  const cs = await Promise.all([connect(), connect(), connect()]);
  for (const c of cs) c.send({ event: 'pusher:subscribe', data: { channel: 'cache-burst', auth: '' } });
  await Promise.all(cs.map((c) => c.nextEvent('pusher:cache_miss', 'cache-burst')));
  await eventually(() => hook.named('cache_miss', 'cache-burst').length >= 1, { timeoutMs: 5000, what: 'the cache_miss webhook' });
  await sleep(500);
  assert.equal(hook.named('cache_miss', 'cache-burst').length, 1, 'one webhook for the burst');
  // Another channel is de-duplicated on its own.
  await cs[0].subscribe('cache-other');
  await eventually(() => hook.named('cache_miss', 'cache-other').length === 1, { timeoutMs: 5000, what: 'the other channel\'s webhook' });
  // After the 5 s window a miss tells the app's server again.
  await sleep(5000);
  const late = await connect();
  await late.subscribe('cache-burst');
  await late.nextEvent('pusher:cache_miss', 'cache-burst');
  await eventually(() => hook.named('cache_miss', 'cache-burst').length === 2, { timeoutMs: 5000, what: 'a webhook for the miss after the window' });
});

test('across two nodes: sockets on both missing one cache channel at once give one cache_miss webhook', async () => {
  redis = await startRedis();
  const r = await WebhookReceiver.start();
  receivers.push(r);
  const cfg = { apps: [{ ...app, webhooks: [{ url: r.url, event_types: ['cache_miss'] }] }] };
  const env = { REDIS_URL: redis.url, NODE_LEASE_MS: '2000', WEBHOOK_BATCH_MS: '20' };
  const [a, b] = await Promise.all([node({ config: cfg, env: { ...env, NODE_ID: 'cm-a' } }), node({ config: cfg, env: { ...env, NODE_ID: 'cm-b' } })]);
  const cs = await Promise.all([connect(a), connect(a), connect(b), connect(b)]);
  for (const c of cs) c.send({ event: 'pusher:subscribe', data: { channel: 'cache-shared', auth: '' } });
  await Promise.all(cs.map((c) => c.nextEvent('pusher:cache_miss', 'cache-shared')));
  await eventually(() => r.named('cache_miss', 'cache-shared').length >= 1, { timeoutMs: 5000, what: 'the cache_miss webhook' });
  await sleep(500);
  assert.equal(r.named('cache_miss', 'cache-shared').length, 1);
});
