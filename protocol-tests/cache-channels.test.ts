// Cache channels on the wire (issue "Deliver" item 5; spec §3.1, §7, §9.3): exact frames right after
// subscription_succeeded, the CACHE_TTL expiry, anchored prefixes, client events not cached, the
// cache surviving an empty channel, GET ?info=cache, and the cache shared by two nodes on one Redis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { sleep, waitUntil } from '../src/testing/eventually.js';
import { RawClient, presenceAuth, privateAuth, type Frame } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const app = { id: 'app-id', key: 'app-key', secret: 'app-secret' };
const TTL = 2;
let redis: RedisHandle;
let single: NodeHandle;
let nodeA: NodeHandle;
let nodeB: NodeHandle;
const raws: RawClient[] = [];

before(async () => {
  redis = await startRedis();
  [single, nodeA, nodeB] = await Promise.all([
    startNode({ env: { CACHE_TTL: String(TTL), APP_ENABLE_CLIENT_MESSAGES: 'true' } }),
    startNode({ env: { CACHE_TTL: '60', REDIS_URL: redis.url, NODE_ID: 'cc-a', APP_ENABLE_CLIENT_MESSAGES: 'true' } }),
    startNode({ env: { CACHE_TTL: '60', REDIS_URL: redis.url, NODE_ID: 'cc-b', APP_ENABLE_CLIENT_MESSAGES: 'true' } }),
  ]);
});

after(async () => {
  for (const r of raws) r.ws.terminate();
  await Promise.all([single, nodeA, nodeB].filter(Boolean).map((n) => n.kill()));
  await redis?.stop();
});

async function connect(n: NodeHandle): Promise<RawClient> {
  const c = await RawClient.connect(n.port, app.key);
  raws.push(c);
  return c;
}

