// Message recovery in a cluster, on the wire, when the network between a node and Redis misbehaves
// (docs/recovery.md): the node's Redis subscription drops while its clients stay connected (the gap is
// filled from the history, or the client is told), a slow subscriber connection never makes a replayed
// event arrive twice, and clients that did not opt in see recorded events when and in the order they
// would see unrecorded ones. Two nodes share a Redis; a proxy between a node and Redis slows down or
// cuts that node's subscriber connection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { subscribeRecovering, type RecoveryOutcome } from '../src/testing/recovery.js';
import { RawClient, presenceAuth, type Frame } from '../src/testing/raw-client.js';
import { startRedisProxy, type RedisProxy } from '../src/testing/redis-proxy.js';
import { rest } from '../src/testing/sign-rest.js';

const app = { id: 'feed', key: 'feed-key', secret: 'feed-secret' };
const recovery = { historySize: 2000, historyTtl: 120, channels: [{ prefix: 'small-', historySize: 3 }] };
const apps = [{ ...app, enableClientMessages: true, recovery }];

let redis: RedisHandle;
/** `direct` talks to Redis itself; `proxied`'s connections go through `proxy`. */
let direct: NodeHandle;
let proxied: NodeHandle;
let proxy: RedisProxy;
const clients: RawClient[] = [];

before(async () => {
  redis = await startRedis();
  proxy = await startRedisProxy(redis.port);
  [direct, proxied] = await Promise.all([
    startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'feed-direct' }, config: { apps } }),
    startNode({ env: { REDIS_URL: proxy.url, NODE_ID: 'feed-proxied' }, config: { apps } }),
  ]);
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all([direct, proxied].filter(Boolean).map((n) => n.kill()));
  await proxy?.close();
  await redis?.stop();
});

async function connect(n: NodeHandle): Promise<RawClient> {
  const c = await RawClient.connect(n.port, app.key);
  clients.push(c);
  return c;
}


