// Cache channels through pusher-js and the `pusher` SDK (issue "Deliver" item 5; spec §7, §9.3): the
// last event triggered through the REST API on a cache-, private-cache-, presence-cache- or
// private-encrypted-cache- channel is given to each new subscriber right after subscription_succeeded;
// otherwise pusher-js emits 'pusher:cache_miss'; client events are not cached; GET
// /channels/<name>?info=cache reports it; all of this across two nodes sharing Redis as well.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { Clients, connected, sdk, subscribed, type Channel, type Client } from './support-users.js';

let redis: RedisHandle;
let single: NodeHandle;
let nodeA: NodeHandle;
let nodeB: NodeHandle;
const clients = new Clients();

before(async () => {
  redis = await startRedis();
  [single, nodeA, nodeB] = await Promise.all([
    startNode({ env: { CACHE_TTL: '600', APP_ENABLE_CLIENT_MESSAGES: 'true' } }),
    startNode({ env: { CACHE_TTL: '600', REDIS_URL: redis.url, NODE_ID: 'cache-a', APP_ENABLE_CLIENT_MESSAGES: 'true' } }),
    startNode({ env: { CACHE_TTL: '600', REDIS_URL: redis.url, NODE_ID: 'cache-b', APP_ENABLE_CLIENT_MESSAGES: 'true' } }),
  ]);
});

after(async () => {
  clients.closeAll();
  await Promise.all([single, nodeA, nodeB].filter(Boolean).map((n) => n.kill()));
  await redis?.stop();
});

/** Everything pusher-js emits on the channel, in order, as [event, data]; data omitted for pusher: events. */
type Seen = [string, unknown?];

/** Subscribes with a global recorder bound before the subscribe is sent; resolves after subscription_succeeded. */
async function record(c: Client, name: string): Promise<{ ch: Channel; seen: Seen[] }> {
  const seen: Seen[] = [];
  const ch = c.p.subscribe(name);
  ch.bind_global((event: string, data: unknown) => seen.push(event.startsWith('pusher:') ? [event] : [event, data]));
  await subscribed(c, name);
  return { ch, seen };
}

async function settled(seen: Seen[], count: number, what: string): Promise<Seen[]> {
  await eventually(() => seen.length >= count, { timeoutMs: 3000, what: () => `${what}: ${JSON.stringify(seen)}` });
  await sleep(300);
  return seen;
}

test('a new subscriber with nothing cached gets pusher:cache_miss right after subscription_succeeded', async () => {
  const server = sdk(single.port);
  const c = clients.make(single.port, server);
  await connected(c);
  const { seen } = await record(c, 'cache-sdk-empty');
  assert.deepEqual(await settled(seen, 2, 'cache miss'), [['pusher:subscription_succeeded'], ['pusher:cache_miss']]);
});

test('the last event triggered with the SDK is given to each new subscriber, once, after subscription_succeeded', async () => {
  const server = sdk(single.port);
  const live = clients.make(single.port, server);
  await connected(live);
  const early = await record(live, 'cache-sdk-price');
  await server.trigger('cache-sdk-price', 'price', { v: 1 });
  await server.trigger('cache-sdk-price', 'price', { v: 2, note: 'ą§¶' });
  assert.deepEqual(await settled(early.seen, 4, 'live subscriber'), [
    ['pusher:subscription_succeeded'],
    ['pusher:cache_miss'],
    ['price', { v: 1 }],
    ['price', { v: 2, note: 'ą§¶' }],
  ]);

  for (let i = 0; i < 2; i++) {
    const c = clients.make(single.port, server);
    await connected(c);
    const { seen } = await record(c, 'cache-sdk-price');
    assert.deepEqual(await settled(seen, 2, `late subscriber ${i}`), [['pusher:subscription_succeeded'], ['price', { v: 2, note: 'ą§¶' }]]);
  }
  assert.equal(early.seen.length, 4, 'existing subscribers are not sent the cached event again');
});

test('private-cache-, presence-cache- and private-encrypted-cache- channels cache too (encrypted data decrypts in pusher-js)', async () => {
  const server = sdk(single.port);
  for (const name of ['private-cache-sdk', 'presence-cache-sdk', 'private-encrypted-cache-sdk']) {
    const first = clients.make(single.port, server, { presence: { user_id: 'first', user_info: { n: 1 } } });
    await connected(first);
    const miss = await record(first, name);
    assert.deepEqual(await settled(miss.seen, 2, `${name} miss`), [['pusher:subscription_succeeded'], ['pusher:cache_miss']]);

    await server.trigger(name, 'state', { name, v: 7 });
    await settled(miss.seen, 3, `${name} live event`);
    const late = clients.make(single.port, server, { presence: { user_id: 'late', user_info: { n: 2 } } });
    await connected(late);
    const { seen } = await record(late, name);
    assert.deepEqual(await settled(seen, 2, `${name} hit`), [['pusher:subscription_succeeded'], ['state', { name, v: 7 }]], name);
  }
});

