// Each channel's counts and presence members in the channel's own slot on Redis Cluster (issue 22,
// points 2 and 3; presence/redis-cluster.ts): the state spread over the shards, and what holds across
// the two steps that replaced one script (the channel's step, then its webhooks moved to the streams;
// the node share written around it): webhooks exactly once and in each channel's order with two nodes
// racing, a SIGKILLed node's members and counts removed, GET /channels with counts across nodes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { startRedisCluster, type RedisClusterHandle } from '../src/testing/redis-cluster.js';
import { eventually } from '../src/testing/eventually.js';
import { RawClient, presenceAuth } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';
import { RedisKeys } from '../src/redis/keys.js';

const app = { id: 'state-app', key: 'state-key', secret: 'state-secret' };
const HOOKS = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'];
let cluster: RedisClusterHandle;
const started: NodeHandle[] = [];
const clients: RawClient[] = [];
const receivers: WebhookReceiver[] = [];

before(async () => {
  cluster = await startRedisCluster();
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(started.map((n) => n.kill()));
  await Promise.all(receivers.map((r) => r.stop()));
  await cluster?.stop();
});

/** Nodes on the cluster (or, with memory, one node of its own) with the app's webhooks going to `hooks`. */
async function nodes(ids: string[], prefix: string, hooks?: WebhookReceiver, memory = false): Promise<NodeHandle[]> {
  const config = { apps: [{ ...app, enableSubscriptionCount: true, webhooks: hooks ? [{ url: hooks.url, event_types: HOOKS }] : [] }] };
  const env: Record<string, string> = memory ? {} : { REDIS_CLUSTER_NODES: cluster.seeds.join(','), REDIS_PREFIX: prefix, NODE_LEASE_MS: '2000' };
  const ns = await Promise.all(ids.map((id) => startNode({ config, env: { ...env, NODE_ID: id, WEBHOOK_BATCH_MS: '20' } })));
  started.push(...ns);
  return ns;
}

async function raw(n: NodeHandle): Promise<RawClient> {
  const c = await RawClient.connect(n.port, app.key);
  clients.push(c);
  return c;
}

function member(c: RawClient, channel: string, userId: string) {
  const data = JSON.stringify({ user_id: userId, user_info: { name: userId } });
  return c.subscribe(channel, presenceAuth(app.key, app.secret, c.socketId, channel, data), data);
}

async function users(n: NodeHandle, channel: string): Promise<string[]> {
  const res = await rest(n.url, app, 'GET', `/apps/${app.id}/channels/${channel}/users`);
  return (res.body.users as { id: string }[]).map((u) => u.id).sort();
}

async function channelCounts(n: NodeHandle, prefix: string): Promise<Record<string, number>> {
  const res = await rest(n.url, app, 'GET', `/apps/${app.id}/channels`, undefined, { filter_by_prefix: prefix, info: 'subscription_count' });
  const out: Record<string, number> = {};
  for (const [name, info] of Object.entries(res.body.channels as Record<string, { subscription_count: number }>)) out[name] = info.subscription_count;
  return out;
}

/** Keys matching `pattern` held by the node on `port` (its own slots only). */
async function keysOn(port: number, pattern: string): Promise<number> {
  return Number(await cluster.cli(port, 'EVAL', "return #redis.call('KEYS', ARGV[1])", '0', pattern));
}

