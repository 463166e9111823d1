// Subscription counts (issue "Deliver" item 6; spec §8, §9.3): with the app option on, every subscribe
// and unsubscribe on a non-presence channel sends pusher_internal:subscription_count to its subscribers,
// which pusher-js exposes as the channel's 'pusher:subscription_count' event and channel.subscriptionCount;
// counts are cluster-wide; nothing is sent when the option is off or for presence channels.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient } from '../src/testing/raw-client.js';
import { app, Clients, connected, disconnect, sdk, subscribed, type Channel, type Client } from './support-users.js';

const enabled = { APP_ENABLE_SUBSCRIPTION_COUNT: 'true' };
let redis: RedisHandle;
let counted: NodeHandle;
let plain: NodeHandle;
let nodeA: NodeHandle;
let nodeB: NodeHandle;
const clients = new Clients();
const raws: RawClient[] = [];

before(async () => {
  redis = await startRedis();
  [counted, plain, nodeA, nodeB] = await Promise.all([
    startNode({ env: enabled }),
    startNode(),
    startNode({ env: { ...enabled, REDIS_URL: redis.url, NODE_ID: 'count-a' } }),
    startNode({ env: { ...enabled, REDIS_URL: redis.url, NODE_ID: 'count-b' } }),
  ]);
});

after(async () => {
  clients.closeAll();
  for (const r of raws) r.ws.terminate();
  await Promise.all([counted, plain, nodeA, nodeB].filter(Boolean).map((n) => n.kill()));
  await redis?.stop();
});

interface Counted {
  ch: Channel;
  counts: number[];
}

/** Subscribes with a 'pusher:subscription_count' listener bound before the subscription is sent. */
async function subscribeCounting(c: Client, name: string): Promise<Counted> {
  const counts: number[] = [];
  const ch = c.p.channel(name) ?? c.p.subscribe(name);
  ch.bind('pusher:subscription_count', (d: { subscription_count: number }) => counts.push(d.subscription_count));
  await subscribed(c, name);
  return { ch, counts };
}

const countOf = (ch: Channel) => (ch as unknown as { subscriptionCount?: number | null }).subscriptionCount;

async function sees(subs: Counted[], expected: number[][], what: string): Promise<void> {
  await eventually(() => subs.every((s, i) => s.counts.length >= expected[i].length), { timeoutMs: 3000, what: () => `${what}: ${JSON.stringify(subs.map((s) => s.counts))}` });
  await sleep(250);
  assert.deepEqual(subs.map((s) => s.counts), expected, what);
  for (const [i, s] of subs.entries()) {
    if (expected[i].length) assert.equal(countOf(s.ch), expected[i][expected[i].length - 1], `${what}: channel.subscriptionCount`);
  }
}

test('pusher-js receives the channel\'s count on each subscribe and unsubscribe, and channel.subscriptionCount follows', async () => {
  const server = sdk(counted.port);
  const [c1, c2, c3] = [0, 1, 2].map(() => clients.make(counted.port, server));
  await Promise.all([c1, c2, c3].map((c) => connected(c)));
  const s1 = await subscribeCounting(c1, 'sc-room');
  await sees([s1], [[1]], 'first subscriber');
  const s2 = await subscribeCounting(c2, 'sc-room');
  await sees([s1, s2], [[1, 2], [2]], 'second subscriber');
  const s3 = await subscribeCounting(c3, 'sc-room');
  await sees([s1, s2, s3], [[1, 2, 3], [2, 3], [3]], 'third subscriber');
  c2.p.unsubscribe('sc-room');
  await sees([s1, s2, s3], [[1, 2, 3, 2], [2, 3], [3, 2]], 'second unsubscribed');
  await disconnect(c3);
  await sees([s1, s2, s3], [[1, 2, 3, 2, 1], [2, 3], [3, 2]], 'third disconnected');

  // The REST API agrees (spec §9.3).
  const res = await server.get({ path: '/channels/sc-room', params: { info: 'subscription_count' } });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { occupied: true, subscription_count: 1 });
  const trig = await server.trigger('sc-room', 'x', {}, { info: 'subscription_count' });
  assert.deepEqual(await trig.json(), { channels: { 'sc-room': { subscription_count: 1 } } });
});

test('private channels are counted too; presence channels never get subscription_count', async () => {
  const server = sdk(counted.port);
  const a = clients.make(counted.port, server, { presence: { user_id: 'count-a' } });
  const b = clients.make(counted.port, server, { presence: { user_id: 'count-b' } });
  await Promise.all([connected(a), connected(b)]);
  const pa = await subscribeCounting(a, 'private-sc');
  const pb = await subscribeCounting(b, 'private-sc');
  await sees([pa, pb], [[1, 2], [2]], 'private channel');

  const ra = await subscribeCounting(a, 'presence-sc');
  const rb = await subscribeCounting(b, 'presence-sc');
  await sleep(400);
  assert.deepEqual([ra.counts, rb.counts], [[], []]);
  for (const c of [a, b]) {
    assert.deepEqual(
      c.frames.filter((f) => f.event === 'pusher_internal:subscription_count' && f.channel === 'presence-sc'),
      [],
      'no subscription_count frames on a presence channel',
    );
  }
});