test('client events are not cached (spec §7)', async () => {
  const server = sdk(single.port);
  const talker = clients.make(single.port, server);
  await connected(talker);
  const { ch } = await record(talker, 'private-cache-chat');
  assert.equal(ch.trigger('client-typing', { who: 'talker' }), true);
  await sleep(200);
  const listener = clients.make(single.port, server);
  await connected(listener);
  const afterClient = await record(listener, 'private-cache-chat');
  assert.deepEqual(await settled(afterClient.seen, 2, 'only a client event so far'), [['pusher:subscription_succeeded'], ['pusher:cache_miss']]);

  await server.trigger('private-cache-chat', 'message', { text: 'from the api' });
  await settled(afterClient.seen, 3, 'api event live');
  assert.equal(ch.trigger('client-typing', { who: 'talker again' }), true);
  await settled(afterClient.seen, 4, 'second client event live');
  const late = clients.make(single.port, server);
  await connected(late);
  const { seen } = await record(late, 'private-cache-chat');
  assert.deepEqual(await settled(seen, 2, 'late subscriber'), [['pusher:subscription_succeeded'], ['message', { text: 'from the api' }]]);
});

test('triggerBatch caches the last event per channel', async () => {
  const server = sdk(single.port);
  const res = await server.triggerBatch([
    { channel: 'cache-batch-1', name: 'b', data: { n: 1 } },
    { channel: 'cache-batch-2', name: 'b', data: { n: 2 } },
    { channel: 'cache-batch-1', name: 'b', data: { n: 3 } },
  ]);
  assert.equal(res.status, 200);
  const c = clients.make(single.port, server);
  await connected(c);
  const one = await record(c, 'cache-batch-1');
  const two = await record(c, 'cache-batch-2');
  assert.deepEqual(await settled(one.seen, 2, 'batch 1'), [['pusher:subscription_succeeded'], ['b', { n: 3 }]]);
  assert.deepEqual(await settled(two.seen, 2, 'batch 2'), [['pusher:subscription_succeeded'], ['b', { n: 2 }]]);
});

test('GET /channels/<cache channel>?info=cache through the SDK: null when empty, then {data, ttl}', async () => {
  const server = sdk(single.port);
  const empty = await server.get({ path: '/channels/cache-sdk-info', params: { info: 'cache' } });
  assert.equal(empty.status, 200);
  assert.deepEqual(await empty.json(), { occupied: false, cache: null });

  await server.trigger('cache-sdk-info', 'snapshot', { rows: [1, 2] });
  const res = await server.get({ path: '/channels/cache-sdk-info', params: { info: 'cache' } });
  const body = (await res.json()) as { occupied: boolean; cache: { data: string; ttl: number } };
  assert.equal(body.occupied, false);
  assert.equal(body.cache.data, '{"rows":[1,2]}', 'the data string as triggered');
  assert.ok(Number.isInteger(body.cache.ttl) && body.cache.ttl > 590 && body.cache.ttl <= 600, `ttl ${body.cache.ttl} of CACHE_TTL=600`);
  assert.deepEqual(Object.keys(body.cache).sort(), ['data', 'ttl']);
});

test('across two nodes: an event triggered through one node is the cached event for subscribers on the other', async () => {
  const serverA = sdk(nodeA.port);
  const serverB = sdk(nodeB.port);
  const a = clients.make(nodeA.port, serverA);
  await connected(a);
  const miss = await record(a, 'cache-cluster-miss');
  assert.deepEqual(await settled(miss.seen, 2, 'miss on a'), [['pusher:subscription_succeeded'], ['pusher:cache_miss']]);

  await serverB.trigger('cache-cluster', 'state', { via: 'b' });
  const { seen } = await record(a, 'cache-cluster');
  assert.deepEqual(await settled(seen, 2, 'hit on a for an event triggered on b'), [['pusher:subscription_succeeded'], ['state', { via: 'b' }]]);

  const res = await serverA.get({ path: '/channels/cache-cluster', params: { info: 'cache' } });
  const body = (await res.json()) as { occupied: boolean; cache: { data: string; ttl: number } | null };
  assert.equal(body.cache?.data, '{"via":"b"}', 'node a reports the cached event triggered through node b');

  // A newer event through node a replaces it for subscribers on node b.
  await serverA.trigger('cache-cluster', 'state', { via: 'a' });
  const b = clients.make(nodeB.port, serverB);
  await connected(b);
  const onB = await record(b, 'cache-cluster');
  assert.deepEqual(await settled(onB.seen, 2, 'hit on b'), [['pusher:subscription_succeeded'], ['state', { via: 'a' }]]);
});
