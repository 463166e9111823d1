// The Redis Cluster presence store's second step, on one redis-server (its scripts are single-slot, so
// one server runs them as a cluster would, faster): a channel's transitions reach the webhook stream
// exactly once and in order however many movers race, also after the sequence number and the record
// of the last moved expired; and the same steps queue the same webhooks as the one-Redis store.
// Across nodes and shards: protocol-tests/redis-cluster-state.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisKeys } from '../redis/keys.js';
import { freePort, startRedis, type RedisHandle } from '../testing/harness.js';
import { RedisClusterPresenceStore } from './redis-cluster.js';
import { RedisPresenceStore } from './redis.js';
import type { TransitionRouter } from './store.js';

let redis: RedisHandle;
let client: Redis;
const clients: Redis[] = [];
const routes: TransitionRouter = { any: true, routes: () => ({ occupied: ['q'], vacated: ['q'], added: ['q'], removed: ['q'] }) };

before(async () => {
  redis = await startRedis(await freePort()); // one redis-server, also under RIPPLE_TEST_REDIS=cluster
  client = new Redis(redis.url);
});
after(async () => {
  for (const c of [client, ...clients]) c.disconnect();
  await redis?.stop();
});

async function store(kind: 'cluster' | 'one', prefix: string, nodeId: string): Promise<RedisClusterPresenceStore | RedisPresenceStore> {
  const r = new Redis(redis.url);
  clients.push(r);
  await new Promise<void>((ok) => r.once('ready', () => ok()));
  const o = { redis: r, keys: new RedisKeys(prefix, { cluster: kind === 'cluster' }), nodeId, log: pino({ level: 'silent' }), lease: { leaseMs: 5000, rejoinSoon: () => {} }, routes };
  const s = kind === 'cluster' ? new RedisClusterPresenceStore(o) : new RedisPresenceStore(o);
  await s.rejoin();
  return s;
}

/** The webhook stream of queue q: "name" or "name:user" (after "channel " with `channels`), oldest first. */
async function stream(prefix: string, cluster: boolean, channels = false): Promise<string[]> {
  const entries = await client.xrange(new RedisKeys(prefix, { cluster }).webhookStream('q'), '-', '+');
  return entries.map(([, f]) => {
    const ev = (JSON.parse(f[1]) as { ev: { name: string; channel: string; user_id?: string } }).ev;
    return `${channels ? `${ev.channel} ` : ''}${ev.user_id ? `${ev.name}:${ev.user_id}` : ev.name}`;
  });
}

/** Moves a channel's pending transitions as a node does (the store's own step), for racing it. */
const move = (s: RedisClusterPresenceStore, channel: string) => (s as unknown as { move(a: string, c: string): Promise<void> }).move('a1', channel);

test('racing movers and stores: each transition of a channel reaches the stream once, in the channel\'s order, also after its sequence keys expired', async () => {
  const prefix = 'race';
  const keys = new RedisKeys(prefix, { cluster: true });
  const [n1, n2] = (await Promise.all([store('cluster', prefix, 'n1'), store('cluster', prefix, 'n2')])) as RedisClusterPresenceStore[];
  const ch = 'presence-r';
  const ROUNDS = 30;
  for (let r = 0; r < ROUNDS; r++) {
    // Both nodes join and leave user u (and their own users) at once, with extra movers on both.
    const hammer = () => Promise.all([move(n1, ch), move(n2, ch), move(n1, ch), move(n2, ch)]);
    await Promise.all([n1.subscribePresence('a1', ch, `s1-${r}`, { userId: 'u', userInfo: null }, 100), n2.subscribePresence('a1', ch, `s2-${r}`, { userId: 'u', userInfo: null }, 100), n2.subscribePresence('a1', ch, `t2-${r}`, { userId: `v${r % 3}`, userInfo: null }, 100), hammer()]);
    await Promise.all([n1.unsubscribePresence('a1', ch, `s1-${r}`, 'u'), n2.unsubscribePresence('a1', ch, `s2-${r}`, 'u'), n2.unsubscribePresence('a1', ch, `t2-${r}`, `v${r % 3}`), hammer()]);
    // Halfway, the channel's sequence number and the record of the last moved expire (a quiet hour).
    if (r === ROUNDS / 2) await client.del(keys.channelState('a1', ch).seq, keys.webhookMoved('a1', ch));
  }
  await Promise.all([move(n1, ch), move(n2, ch)]);
  const got = await stream(prefix, true);
  const expected = Array.from({ length: ROUNDS }, (_, r) => ['channel_occupied', 'member_added:u', `member_added:v${r % 3}`, 'member_removed:u', `member_removed:v${r % 3}`, 'channel_vacated']);
  // Per user and for the channel, the same sequence as the rounds made (two users' events of one round may interleave).
  const only = (xs: string[], keep: (x: string) => boolean) => xs.filter(keep);
  const isUser = (u: string) => (x: string) => x.endsWith(`:${u}`);
  const isChannel = (x: string) => !x.includes(':');
  assert.equal(got.length, expected.flat().length, `each transition once: ${got.length} of ${expected.flat().length}`);
  for (const keep of [isUser('u'), isUser('v0'), isUser('v1'), isUser('v2'), isChannel]) assert.deepEqual(only(got, keep), only(expected.flat(), keep));
  assert.equal(await client.llen(keys.channelState('a1', ch).pending), 0, 'nothing left pending');
  assert.ok((await client.pttl(keys.webhookMoved('a1', ch))) > 0, 'the record of the last moved expires');
});

test('the same steps queue the same webhooks as the one-Redis store, and a refused join queues nothing', async () => {
  const steps = async (s: RedisClusterPresenceStore | RedisPresenceStore) => {
    await s.addSubscription('a1', 'room');
    await s.subscribePresence('a1', 'presence-x', '1', { userId: 'ann', userInfo: null }, 2);
    await s.subscribePresence('a1', 'presence-x', '2', { userId: 'bob', userInfo: null }, 2);
    assert.deepEqual(await s.subscribePresence('a1', 'presence-x', '3', { userId: 'cid', userInfo: null }, 2), { refused: true });
    await s.subscribePresence('a1', 'presence-x', '4', { userId: 'ann', userInfo: null }, 2);
    await s.unsubscribePresence('a1', 'presence-x', '1', 'ann');
    await s.unsubscribePresence('a1', 'presence-x', '2', 'bob');
    await s.unsubscribePresence('a1', 'presence-x', '4', 'ann');
    await s.removeSubscription('a1', 'room');
  };
  await steps(await store('one', 'same1', 'n'));
  await steps(await store('cluster', 'same2', 'n'));
  const one = await stream('same1', false, true);
  assert.deepEqual(one, [
    'room channel_occupied', 'presence-x channel_occupied', 'presence-x member_added:ann', 'presence-x member_added:bob',
    'presence-x member_removed:bob', 'presence-x member_removed:ann', 'presence-x channel_vacated', 'room channel_vacated',
  ]);
  // Each channel's in the same order (two channels' webhooks are not ordered on Redis Cluster).
  const cluster = await stream('same2', true, true);
  for (const ch of ['room ', 'presence-x ']) assert.deepEqual(cluster.filter((e) => e.startsWith(ch)), one.filter((e) => e.startsWith(ch)));
  assert.equal(cluster.length, one.length);
});