async function trigger(n: NodeHandle, channel: string, name: string, data: string, socketId?: string): Promise<void> {
  const body: Record<string, unknown> = { name, channels: [channel], data };
  if (socketId) body.socket_id = socketId;
  const r = await rest(n.url, app, 'POST', `/apps/${app.id}/events`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

async function cacheInfo(n: NodeHandle, channel: string) {
  return rest(n.url, app, 'GET', `/apps/${app.id}/channels/${channel}`, undefined, { info: 'cache' });
}

/**
 * Subscribes (signing private/presence channels) and returns the frames on that channel starting at
 * subscription_succeeded, once `count` of them have arrived and a short quiet period has passed.
 */
async function subscribeAndCollect(c: RawClient, channel: string, count = 2): Promise<Frame[]> {
  let auth: string | undefined;
  let channelData: string | undefined;
  if (channel.startsWith('presence-')) {
    channelData = JSON.stringify({ user_id: c.socketId, user_info: {} });
    auth = presenceAuth(app.key, app.secret, c.socketId, channel, channelData);
  } else if (channel.startsWith('private-')) {
    auth = privateAuth(app.key, app.secret, c.socketId, channel);
  }
  const start = c.frames.length;
  const res = await c.subscribe(channel, auth, channelData);
  assert.equal(res.event, 'pusher_internal:subscription_succeeded', JSON.stringify(res));
  const ours = () => c.frames.slice(start).filter((f) => f.channel === channel);
  await waitUntil(() => ours().length >= count, { timeoutMs: 3000, intervalMs: 20 });
  await sleep(250);
  return ours();
}

const strip = (fs: Frame[]) => fs.map((f) => (f.event === 'pusher_internal:subscription_succeeded' ? { event: f.event } : f));

test('cache miss: subscription_succeeded, then {"event":"pusher:cache_miss","channel":...}, nothing else', async () => {
  const c = await connect(single);
  const frames = await subscribeAndCollect(c, 'cache-wire-empty');
  assert.equal(frames.length, 2, JSON.stringify(frames));
  assert.equal(frames[0].event, 'pusher_internal:subscription_succeeded');
  assert.equal(frames[1].event, 'pusher:cache_miss');
  assert.equal(frames[1].channel, 'cache-wire-empty');
  const { event, channel, data, ...others } = frames[1];
  assert.deepEqual(others, {}, 'no other fields');
  assert.ok(data === undefined || data === '{}' || (typeof data === 'object' && Object.keys(data as object).length === 0), `no payload, got ${JSON.stringify(data)}`);
  void event;
  void channel;
});

test('cache hit: the last REST event, verbatim, as a normal channel event right after subscription_succeeded', async () => {
  await trigger(single, 'cache-wire-price', 'price', '{"v":1}');
  await trigger(single, 'cache-wire-price', 'price', '{"v":2,"s":"ą§"}');
  const c = await connect(single);
  const frames = await subscribeAndCollect(c, 'cache-wire-price');
  assert.deepEqual(strip(frames), [
    { event: 'pusher_internal:subscription_succeeded' },
    { event: 'price', channel: 'cache-wire-price', data: '{"v":2,"s":"ą§"}' },
  ]);
});

test('every cache prefix caches; presence-cache- sends the cached event after the presence subscription_succeeded', async () => {
  for (const channel of ['private-cache-wire', 'presence-cache-wire', 'private-encrypted-cache-wire']) {
    const data = JSON.stringify({ channel });
    await trigger(single, channel, 'kept', data);
    const c = await connect(single);
    const frames = await subscribeAndCollect(c, channel);
    assert.equal(frames.length, 2, `${channel}: ${JSON.stringify(frames)}`);
    assert.equal(frames[0].event, 'pusher_internal:subscription_succeeded');
    assert.deepEqual(frames[1], { event: 'kept', channel, data }, channel);
  }
});

test('prefixes are anchored: foo-cache-bar, public and private channels get no cache frames (spec §3.1)', async () => {
  for (const channel of ['foo-cache-bar', 'xcache-1', 'plain-wire', 'private-wire-nocache', 'presence-wire-nocache', 'private-encrypted-nocache-cache-x']) {
    await trigger(single, channel, 'not-kept', '"x"');
    const c = await connect(single);
    const frames = await subscribeAndCollect(c, channel, 1);
    assert.deepEqual(frames.map((f) => f.event), ['pusher_internal:subscription_succeeded'], channel);
  }
});

test('the cached event expires after CACHE_TTL seconds: cache miss again, and info=cache is null', async () => {
  await trigger(single, 'cache-wire-ttl', 'short', '"lived"');
  const info = await cacheInfo(single, 'cache-wire-ttl');
  assert.equal(info.status, 200);
  const cache = info.body.cache as { data: string; ttl: number };
  assert.equal(cache.data, '"lived"');
  assert.ok(Number.isInteger(cache.ttl) && cache.ttl >= 1 && cache.ttl <= TTL, `ttl ${cache.ttl} within 1..${TTL}`);
  const before = await subscribeAndCollect(await connect(single), 'cache-wire-ttl');
  assert.equal(before[1]?.event, 'short');

  await sleep(TTL * 1000 + 600);
  const afterFrames = await subscribeAndCollect(await connect(single), 'cache-wire-ttl');
  assert.deepEqual(afterFrames.map((f) => f.event), ['pusher_internal:subscription_succeeded', 'pusher:cache_miss']);
  const gone = await cacheInfo(single, 'cache-wire-ttl');
  assert.deepEqual(gone.body.cache, null);
});

test('GET ?info=cache: {occupied, cache:null} when empty, {cache:{data,ttl}} when kept; 400 for non-cache channels', async () => {
  const empty = await cacheInfo(single, 'cache-wire-info');
  assert.equal(empty.status, 200);
  assert.deepEqual(empty.body, { occupied: false, cache: null });

  const sub = await connect(single);
  await subscribeAndCollect(sub, 'cache-wire-info');
  await trigger(single, 'cache-wire-info', 'snap', '{"a":1}');
  const kept = await cacheInfo(single, 'cache-wire-info');
  assert.equal(kept.status, 200);
  assert.equal(kept.body.occupied, true);
  assert.deepEqual(Object.keys(kept.body).sort(), ['cache', 'occupied']);
  assert.equal((kept.body.cache as { data: string }).data, '{"a":1}');

  for (const channel of ['plain-info', 'private-info', 'presence-info']) {
    const r = await cacheInfo(single, channel);
    assert.equal(r.status, 400, `${channel}: ${JSON.stringify(r.body)}`);
  }
});

test('client events are not cached; the REST event stays the cached one', async () => {
  const talker = await connect(single);
  await subscribeAndCollect(talker, 'private-cache-wire-chat');
  talker.send({ event: 'client-typing', channel: 'private-cache-wire-chat', data: { on: true } });
  await sleep(200);
  const first = await subscribeAndCollect(await connect(single), 'private-cache-wire-chat');
  assert.deepEqual(first.map((f) => f.event), ['pusher_internal:subscription_succeeded', 'pusher:cache_miss']);

  await trigger(single, 'private-cache-wire-chat', 'message', '"from rest"');
  talker.send({ event: 'client-typing', channel: 'private-cache-wire-chat', data: { on: false } });
  await sleep(200);
  const second = await subscribeAndCollect(await connect(single), 'private-cache-wire-chat');
  assert.deepEqual(strip(second), [
    { event: 'pusher_internal:subscription_succeeded' },
    { event: 'message', channel: 'private-cache-wire-chat', data: '"from rest"' },
  ]);
});

test('the cached event survives the channel becoming empty, is per channel, and is kept even if the publisher excluded a socket', async () => {
  const c = await connect(single);
  await subscribeAndCollect(c, 'cache-wire-empty-later');
  await trigger(single, 'cache-wire-empty-later', 'e', '"one"', c.socketId);
  assert.ok(await c.nothing((f) => f.event === 'e', 300), 'the excluded socket did not get it live');
  c.send({ event: 'pusher:unsubscribe', data: { channel: 'cache-wire-empty-later' } });
  await sleep(200);
  const occupied = await rest(single.url, app, 'GET', `/apps/${app.id}/channels/cache-wire-empty-later`);
  assert.deepEqual(occupied.body, { occupied: false });

  const later = await subscribeAndCollect(await connect(single), 'cache-wire-empty-later');
  assert.deepEqual(strip(later), [
    { event: 'pusher_internal:subscription_succeeded' },
    { event: 'e', channel: 'cache-wire-empty-later', data: '"one"' },
  ]);
  const other = await subscribeAndCollect(await connect(single), 'cache-wire-other');
  assert.deepEqual(other.map((f) => f.event), ['pusher_internal:subscription_succeeded', 'pusher:cache_miss'], 'per channel');
});

test('across two nodes: one shared cache, visible to subscribers and to info=cache on either node', async () => {
  await trigger(nodeB, 'cache-wire-cluster', 'st', '"from b"');
  const onA = await subscribeAndCollect(await connect(nodeA), 'cache-wire-cluster');
  assert.deepEqual(strip(onA), [
    { event: 'pusher_internal:subscription_succeeded' },
    { event: 'st', channel: 'cache-wire-cluster', data: '"from b"' },
  ]);
  const info = await cacheInfo(nodeA, 'cache-wire-cluster');
  assert.equal((info.body.cache as { data: string } | null)?.data, '"from b"');

  await trigger(nodeA, 'cache-wire-cluster', 'st', '"from a"');
  const onB = await subscribeAndCollect(await connect(nodeB), 'cache-wire-cluster');
  assert.deepEqual(strip(onB), [
    { event: 'pusher_internal:subscription_succeeded' },
    { event: 'st', channel: 'cache-wire-cluster', data: '"from a"' },
  ]);
});
