// Three ripple nodes on a Redis Cluster of three primaries and three replicas (issue 22): channel traffic
// over sharded pub/sub spread over every shard, delivery exactly once across nodes, presence, REST
// queries and a crashed node's cleanup, each channel's state in its own slot (redis-cluster-state.test.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import PusherServer from 'pusher';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { startRedisCluster, type RedisClusterHandle } from '../src/testing/redis-cluster.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient, presenceAuth } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { RedisKeys } from '../src/redis/keys.js';

const app = { id: 'app-id', key: 'app-key', secret: 'app-secret' };
let cluster: RedisClusterHandle;
const started: NodeHandle[] = [];
const clients: { close(): unknown }[] = [];

async function node(id: string, env: Record<string, string> = {}): Promise<NodeHandle> {
  const n = await startNode({
    env: { REDIS_CLUSTER_NODES: cluster.seeds.join(','), NODE_ID: id, NODE_LEASE_MS: '2000', APP_ENABLE_SUBSCRIPTION_COUNT: '1', APP_ENABLE_CLIENT_MESSAGES: 'true', ...env },
  });
  started.push(n);
  return n;
}

async function raw(n: NodeHandle): Promise<RawClient> {
  const c = await RawClient.connect(n.port, app.key);
  clients.push({ close: () => c.ws.terminate() });
  return c;
}

function member(c: RawClient, channel: string, userId: string) {
  const data = JSON.stringify({ user_id: userId, user_info: { name: userId } });
  return c.subscribe(channel, presenceAuth(app.key, app.secret, c.socketId, channel, data), data);
}

before(async () => {
  cluster = await startRedisCluster();
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(started.map((n) => n.kill()));
  await cluster?.stop();
});

test("channels' pub/sub names and keys spread over every shard; one channel's keys share its pub/sub name's slot", async () => {
  const k = new RedisKeys('ripple', { cluster: true });
  const perPrimary = new Map<number, number>();
  const N = 300;
  const c = new Cluster(cluster.seeds.map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })));
  try {
    for (let i = 0; i < N; i++) {
      const name = k.channel(app.id, `private-room-${i}`);
      const slot = Number(await c.cluster('KEYSLOT', name));
      const h = k.history(app.id, `private-room-${i}`);
      for (const key of [h.epoch, h.serial, h.events, h.senders, k.cache(app.id, `private-room-${i}`)]) assert.equal(Number(await c.cluster('KEYSLOT', key)), slot);
      const p = await cluster.primaryOf(slot);
      perPrimary.set(p, (perPrimary.get(p) ?? 0) + 1);
    }
  } finally {
    c.disconnect();
  }
  assert.equal(perPrimary.size, 3, 'every primary serves some channels');
  for (const n of perPrimary.values()) assert.ok(n > N / 3 - N / 8 && n < N / 3 + N / 8, `about a third each: ${[...perPrimary.values()]}`);
});

test('an event triggered on one node reaches subscribers on every node exactly once, in order, on channels of every shard', async () => {
  const [a, b, c] = await Promise.all([node('d-a'), node('d-b'), node('d-c')]);
  const server = new PusherServer({ ...app, appId: app.id, host: '127.0.0.1', port: String(c.port), useTLS: false });
  const channels = Array.from({ length: 10 }, (_, i) => `orders-${i}`);
  const subs = [await raw(a), await raw(b), await raw(c)];
  for (const s of subs) for (const ch of channels) await s.subscribe(ch);
  for (let i = 0; i < 10; i++) await server.triggerBatch(channels.map((ch) => ({ channel: ch, name: 'shipped', data: { n: i } })));
  const got = (s: RawClient, ch: string) => s.frames.filter((f) => f.event === 'shipped' && f.channel === ch).map((f) => JSON.parse(f.data as string).n);
  await eventually(() => subs.every((s) => channels.every((ch) => got(s, ch).length >= 10)), { timeoutMs: 10_000, what: 'all events delivered' });
  await sleep(300);
  for (const s of subs) for (const ch of channels) assert.deepEqual(got(s, ch), [...Array(10).keys()], `${ch}: each event once, in order`);
  // The shards that carried them: more than one primary holds these channels.
  const k = new RedisKeys('ripple', { cluster: true });
  const primaries = new Set<number>();
  for (const ch of channels) primaries.add(await cluster.primaryOf(await cluster.keySlot(k.channel(app.id, ch))));
  assert.ok(primaries.size >= 2, 'the channels are on several shards');
  // Exclusion across nodes.
  await server.trigger('orders-0', 'shipped', { n: 99 }, { socket_id: subs[0].socketId });
  await eventually(() => got(subs[1], 'orders-0').includes(99) && got(subs[2], 'orders-0').includes(99), { timeoutMs: 5000, what: 'non-excluded sockets got it' });
  await sleep(200);
  assert.ok(!got(subs[0], 'orders-0').includes(99), 'the excluded socket did not');
});

test('presence across nodes, REST queries, and a SIGKILLed node\'s members removed within the lease', async () => {
  const [a, b] = await Promise.all([node('p-a'), node('p-b')]);
  const ann = await raw(a);
  const bob = await raw(b);
  await member(ann, 'presence-room', 'ann');
  await member(bob, 'presence-room', 'bob');
  assert.equal(JSON.parse((await ann.nextEvent('pusher_internal:member_added', 'presence-room')).data as string).user_id, 'bob');
  for (const n of [a, b]) {
    const users = await rest(n.url, app, 'GET', `/apps/${app.id}/channels/presence-room/users`);
    assert.deepEqual((users.body.users as { id: string }[]).map((u) => u.id).sort(), ['ann', 'bob']);
    const ch = await rest(n.url, app, 'GET', `/apps/${app.id}/channels/presence-room`, undefined, { info: 'user_count' });
    assert.deepEqual(ch.body, { occupied: true, user_count: 2 });
    const list = await rest(n.url, app, 'GET', `/apps/${app.id}/channels`, undefined, { filter_by_prefix: 'presence-', info: 'user_count' });
    assert.deepEqual(list.body, { channels: { 'presence-room': { user_count: 2 } } });
  }
  // A client event crosses nodes.
  ann.send({ event: 'client-typing', channel: 'presence-room', data: { on: true } });
  assert.equal((await bob.nextEvent('client-typing', 'presence-room')).user_id, 'ann');
  // Node b dies: ann hears member_removed for bob within the lease.
  const t0 = Date.now();
  await b.kill();
  const removed = await ann.nextEvent('pusher_internal:member_removed', 'presence-room', 15_000);
  assert.equal(JSON.parse(removed.data as string).user_id, 'bob');
  assert.ok(Date.now() - t0 < 15_000);
  const users = await rest(a.url, app, 'GET', `/apps/${app.id}/channels/presence-room/users`);
  assert.deepEqual((users.body.users as { id: string }[]).map((u) => u.id), ['ann']);
});