test("300 channels' counts and presence members: in each channel's slot, spread over the primaries; GET /channels counts across nodes", async () => {
  const prefix = 'spread';
  const k = new RedisKeys(prefix, { cluster: true });
  const [a, b, c] = await nodes(['s-a', 's-b', 's-c'], prefix);
  const N = 300;
  const onA = await raw(a);
  const onB = await raw(b);
  for (let i = 0; i < N; i++) {
    await onA.subscribe(`room-${i}`);
    if (i < N / 2) await onB.subscribe(`room-${i}`);
  }
  for (let i = 0; i < 30; i++) await member(onB, `presence-room-${i}`, `u${i}`);
  // Every channel's state keys hash to its pub/sub name's slot.
  for (const ch of ['room-0', 'room-299', 'presence-room-7']) {
    const slot = await cluster.keySlot(k.channel(app.id, ch));
    const s = k.channelState(app.id, ch);
    for (const key of [s.count, s.nodes, s.sockets, s.users, s.infos, s.pending, s.seq]) assert.equal(await cluster.keySlot(key), slot, key);
  }
  // Each primary holds about a third of the counts; presence members are on more than one primary.
  const primaries = (await cluster.nodes()).filter((n) => n.primary && !n.failed).map((n) => n.port);
  assert.equal(primaries.length, 3);
  const counts = await Promise.all(primaries.map((p) => keysOn(p, `${prefix}:sc:*[^n]`)));
  const presence = await Promise.all(primaries.map((p) => keysOn(p, `${prefix}:p:*:u`)));
  assert.equal(
    counts.reduce((x, y) => x + y),
    N + 30,
    `one count key per occupied channel: ${counts}`,
  );
  for (const n of counts) assert.ok(n > (N + 30) / 3 - (N + 30) / 8 && n < (N + 30) / 3 + (N + 30) / 8, `about a third on each primary: ${counts}`);
  assert.equal(
    presence.reduce((x, y) => x + y),
    30,
  );
  assert.ok(presence.filter((n) => n > 0).length >= 2, `presence members on several primaries: ${presence}`);
  // GET /channels on a third node: every channel with its count across nodes.
  const expected: Record<string, number> = {};
  for (let i = 0; i < N; i++) expected[`room-${i}`] = i < N / 2 ? 2 : 1;
  assert.deepEqual(await channelCounts(c, 'room-'), expected);
  const one = await rest(c.url, app, 'GET', `/apps/${app.id}/channels/presence-room-7`, undefined, { info: 'user_count' });
  assert.deepEqual(one.body, { occupied: true, user_count: 1 });
  // a's socket leaves: the counts drop, the channels only a had are gone.
  await onA.close();
  const after: Record<string, number> = {};
  for (let i = 0; i < N / 2; i++) after[`room-${i}`] = 1;
  await eventually(async () => JSON.stringify(await channelCounts(c, 'room-')) === JSON.stringify(after), { timeoutMs: 10_000, what: 'counts after a left' });
  assert.equal((await Promise.all(primaries.map((p) => keysOn(p, `${prefix}:sc:*[^n]`)))).reduce((x, y) => x + y), N / 2 + 30, 'vacated channels keep no count key');
});

/**
 * Rounds of one user joining on both nodes at once and leaving on both at once, and of other users each
 * joining on one node and leaving, the nodes alternating: each round waits until the members are gone.
 * Per user: member_added, member_removed, once each per round.
 */
async function raceScript(a: NodeHandle, b: NodeHandle, channel: string, rounds: number): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const socks = await Promise.all([raw(a), raw(b), ...Array.from({ length: 6 }, (_, i) => raw((i + r) % 2 ? a : b))]);
    await Promise.all([member(socks[0], channel, 'both'), member(socks[1], channel, 'both'), ...socks.slice(2).map((s, i) => member(s, channel, `solo${i}`))]);
    await Promise.all(socks.map((s) => s.close()));
    await eventually(async () => (await users(a, channel)).length === 0, { timeoutMs: 10_000, what: 'the round\'s members gone' });
  }
}

/** Per user, its member events in arrival order; the channel's occupied/vacated in arrival order. */
function sequences(hooks: WebhookReceiver, channel: string): { perUser: Record<string, string[]>; channel: string[] } {
  const perUser: Record<string, string[]> = {};
  const chan: string[] = [];
  for (const e of hooks.events()) {
    if (e.channel !== channel) continue;
    if (e.user_id === undefined) chan.push(String(e.name));
    else (perUser[String(e.user_id)] ??= []).push(String(e.name));
  }
  return { perUser, channel: chan };
}

