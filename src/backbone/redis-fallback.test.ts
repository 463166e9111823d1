// The Redis Cluster backbone's fallback (backbone/redis.ts): a plain channel's frames that their shard
// does not take, while a shard is failing, go also by classic PUBLISH on the fallback channel, and the
// receivers drop whichever copy comes second. A failing shard is made here by freezing the channel's
// primary (SIGSTOP: its connections stay up and take nothing; the cluster flags it failing after its
// node timeout, and with no replica nothing replaces it), so what the test sees depends on state, not
// on timing: a frame delivered while its primary is frozen came by the fallback. A shard that is only
// slow (CLIENT PAUSE WRITE: SPUBLISH waits, the cluster sees the node well) does not open the fallback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Redis } from 'ioredis';
import { startRedisCluster, type RedisClusterHandle } from '../testing/redis-cluster.js';
import { freePort, startRedis, type RedisHandle } from '../testing/harness.js';
import { eventually } from '../testing/eventually.js';
import { commandClient, subscriberClient, whenReady, type RedisTarget } from '../redis/clients.js';
import { RedisKeys } from '../redis/keys.js';
import type { BackboneHandlers } from './backbone.js';
import { FALLBACK_AFTER_MS, RedisBackbone } from './redis.js';

const log = pino({ level: 'silent' });
const limits = { events: 10_000, bytes: 10_000_000, maxAgeMs: 60_000 };

let cluster: RedisClusterHandle;
const open: { backbone: RedisBackbone; pub: Redis; sub: Redis }[] = [];

before(async () => {
  cluster = await startRedisCluster({ primaries: 3, replicas: 0 });
});

after(async () => {
  for (const o of open) {
    await o.backbone.close().catch(() => {});
    o.pub.disconnect();
    o.sub.disconnect();
  }
  await cluster?.stop();
});

/** A started backbone on `target`; `got` collects "<channel> <frame>" of what it delivers from other nodes. */
async function backbone(target: RedisTarget, keys: RedisKeys, nodeId: string): Promise<{ b: RedisBackbone; got: string[] }> {
  const pub = commandClient(target, `${nodeId}-pub`);
  const sub = subscriberClient(target, `${nodeId}-sub`, !!target.clusterNodes);
  await Promise.all([whenReady(pub, 10_000), whenReady(sub, 10_000)]);
  const b = new RedisBackbone({ pub, sub, keys, nodeId, limits, resubscribeGraceMs: 0, log });
  open.push({ backbone: b, pub, sub });
  const got: string[] = [];
  const handlers: BackboneHandlers = {
    frames: { deliver: (_app, channel, frame, _except, _position, _bytes, audience) => audience !== 'plain' && got.push(`${channel} ${frame}`) },
    commands: { command() {} },
    feed: { feedBroken() {}, feedResumed() {} },
  };
  await b.start(handlers);
  return { b, got };
}

/** A primary none of whose clients subscribes to `channel` (classic pub/sub). */
async function primaryWithoutSubscribers(channel: string): Promise<number> {
  for (const n of await cluster.nodes()) {
    if (n.primary && Number((await cluster.cli(n.port, 'PUBSUB', 'NUMSUB', channel)).split('\n')[1]) === 0) return n.port;
  }
  throw new Error(`every primary has a subscriber of ${channel}`);
}

/** Subscribers of `channel` over every node of the cluster (PUBSUB NUMSUB answers for one node). */
async function classicSubscribers(channel: string): Promise<number> {
  let n = 0;
  for (const p of cluster.ports) n += Number((await cluster.cli(p, 'PUBSUB', 'NUMSUB', channel)).split('\n')[1]);
  return n;
}