async function trigger(n: NodeHandle, channel: string, data: string, name = 'msg'): Promise<void> {
  const res = await rest(n.url, app, 'POST', `/apps/${app.id}/events`, { name, channel, data });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

const positionOf = (f: Frame) => (f as Frame & { ripple_position?: string }).ripple_position;
const serialOf = (p: string | null | undefined) => Number(String(p).split(':')[1]);
const eventsOf = (c: RawClient, channel: string) => c.frames.filter((f) => f.channel === channel && f.event === 'msg');
const outcomesOf = (c: RawClient, channel: string) => c.frames.filter((f) => f.channel === channel && f.event === 'pusher_internal:ripple_recovery').map((f) => JSON.parse(f.data as string) as RecoveryOutcome);

async function until(c: RawClient, channel: string, count: number, ms = 10_000): Promise<Frame[]> {
  await eventually(() => eventsOf(c, channel).length >= count, { timeoutMs: ms, what: () => `${count} events on ${channel}, have ${eventsOf(c, channel).length}` });
  return eventsOf(c, channel);
}

async function metric(n: NodeHandle, name: string): Promise<number> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{app="${app.id}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/**
 * Publishes `count` events through `n` at about `perSecond`, data "0".."count-1", in batches of 10 (one
 * request at a time keeps their order); `between(i)` runs before the batch starting with event i is sent.
 */
async function publishAtRate(n: NodeHandle, channel: string, count: number, perSecond: number, between: (i: number) => Promise<void>): Promise<void> {
  const start = Date.now();
  for (let i = 0; i < count; i += 10) {
    await between(i);
    const batch = Array.from({ length: Math.min(10, count - i) }, (_, k) => ({ name: 'msg', channel, data: String(i + k) }));
    const res = await rest(n.url, app, 'POST', `/apps/${app.id}/batch_events`, { batch });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const due = start + ((i + batch.length) * 1000) / perSecond;
    if (due > Date.now()) await sleep(due - Date.now());
  }
}

test("a node's Redis subscription killed (CLIENT KILL TYPE pubsub) while the other node publishes 300 events/s: its opted-in client gets every event once, in order, told nothing; the plain channel's possible loss is counted", async () => {
  const channel = 'feed-kill';
  const positioned = await connect(direct);
  const plain = await connect(direct);
  await subscribeRecovering(positioned, channel);
  await plain.subscribe(channel);
  await plain.subscribe('feed-kill-plain-only');
  const before = await metric(direct, 'ripple_backbone_unrecovered_channels_total');
  const killer = new Redis(redis.port, '127.0.0.1');
  try {
    await publishAtRate(proxied, channel, 450, 300, async (i) => {
      if (i !== 150) return;
      // The next batch goes out at once: Redis has it before ioredis reconnects (its first retry waits 50 ms).
      const killed = await killer.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      assert.ok(Number(killed) >= 2, `both nodes' subscriber connections killed (${killed})`);
    });
  } finally {
    killer.disconnect();
  }
  const got = await until(positioned, channel, 450);
  await sleep(300);
  const serials = eventsOf(positioned, channel).map((f) => serialOf(positionOf(f)));
  assert.deepEqual(serials, Array.from({ length: 450 }, (_, i) => i + 1), 'every event once, in order, on the wire');
  assert.deepEqual(got.map((f) => f.data), Array.from({ length: 450 }, (_, i) => String(i)));
  assert.equal(outcomesOf(positioned, channel).length, 1, 'the gap was filled: no outcome but the subscribe\'s');
  await eventually(async () => (await metric(direct, 'ripple_backbone_unrecovered_channels_total')) >= before + 2, {
    timeoutMs: 5000,
    what: 'both channels with a plain subscriber counted',
  });
  assert.match(direct.output(), /did not reach its subscriptions without message recovery/);
});

test("a break in a node's feed longer than the channel's history: its opted-in client gets recovered:false (trimmed) on the open subscription, none of the gap, then live events", async () => {
  const channel = 'small-feed';
  const c = await connect(proxied);
  await subscribeRecovering(c, channel);
  await trigger(direct, channel, 'seen');
  const [seen] = await until(c, channel, 1);
  proxy.cut('subscriber');
  try {
    for (let i = 0; i < 6; i++) await trigger(direct, channel, `lost-${i}`); // the history keeps 3
  } finally {
    proxy.restore();
  }
  await eventually(() => outcomesOf(c, channel).length === 2, { timeoutMs: 10_000, what: 'an outcome for the unfilled gap' });
  const outcome = outcomesOf(c, channel)[1];
  assert.deepEqual([outcome.recovered, outcome.reason, serialOf(outcome.position)], [false, 'trimmed', serialOf(positionOf(seen)) + 6]);
  await trigger(direct, channel, 'live');
  const got = await until(c, channel, 2);
  await sleep(200);
  assert.deepEqual(eventsOf(c, channel).map((f) => [f.data, serialOf(positionOf(f))]), [['seen', 1], ['live', 8]]);
  assert.ok(c.frames.indexOf(got[1]) > c.frames.map((f) => f.event).lastIndexOf('pusher_internal:ripple_recovery'), 'told before live events');
});

test('a slow subscriber connection: the event a recovering subscribe replays last never comes again as its first live one', async () => {
  const channel = 'slow-feed';
  const watcher = await connect(proxied); // the node already receives the channel
  await watcher.subscribe(channel);
  const c1 = await connect(proxied);
  await subscribeRecovering(c1, channel);
  await trigger(direct, channel, 'one');
  const [one] = await until(c1, channel, 1);
  c1.ws.terminate();
  proxy.delaySubscriber(300);
  try {
    await trigger(direct, channel, 'two'); // it reaches the proxied node 300 ms after Redis numbered it
    await eventually(async () => serialOf((await rest(direct.url, app, 'GET', `/apps/${app.id}/channels/${channel}/history`)).body.position as string) === 2, {
      timeoutMs: 2000,
      what: 'the event kept',
    });
    const c2 = await connect(proxied);
    const outcome = await subscribeRecovering(c2, channel, { position: positionOf(one) });
    assert.deepEqual([outcome.recovered, outcome.replayed], [true, 1]);
    await trigger(direct, channel, 'three');
    await until(c2, channel, 2);
    await sleep(700);
    assert.deepEqual(eventsOf(c2, channel).map((f) => [f.data, serialOf(positionOf(f))]), [['two', 2], ['three', 3]], 'each event once');
  } finally {
    proxy.delaySubscriber(0);
  }
});

test('a client that did not opt in never gets an event the backend published while it was unsubscribed, on the publishing node with a slow subscriber connection', async () => {
  const channel = 'plain-resub';
  const watcher = await connect(proxied); // the node keeps receiving the channel
  await watcher.subscribe(channel);
  const c = await connect(proxied);
  await c.subscribe(channel);
  proxy.delaySubscriber(300);
  try {
    c.send({ event: 'pusher:unsubscribe', data: { channel } });
    await sleep(100);
    await trigger(proxied, channel, 'while-away');
    await c.subscribe(channel);
    await trigger(proxied, channel, 'after');
    await sleep(800);
    assert.deepEqual(eventsOf(c, channel).map((f) => f.data), ['after']);
    assert.ok(!c.raw.some((r) => r.includes('ripple')), 'no ripple field or frame');
  } finally {
    proxy.delaySubscriber(0);
  }
});

test('a client that did not opt in sees an event published before a member joined before that member_added, on the publishing node with a slow subscriber connection', async () => {
  const channel = 'presence-plain-order';
  const member = (id: string) => JSON.stringify({ user_id: id });
  const x = await connect(proxied);
  await x.subscribe(channel, presenceAuth(app.key, app.secret, x.socketId, channel, member('x')), member('x'));
  proxy.delaySubscriber(300);
  try {
    await trigger(proxied, channel, 'before-y');
    const y = await connect(proxied);
    await y.subscribe(channel, presenceAuth(app.key, app.secret, y.socketId, channel, member('y')), member('y'));
    await x.nextEvent('pusher_internal:member_added', channel);
    await sleep(800);
    const order = x.frames.filter((f) => f.channel === channel && (f.event === 'msg' || f.event === 'pusher_internal:member_added')).map((f) => f.event);
    assert.deepEqual(order, ['msg', 'pusher_internal:member_added']);
  } finally {
    proxy.delaySubscriber(0);
  }
});