test('two nodes racing joins and leaves on one presence channel: its webhooks exactly once and in order, as the memory store gives them', async () => {
  const ROUNDS = 4;
  const channel = 'presence-race';
  const hooks = await WebhookReceiver.start();
  receivers.push(hooks);
  const [a, b] = await nodes(['r-a', 'r-b'], 'race', hooks);
  await raceScript(a, b, channel, ROUNDS);
  const userEvents = 7 * ROUNDS * 2;
  await eventually(() => hooks.named('member_removed', channel).length + hooks.named('member_added', channel).length >= userEvents && hooks.named('channel_vacated', channel).length >= 1, {
    timeoutMs: 15_000,
    what: () => `${userEvents} member events (got ${hooks.events().length} events)`,
  });
  // The last round's vacated.
  await eventually(async () => sequences(hooks, channel).channel.at(-1) === 'channel_vacated' && (await users(a, channel)).length === 0, { timeoutMs: 10_000, what: 'vacated last' });

  const memHooks = await WebhookReceiver.start();
  receivers.push(memHooks);
  const [m] = await nodes(['r-m'], 'mem', memHooks, true);
  await raceScript(m, m, channel, ROUNDS);
  await eventually(() => memHooks.named('member_removed', channel).length >= 7 * ROUNDS, { timeoutMs: 15_000, what: 'memory store\'s member events' });

  const got = sequences(hooks, channel);
  const want = sequences(memHooks, channel);
  const alternating = (n: number) => Array.from({ length: n }, () => ['member_added', 'member_removed']).flat();
  assert.deepEqual(want.perUser.both, alternating(ROUNDS), 'the memory store: each round once');
  assert.deepEqual(got.perUser, want.perUser, 'every user\'s member_added and member_removed once per round, in order, as in memory');
  // occupied and vacated alternate, occupied first: each exactly once per time the channel filled.
  assert.ok(got.channel.length >= 2 && got.channel.length % 2 === 0, `occupied/vacated pairs: ${got.channel}`);
  got.channel.forEach((name, i) => assert.equal(name, i % 2 ? 'channel_vacated' : 'channel_occupied', `occupied/vacated alternate: ${got.channel}`));
  // Nothing left pending in the channel's slot.
  const k = new RedisKeys('race', { cluster: true });
  const port = await cluster.primaryOf(await cluster.keySlot(k.channel(app.id, channel)));
  assert.equal(await cluster.cli(port, 'LLEN', k.channelState(app.id, channel).pending), '0');
});

test("a SIGKILLed node's members removed (member_removed, webhooks) and its counts dropped, on channels of every shard", async () => {
  const prefix = 'kill';
  const k = new RedisKeys(prefix, { cluster: true });
  const hooks = await WebhookReceiver.start();
  receivers.push(hooks);
  const [a, b] = await nodes(['k-a', 'k-b'], prefix, hooks);
  const channels = Array.from({ length: 12 }, (_, i) => `presence-k${i}`);
  const shards = new Set<number>();
  for (const ch of channels) shards.add(await cluster.primaryOf(await cluster.keySlot(k.channel(app.id, ch))));
  assert.equal(shards.size, 3, 'the channels are on every shard');
  const ann = await raw(a);
  const bob = await raw(b);
  for (const ch of channels) await member(ann, ch, 'ann');
  for (const ch of channels) await member(bob, ch, 'bob');
  for (const ch of ['room-k0', 'room-k1', 'room-k2']) {
    await ann.subscribe(ch);
    await bob.subscribe(ch);
  }
  await bob.subscribe('room-only-b');
  // subscription_succeeded goes out before the count is written to Redis (Channels.subscribe): the count follows.
  const expected = { 'room-k0': 2, 'room-k1': 2, 'room-k2': 2, 'room-only-b': 1 };
  const sorted = (c: Record<string, number>) => JSON.stringify(Object.entries(c).sort());
  let counts: Record<string, number> = {};
  await eventually(async () => sorted((counts = await channelCounts(a, 'room-'))) === sorted(expected), { timeoutMs: 5_000, what: () => `the counts: ${JSON.stringify(counts)}` });
  await b.kill();
  for (const ch of channels) {
    const removed = await ann.nextEvent('pusher_internal:member_removed', ch, 15_000);
    assert.equal(JSON.parse(removed.data as string).user_id, 'bob');
  }
  for (const ch of channels) assert.deepEqual(await users(a, ch), ['ann']);
  assert.deepEqual(await channelCounts(a, 'room-'), { 'room-k0': 1, 'room-k1': 1, 'room-k2': 1 });
  await eventually(() => hooks.named('member_removed').length >= channels.length && hooks.named('channel_vacated', 'room-only-b').length === 1, { timeoutMs: 10_000, what: 'webhooks of the removal' });
  for (const ch of channels) assert.deepEqual(hooks.firstOf(ch), ['channel_occupied', 'member_added:ann', 'member_added:bob', 'member_removed:bob'], ch);
  // Nothing of b is left: not in any channel's node counts, nor its share.
  for (const ch of [...channels, 'room-k0', 'room-only-b']) {
    const port = await cluster.primaryOf(await cluster.keySlot(k.channel(app.id, ch)));
    assert.equal(await cluster.cli(port, 'HGET', k.channelState(app.id, ch).nodes, 'k-b'), '', ch);
  }
  const statePort = await cluster.primaryOf(await cluster.keySlot(k.nodes));
  assert.equal(await cluster.cli(statePort, 'EXISTS', k.nodeSubscriptions('k-b'), k.nodePresence('k-b')), '0');
  assert.equal(await cluster.cli(statePort, 'HEXISTS', k.appChannels(app.id), 'room-only-b'), '0');
});