test('a plain frame its shard does not take reaches the other node by the fallback, once and in order; the late sharded copies and recorded frames are not routed through it', async () => {
  const keys = new RedisKeys('fb', { cluster: true });
  const target = { clusterNodes: cluster.seeds };
  const sender = await backbone(target, keys, 'sender');
  const receiver = await backbone(target, keys, 'receiver');
  await eventually(async () => (await classicSubscribers(keys.fallback)) === 2, { timeoutMs: 10_000, retryThrows: true, what: 'both nodes subscribed to the fallback channel' });

  // A channel whose primary holds neither node's fallback subscription (a frozen node's subscribers hear
  // nothing, and stay there while its connections look up).
  const primary = await primaryWithoutSubscribers(keys.fallback);
  let app = '';
  for (let i = 0; i < 100 && !app; i++) if ((await cluster.primaryOf(await cluster.keySlot(keys.channel(`a${i}`, 'plain')))) === primary) app = `a${i}`;
  receiver.b.addInterest(app, 'plain');
  receiver.b.addInterest(app, 'recorded');
  await receiver.b.interestReady(app, 'plain');
  await receiver.b.interestReady(app, 'recorded');
  sender.b.publish(app, 'plain', 'f0');
  await eventually(() => receiver.got.includes('plain f0'), { timeoutMs: 10_000, what: 'the first frame by its shard' });

  process.kill(cluster.pid(primary), 'SIGSTOP');
  try {
    sender.b.publishRecorded(app, 'recorded', 'r1', { size: 10, ttlMs: 60_000 });
    for (let i = 1; i <= 5; i++) sender.b.publish(app, 'plain', `f${i}`);
    // A channel the receiver has no subscriber of: every node hears the fallback, only interest is delivered.
    sender.b.publish(app, 'nobody', 'x');
    sender.b.publish(app, 'plain', 'f6');
    await eventually(() => receiver.got.includes('plain f6'), { timeoutMs: 10_000, what: 'the frames sent while the primary is frozen' });
    assert.ok(sender.b.buffered.events > 0, 'the sharded writes are still queued: what arrived came by the fallback');
    assert.ok(sender.b.fallbackSent >= 6, `the fallback frames are counted (${sender.b.fallbackSent})`);
    assert.equal(sender.b.written(), undefined, 'a stuck write holds no REST answer');
  } finally {
    process.kill(cluster.pid(primary), 'SIGCONT');
  }
  await eventually(() => sender.b.buffered.events === 0, { timeoutMs: 10_000, what: 'the queued writes taken once the shard is back' });
  // After the late sharded copies (same channel, same shard connection): a last frame.
  sender.b.publish(app, 'plain', 'f7');
  await eventually(() => receiver.got.includes('plain f7') && receiver.got.includes('recorded r1'), { timeoutMs: 10_000, what: 'the frames after the pause' });
  const plain = receiver.got.filter((g) => g.startsWith('plain '));
  assert.deepEqual(plain, ['plain f0', 'plain f1', 'plain f2', 'plain f3', 'plain f4', 'plain f5', 'plain f6', 'plain f7'], 'each once, in order: fallback copies and late sharded copies dropped');
  assert.deepEqual(receiver.got.filter((g) => !g.startsWith('plain ')), ['recorded r1'], 'the recorded frame by its shard only; nothing of a channel without interest');
});

test('a shard that is slow but not failing (CLIENT PAUSE WRITE, past the fallback\'s threshold) does not open the fallback: its frames wait for it, once each and in order', async () => {
  await cluster.waitHealthy();
  const keys = new RedisKeys('fb2', { cluster: true });
  const target = { clusterNodes: cluster.seeds };
  const sender = await backbone(target, keys, 'slow-sender');
  const receiver = await backbone(target, keys, 'slow-receiver');
  receiver.b.addInterest('a1', 'plain');
  await receiver.b.interestReady('a1', 'plain');
  sender.b.publish('a1', 'plain', 'f0');
  await eventually(() => receiver.got.includes('plain f0'), { timeoutMs: 10_000, what: 'the first frame by its shard' });
  const primary = await cluster.primaryOf(await cluster.keySlot(keys.channel('a1', 'plain')));
  await cluster.cli(primary, 'CLIENT', 'PAUSE', '1500', 'WRITE');
  for (let i = 1; i <= 5; i++) sender.b.publish('a1', 'plain', `f${i}`);
  await new Promise((r) => setTimeout(r, 10 * FALLBACK_AFTER_MS));
  assert.ok(sender.b.buffered.events > 0, 'the writes waited past the threshold');
  assert.deepEqual(receiver.got, ['plain f0'], 'nothing by the fallback while the shard is only slow');
  await eventually(() => receiver.got.length === 6 && sender.b.buffered.events === 0, { timeoutMs: 10_000, what: 'the frames once the pause ends' });
  assert.deepEqual(receiver.got, ['plain f0', 'plain f1', 'plain f2', 'plain f3', 'plain f4', 'plain f5']);
  assert.equal(sender.b.fallbackSent, 0, 'no frame sent by the fallback');
});

test('on one Redis the backbone subscribes no fallback channel and flags nothing for it', async () => {
  let redis: RedisHandle | undefined;
  try {
    redis = await startRedis(await freePort()); // one redis-server, whatever RIPPLE_TEST_REDIS says
    const keys = new RedisKeys('fb1');
    const sender = await backbone({ url: redis.url }, keys, 'one-sender');
    const receiver = await backbone({ url: redis.url }, keys, 'one-receiver');
    receiver.b.addInterest('a1', 'plain');
    await receiver.b.interestReady('a1', 'plain');
    sender.b.publish('a1', 'plain', 'f1');
    await eventually(() => receiver.got.includes('plain f1'), { timeoutMs: 10_000, what: 'the frame by classic pub/sub' });
    const pub = open.at(-1)!.pub;
    assert.equal(Number((await pub.call('PUBSUB', 'NUMSUB', keys.fallback) as [string, number])[1]), 0);
    assert.equal(sender.b.fallbackSent, 0);
  } finally {
    await redis?.stop();
  }
});