test('on the wire: {"subscription_count":n} on the channel, and a repeated subscribe from one socket counts once', async () => {
  const c1 = await RawClient.connect(counted.port, app.key);
  const c2 = await RawClient.connect(counted.port, app.key);
  raws.push(c1, c2);
  await c1.subscribe('sc-wire');
  const first = await c1.nextEvent('pusher_internal:subscription_count', 'sc-wire');
  assert.deepEqual(typeof first.data === 'string' ? JSON.parse(first.data) : first.data, { subscription_count: 1 });
  await c1.subscribe('sc-wire'); // duplicate (spec §3.6, §8: one socket counts once per channel)
  assert.ok(await c1.nothing((f) => f.event === 'pusher_internal:subscription_count', 400), 'no change, no event');
  await c2.subscribe('sc-wire');
  for (const c of [c1, c2]) {
    const f = await c.nextEvent('pusher_internal:subscription_count', 'sc-wire');
    assert.deepEqual(typeof f.data === 'string' ? JSON.parse(f.data) : f.data, { subscription_count: 2 });
  }
});

test('disabled (the default): no subscription_count frames and channel.subscriptionCount stays unset', async () => {
  const server = sdk(plain.port);
  const [c1, c2] = [0, 1].map(() => clients.make(plain.port, server));
  await Promise.all([c1, c2].map((c) => connected(c)));
  const s1 = await subscribeCounting(c1, 'sc-off');
  const s2 = await subscribeCounting(c2, 'sc-off');
  c2.p.unsubscribe('sc-off');
  await sleep(500);
  assert.deepEqual([s1.counts, s2.counts], [[], []]);
  for (const s of [s1, s2]) assert.ok(countOf(s.ch) == null, `subscriptionCount unset, got ${countOf(s.ch)}`);
  for (const c of [c1, c2]) assert.deepEqual(c.frames.filter((f) => f.event === 'pusher_internal:subscription_count'), []);
});

test('across two nodes: counts are cluster-wide and reach subscribers on both nodes', async () => {
  const serverA = sdk(nodeA.port);
  const serverB = sdk(nodeB.port);
  const a1 = clients.make(nodeA.port, serverA);
  const b1 = clients.make(nodeB.port, serverB);
  const b2 = clients.make(nodeB.port, serverB);
  await Promise.all([a1, b1, b2].map((c) => connected(c)));
  const sa1 = await subscribeCounting(a1, 'sc-cluster');
  await sees([sa1], [[1]], 'first subscriber on a');
  await sleep(200);
  const sb1 = await subscribeCounting(b1, 'sc-cluster');
  await sees([sa1, sb1], [[1, 2], [2]], 'second subscriber, on b');
  const sb2 = await subscribeCounting(b2, 'sc-cluster');
  await sees([sa1, sb1, sb2], [[1, 2, 3], [2, 3], [3]], 'third subscriber, on b');
  await disconnect(b1);
  await sees([sa1, sb1, sb2], [[1, 2, 3, 2], [2, 3], [3, 2]], 'one on b left');

  for (const server of [serverA, serverB]) {
    const res = await server.get({ path: '/channels/sc-cluster', params: { info: 'subscription_count' } });
    assert.deepEqual(await res.json(), { occupied: true, subscription_count: 2 });
  }
});

test('a node crash lowers the count: the survivor\'s subscribers get the cluster-wide count without the dead node\'s sockets', async () => {
  const crashRedis = await startRedis();
  const lease = { ...enabled, REDIS_URL: crashRedis.url, NODE_LEASE_MS: '2000' };
  const [survivor, doomed] = await Promise.all([
    startNode({ env: { ...lease, NODE_ID: 'count-survivor' } }),
    startNode({ env: { ...lease, NODE_ID: 'count-doomed' } }),
  ]);
  try {
    const serverS = sdk(survivor.port);
    const serverD = sdk(doomed.port);
    const s1 = clients.make(survivor.port, serverS);
    const d1 = clients.make(doomed.port, serverD);
    const d2 = clients.make(doomed.port, serverD);
    await Promise.all([s1, d1, d2].map((c) => connected(c)));
    const ss1 = await subscribeCounting(s1, 'sc-crash');
    await sees([ss1], [[1]], 'first subscriber, on the survivor');
    await subscribeCounting(d1, 'sc-crash');
    await sees([ss1], [[1, 2]], 'second subscriber, on the doomed node');
    await subscribeCounting(d2, 'sc-crash');
    await sees([ss1], [[1, 2, 3]], 'third subscriber, on the doomed node');

    await doomed.kill();
    // The lease (2 s) runs out, the survivor removes the dead node's share and tells its subscribers.
    await eventually(() => ss1.counts.length >= 4, { timeoutMs: 8000, what: () => `after the crash: ${JSON.stringify(ss1.counts)}` });
    assert.deepEqual(ss1.counts, [1, 2, 3, 1]);
    assert.equal(countOf(ss1.ch), 1);
    const res = await serverS.get({ path: '/channels/sc-crash', params: { info: 'subscription_count' } });
    assert.deepEqual(await res.json(), { occupied: true, subscription_count: 1 });
  } finally {
    await Promise.all([survivor.kill(), doomed.kill()]);
    await crashRedis.stop();
  }
});
