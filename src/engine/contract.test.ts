// One contract for both engines: every case runs against the memory engine and the Redis engine (a
// real redis-server), through the Engine interfaces only, so the two can never drift apart silently.
// Cluster-only behaviour (several nodes sharing one Redis) is at the end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { toApp } from '../apps/app.js';
import type { BackboneHandlers, NodeCommand } from '../backbone/backbone.js';
import { StaticAppStore } from '../apps/static-store.js';
import { AppSchema, ConfigSchema, type Config } from '../config/schema.js';
import { EPOCH_KEEP_MS } from '../history/history.js';
import { recordEvent } from '../history/redis-lua.js';
import { Metrics } from '../metrics/metrics.js';
import { StoreUnavailableError, type ClusterEvent } from '../presence/store.js';
import { defineScripts } from '../redis/clients.js';
import { RedisKeys } from '../redis/keys.js';
import { startRedis, type RedisHandle } from '../testing/harness.js';
import { eventually, sleep } from '../testing/eventually.js';
import { queueName } from '../webhooks/queue.js';
import { WebhookRoutes } from '../webhooks/routes.js';
import type { Engine } from './engine.js';
import { memoryEngine } from './memory.js';
import { redisEngine } from './redis.js';

const log = pino({ level: 'silent' });
const webhookUrl = 'http://127.0.0.1:9/unused';
let redis: RedisHandle;
let prefixes = 0;

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

/** What an engine's handlers heard. */
class Heard {
  readonly delivered: { appId: string; channel: string; frame: string; except?: string }[] = [];
  readonly commands: NodeCommand[] = [];
  readonly changed: ClusterEvent[][] = [];
  readonly handlers: BackboneHandlers & { clusterState: { stateChanged(events: ClusterEvent[]): void } } = {
    frames: { deliver: (appId, channel, frame, except) => void this.delivered.push({ appId, channel, frame, except }) },
    commands: { command: (c) => void this.commands.push(c) },
    feed: { feedBroken: () => {}, feedResumed: () => {} },
    clusterState: { stateChanged: (events) => void this.changed.push(events) },
  };
}

interface Made {
  engine: Engine;
  heard: Heard;
}

async function make(kind: 'memory' | 'redis', opts: { prefix?: string; nodeId?: string; leaseMs?: number; noWebhooks?: boolean } = {}): Promise<Made> {
  const heard = new Heard();
  const engine =
    kind === 'memory'
      ? memoryEngine(1000)
      : redisEngineFor(
          ConfigSchema.parse({
            ...redisTarget(),
            redisPrefix: opts.prefix ?? `contract${++prefixes}`,
            nodeLeaseMs: opts.leaseMs ?? 10_000,
            cacheTtl: 1,
            apps: [
              {
                id: 'a1',
                key: 'k1',
                secret: 's1',
                webhooks: opts.noWebhooks ? [] : [{ url: webhookUrl, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }],
              },
            ],
          }),
          opts.nodeId ?? `node-${prefixes}`,
        );
  await engine.start(heard.handlers);
  return { engine, heard };
}

async function closeAll(...made: Made[]): Promise<void> {
  for (const m of made) {
    await m.engine.leave();
    await m.engine.webhookQueue.close();
    await m.engine.close();
  }
}

/** With RIPPLE_TEST_REDIS=cluster, startRedis gives a Redis Cluster ("redis-cluster://<seeds>"): the engine gets its seeds. */
const CLUSTER_URL = 'redis-cluster://';
const onCluster = () => redis.url.startsWith(CLUSTER_URL);
/** Known before `redis` is started (a test's skip option is read when it is declared). */
const onClusterEnv = () => (process.env.RIPPLE_TEST_REDIS === 'cluster' ? 'needs one redis-server' : false);
const redisTarget = () => (onCluster() ? { redisClusterNodes: redis.url.slice(CLUSTER_URL.length).split(',') } : { redisUrl: redis.url });

function redisEngineFor(config: Config, nodeId: string): Engine {
  return redisEngine(config, nodeId, log, new Metrics(), new WebhookRoutes(new StaticAppStore(config.apps)));
}

const app = (over: Record<string, unknown> = {}) => toApp(AppSchema.parse({ id: 'a1', key: 'k1', secret: 's1', ...over }));

for (const kind of ['memory', 'redis'] as const) {
  describe(`${kind} engine`, () => {
    test('backbone: a publish reaches this node synchronously with its exclusion; a command reaches this node', async () => {
      const m = await make(kind);
      try {
        m.engine.backbone.addInterest('a1', 'c1');
        m.engine.backbone.publish('a1', 'c1', 'frame-1', '1.2');
        assert.deepEqual(m.heard.delivered, [{ appId: 'a1', channel: 'c1', frame: 'frame-1', except: '1.2' }]);
        m.engine.backbone.broadcastCommand({ type: 'terminate-user', appId: 'a1', userId: 'u' });
        assert.deepEqual(m.heard.commands, [{ type: 'terminate-user', appId: 'a1', userId: 'u' }]);
        assert.equal(m.engine.isHealthy(), true);
      } finally {
        await closeAll(m);
      }
    });

    test('presence store: counts follow subscriptions, and channels() lists occupied channels by prefix', async () => {
      const m = await make(kind);
      const s = m.engine.store;
      try {
        assert.equal(await s.addSubscription('a1', 'pub-1'), 1);
        assert.equal(await s.addSubscription('a1', 'pub-1'), 2);
        assert.equal(await s.addSubscription('a1', 'other'), 1);
        assert.equal(await s.removeSubscription('a1', 'pub-1'), 1);
        assert.equal(await s.subscriptionCount('a1', 'pub-1'), 1);
        assert.deepEqual([...(await s.channels('a1', 'pub-')).entries()], [['pub-1', { subscriptionCount: 1, userCount: 0 }]]);
        assert.equal(await s.removeSubscription('a1', 'pub-1'), 0);
        assert.equal(await s.subscriptionCount('a1', 'pub-1'), 0);
        assert.deepEqual([...(await s.channels('a1', 'pub-')).keys()], []);
      } finally {
        await closeAll(m);
      }
    });

    test('presence store: one member per user, the limit refuses a new member without recording it, a leave of an unheld socket changes nothing', async () => {
      const m = await make(kind);
      const s = m.engine.store;
      const ch = 'presence-room';
      try {
        const first = await s.subscribePresence('a1', ch, '1.1', { userId: 'ann', userInfo: { n: 1 } }, 2);
        assert.deepEqual(first.refused ? 'refused' : [first.count, first.added, [...first.members]], [1, true, [['ann', { n: 1 }]]]);
        const again = await s.subscribePresence('a1', ch, '1.2', { userId: 'ann', userInfo: { n: 2 } }, 2);
        assert.deepEqual(again.refused ? 'refused' : [again.count, again.added, again.members.get('ann')], [2, false, { n: 1 }], 'the first socket\'s info is kept');
        const bob = await s.subscribePresence('a1', ch, '1.3', { userId: 'bob', userInfo: undefined }, 2);
        assert.equal(bob.refused, false);
        const cat = await s.subscribePresence('a1', ch, '1.4', { userId: 'cat', userInfo: undefined }, 2);
        assert.deepEqual(cat, { refused: true });
        const annThird = await s.subscribePresence('a1', ch, '1.5', { userId: 'ann', userInfo: undefined }, 2);
        assert.equal(annThird.refused, false, 'an existing member is never refused');
        assert.equal(await s.subscriptionCount('a1', ch), 4);
        assert.equal(await s.userCount('a1', ch), 2);
        assert.deepEqual(await s.unsubscribePresence('a1', ch, '1.4', 'cat'), { held: false, last: false, count: 4 });
        assert.deepEqual(await s.unsubscribePresence('a1', ch, '1.1', 'ann'), { held: true, last: false, count: 3 });
        assert.deepEqual(await s.unsubscribePresence('a1', ch, '1.2', 'ann'), { held: true, last: false, count: 2 });
        assert.deepEqual(await s.unsubscribePresence('a1', ch, '1.5', 'ann'), { held: true, last: true, count: 1 });
        assert.deepEqual([...(await s.members('a1', ch)).keys()], ['bob']);
        assert.deepEqual(await s.unsubscribePresence('a1', ch, '1.3', 'bob'), { held: true, last: true, count: 0 });
        assert.equal(await s.userCount('a1', ch), 0);
      } finally {
        await closeAll(m);
      }
    });

    test('presence store: transition webhooks are queued in the step that makes the transition, in its order, or left to the channel owner', async () => {
      const m = await make(kind);
      const s = m.engine.store;
      try {
        await s.subscribePresence('a1', 'presence-w', '1.1', { userId: 'ann', userInfo: undefined }, 10);
        await s.addSubscription('a1', 'plain-w');
        await s.subscribePresence('a1', 'presence-w', '1.2', { userId: 'ann', userInfo: undefined }, 10);
        await s.unsubscribePresence('a1', 'presence-w', '1.1', 'ann');
        await s.unsubscribePresence('a1', 'presence-w', '1.2', 'ann');
        await s.removeSubscription('a1', 'plain-w');
        assert.equal(s.queuesTransitionWebhooks, kind === 'redis', 'Redis queues them in its scripts; in one process the channel owner emits them');
        const queued = (await m.engine.webhookQueue.read(queueName('a1', webhookUrl), 100)).map((e) => e.ev);
        const expected = s.queuesTransitionWebhooks
          ? [
              { name: 'channel_occupied', channel: 'presence-w' },
              { name: 'member_added', channel: 'presence-w', user_id: 'ann' },
              { name: 'channel_occupied', channel: 'plain-w' },
              { name: 'member_removed', channel: 'presence-w', user_id: 'ann' },
              { name: 'channel_vacated', channel: 'presence-w' },
              { name: 'channel_vacated', channel: 'plain-w' },
            ]
          : [];
        assert.deepEqual(queued, expected);
      } finally {
        await closeAll(m);
      }
    });

    test('presence store: the uncounted online set tells first and last socket of a user', async () => {
      const m = await make(kind);
      const s = m.engine.store;
      try {
        assert.equal((await s.joinPresence('a1', '#online', '1.1', { userId: 'u', userInfo: undefined })).added, true);
        assert.equal((await s.joinPresence('a1', '#online', '1.2', { userId: 'u', userInfo: undefined })).added, false);
        assert.equal(await s.leavePresence('a1', '#online', '1.1', 'u'), false);
        assert.equal(await s.leavePresence('a1', '#online', '1.2', 'u'), true);
        assert.equal(await s.subscriptionCount('a1', '#online'), 0, 'not counted as a subscription');
      } finally {
        await closeAll(m);
      }
    });

    test('channel cache: a set event is returned with its remaining lifetime until it expires', async () => {
      const m = await make(kind);
      try {
        assert.equal(await m.engine.cache.get('a1', 'cache-x'), undefined);
        await m.engine.cache.set('a1', 'cache-x', { event: 'e', data: 'd' });
        const hit = await m.engine.cache.get('a1', 'cache-x');
        assert.deepEqual(hit?.ev, { event: 'e', data: 'd' });
        assert.ok(hit!.ttlMs > 0 && hit!.ttlMs <= 1000, `ttl ${hit!.ttlMs}`);
        await sleep(1100);
        assert.equal(await m.engine.cache.get('a1', 'cache-x'), undefined);
      } finally {
        await closeAll(m);
      }
    });

    test('channel cache: of several misses of one channel at once, exactly one is the first; other channels count apart', async () => {
      const m = await make(kind);
      try {
        const firsts = await Promise.all(Array.from({ length: 5 }, () => m.engine.cache.firstMiss('a1', 'cache-m')));
        assert.deepEqual(firsts.filter(Boolean).length, 1);
        assert.equal(await m.engine.cache.firstMiss('a1', 'cache-other'), true);
        assert.equal(await m.engine.cache.firstMiss('a2', 'cache-m'), true, 'per app');
        assert.equal(await m.engine.cache.firstMiss('a1', 'cache-m'), false, 'still inside the window');
      } finally {
        await closeAll(m);
      }
    });

    test('rate windows: points within the per-second limit pass, the next is refused with a retry time', async () => {
      const m = await make(kind);
      try {
        // Stay inside one second so the window cannot roll over mid-test.
        while (Date.now() % 1000 > 500) await sleep(20);
        assert.deepEqual(await m.engine.rates.consume('a1', 'backend', 2, 3), { allowed: true, remaining: 1, retryAfter: 1 });
        const d = await m.engine.rates.consume('a1', 'backend', 2, 3);
        assert.equal(d.allowed, false);
        assert.equal(d.retryAfter, 1);
        assert.equal((await m.engine.rates.consume('a1', 'read', 1, 3)).allowed, true, 'kinds are counted apart');
      } finally {
        await closeAll(m);
      }
    });

    test('connection census: a quota app is admitted up to its limit, a release frees a place; an unlimited app is never counted', async () => {
      const m = await make(kind);
      const c = m.engine.census;
      try {
        const quota = app({ maxConnections: 2 });
        assert.deepEqual([await c.admit(quota), await c.admit(quota), await c.admit(quota)], [true, true, false]);
        c.release(quota);
        assert.equal(await c.admit(quota), true);
        const open = app({ maxConnections: -1 });
        for (let i = 0; i < 5; i++) assert.equal(await c.admit(open), true);
      } finally {
        await closeAll(m);
      }
    });

    test('webhook queue: events come back oldest first, acknowledged ones are gone, dead letters are listed and taken', async () => {
      const m = await make(kind);
      const q = m.engine.webhookQueue;
      const name = queueName('a1', webhookUrl);
      try {
        await q.start([name]);
        await eventually(() => q.owns(name), { timeoutMs: 3000, what: 'this node owns the queue' });
        q.append(name, [{ t: 1, ev: { n: 1 } }, { t: 2, ev: { n: 2 } }]);
        q.append(name, [{ t: 3, ev: { n: 3 } }]);
        let batch: Awaited<ReturnType<typeof q.read>> = [];
        await eventually(async () => (batch = await q.read(name, 10)).length === 3, { timeoutMs: 3000, what: 'three events queued' });
        assert.deepEqual(batch.map((e) => e.ev), [{ n: 1 }, { n: 2 }, { n: 3 }]);
        await q.ack(name, batch.slice(0, 2).map((e) => e.id));
        assert.deepEqual((await q.read(name, 10)).map((e) => e.ev), [{ n: 3 }]);
        const dead = { appId: 'a1', url: webhookUrl, events: [{ n: 9 }], firstAttemptAt: 1, failedAt: 2, attempts: 3, error: 'HTTP 500' };
        await q.pushDead(dead);
        assert.deepEqual(await q.listDead('a1'), [dead]);
        assert.deepEqual(await q.takeDead('a1'), [dead]);
        assert.deepEqual(await q.listDead('a1'), []);
      } finally {
        await closeAll(m);
      }
    });

    test('webhook queue: setQueues changes the queues this node delivers: an added one is claimed and woken by its events, a removed one no longer', async () => {
      const m = await make(kind);
      const q = m.engine.webhookQueue;
      const [first, second] = [queueName('a1', webhookUrl), queueName('a1', `${webhookUrl}/second`)];
      const woken: string[] = [];
      q.onWake((name) => void woken.push(name));
      try {
        await q.start([first]);
        await eventually(() => q.owns(first), { timeoutMs: 3000, what: 'this node owns the first queue' });
        q.setQueues([second]);
        assert.equal(q.owns(first), false, 'a removed queue is given up at once');
        await eventually(() => q.owns(second), { timeoutMs: 3000, what: 'this node owns the added queue' });
        woken.length = 0;
        q.append(first, [{ t: 1, ev: { n: 1 } }]);
        q.append(second, [{ t: 2, ev: { n: 2 } }]);
        await eventually(() => woken.includes(second), { timeoutMs: 3000, what: 'the added queue woken by its event' });
        await sleep(300);
        assert.deepEqual(woken.filter((name) => name === first), [], 'the removed queue is not woken');
        assert.deepEqual((await q.read(second, 10)).map((e) => e.ev), [{ n: 2 }]);
        assert.deepEqual((await q.read(first, 10)).map((e) => e.ev), [{ n: 1 }], 'its events stay queued');
      } finally {
        await closeAll(m);
      }
    });
  });
}

describe('redis engine, several nodes on one Redis', () => {
  test('backbone: a node receives a channel only while it has interest in it, never its own publish twice', async () => {
    const prefix = `cluster${++prefixes}`;
    const a = await make('redis', { prefix, nodeId: 'a' });
    const b = await make('redis', { prefix, nodeId: 'b' });
    try {
      b.engine.backbone.addInterest('a1', 'shared');
      await sleep(100);
      a.engine.backbone.publish('a1', 'shared', 'f1', '9.9');
      a.engine.backbone.publish('a1', 'not-b', 'f2');
      await eventually(() => b.heard.delivered.length >= 1, { timeoutMs: 2000, what: 'b received f1' });
      await sleep(100);
      assert.deepEqual(b.heard.delivered, [{ appId: 'a1', channel: 'shared', frame: 'f1', except: '9.9' }]);
      assert.equal(a.heard.delivered.filter((d) => d.frame === 'f1').length, 1);
      b.engine.backbone.removeInterest('a1', 'shared');
      await sleep(100);
      a.engine.backbone.publish('a1', 'shared', 'f3');
      await sleep(200);
      assert.equal(b.heard.delivered.length, 1);
    } finally {
      await closeAll(a, b);
    }
  });

  // Forges messages with a client of one Redis.
  test('backbone: a sender\'s sequence numbers are checked per channel: messages out of order across channels are all delivered, a second copy is dropped', { skip: onClusterEnv() }, async () => {
    const prefix = `cluster${++prefixes}`;
    const keys = new RedisKeys(prefix);
    const b = await make('redis', { prefix, nodeId: 'b' });
    // Forges another node's messages, in the format every version since sequence numbers sends.
    const raw = defineScripts(new Redis(redis.url), { historyRecord: recordEvent });
    const sender = 'a/0123abcd';
    const publish = (channel: string, seq: number, frame: string) => raw.publish(keys.channel('a1', channel), `${seq} ${sender}\n\n${frame}`);
    const record = (channel: string, seq: number, frame: string) => {
      const h = keys.history('a1', channel);
      const head = `${seq} ${sender}\n\n`;
      return raw.historyRecord(h.epoch, h.serial, h.events, h.senders, 'ep', 100, 60_000, EPOCH_KEEP_MS, frame, '', keys.channel('a1', channel), head, sender, seq);
    };
    try {
      for (const c of ['x', 'y']) b.engine.backbone.addInterest('a1', c);
      await Promise.all(['x', 'y'].map((c) => b.engine.backbone.interestReady('a1', c)));
      // The sender published y's 1 before x's 2; two connections (one per shard) delivered x's first.
      await publish('x', 2, 'x2');
      await publish('y', 1, 'y1');
      await publish('x', 2, 'x2'); // the same batch written again after a lost reply
      await publish('y', 3, 'y3');
      await raw.publish(keys.channel('a1', 'x'), 'a\n\nold'); // a node from before sequence numbers
      // Recorded events: the script keeps the same rule per channel, and their fan-out follows it.
      assert.equal(await record('x', 5, 'rx5'), 'ep:1');
      assert.equal(await record('y', 4, 'ry4'), 'ep:1', 'y\'s 4 after x\'s 5 is recorded');
      assert.equal(await record('x', 5, 'rx5'), '', 'a second copy is not recorded again');
      await eventually(() => b.heard.delivered.length >= 6, { timeoutMs: 2000, what: 'six frames delivered' });
      await sleep(100);
      assert.deepEqual(
        b.heard.delivered.map((d) => `${d.channel}:${d.frame}`),
        ['x:x2', 'y:y1', 'y:y3', 'x:old', 'x:rx5', 'y:ry4'],
      );
    } finally {
      raw.disconnect();
      await closeAll(b);
    }
  });

  test('webhook queue: a node started without webhooks still queues in Redis; a queue one node gives up is taken by another at once, and a doorbell from another node wakes an added queue', async () => {
    const prefix = `cluster${++prefixes}`;
    const a = await make('redis', { prefix, nodeId: 'qa', noWebhooks: true });
    const b = await make('redis', { prefix, nodeId: 'qb' });
    const [qa, qb] = [a.engine.webhookQueue, b.engine.webhookQueue];
    const [first, second] = [queueName('a1', webhookUrl), queueName('a1', `${webhookUrl}/second`)];
    const wokenA: string[] = [];
    qa.onWake((name) => void wokenA.push(name));
    try {
      await qa.start([]);
      qa.setQueues([first]);
      await eventually(() => qa.owns(first), { timeoutMs: 3000, what: 'a owns the queue it was given' });
      await qb.start([first]);
      await sleep(300);
      assert.equal(qb.owns(first), false, 'a holds the queue while its lease is valid');
      qa.setQueues([second]);
      // Leases last 10 s here: b takes the queue because a released it.
      await eventually(() => qb.owns(first), { timeoutMs: 3000, what: 'b took over the queue a gave up' });
      await eventually(() => qa.owns(second), { timeoutMs: 3000, what: 'a owns the added queue' });
      wokenA.length = 0;
      qb.append(second, [{ t: 1, ev: { n: 1 } }]);
      await eventually(() => wokenA.includes(second), { timeoutMs: 3000, what: 'b\'s doorbell woke the added queue on a' });
      assert.deepEqual((await qa.read(second, 10)).map((e) => e.ev), [{ n: 1 }]);
    } finally {
      await closeAll(a, b);
    }
  });

  test('a dead node\'s share goes when its lease runs out: per channel its members removed, then the lower count; its census places are freed', async () => {
    const prefix = `cluster${++prefixes}`;
    const survivor = await make('redis', { prefix, nodeId: 'survivor', leaseMs: 600 });
    const doomed = await make('redis', { prefix, nodeId: 'doomed', leaseMs: 600 });
    const quota = app({ maxConnections: 2 });
    try {
      await survivor.engine.store.addSubscription('a1', 'pub');
      await doomed.engine.store.addSubscription('a1', 'pub');
      await doomed.engine.store.subscribePresence('a1', 'presence-p', '2.1', { userId: 'ann', userInfo: undefined }, 10);
      assert.equal(await doomed.engine.census.admit(quota), true);
      assert.equal(await doomed.engine.census.admit(quota), true);
      assert.equal(await survivor.engine.census.admit(quota), false, 'the quota is cluster-wide');
      // "Crash": stop renewing without leaving (the connection stays, the lease is never renewed).
      await doomed.engine.close();
      await eventually(() => survivor.heard.changed.length > 0, { timeoutMs: 5000, what: 'the survivor removed the dead share' });
      const byChannel = (channel: string) => survivor.heard.changed.flat().filter((e) => e.channel === channel);
      assert.deepEqual(byChannel('presence-p'), [
        { kind: 'member_removed', appId: 'a1', channel: 'presence-p', userId: 'ann' },
        { kind: 'count', appId: 'a1', channel: 'presence-p', count: 0 },
      ]);
      assert.deepEqual(byChannel('pub'), [{ kind: 'count', appId: 'a1', channel: 'pub', count: 1 }]);
      assert.equal(survivor.heard.changed.flat().length, 3);
      assert.equal(await survivor.engine.store.subscriptionCount('a1', 'pub'), 1);
      assert.equal(await survivor.engine.census.admit(quota), true, 'the dead node\'s places are free again');
    } finally {
      await survivor.engine.leave();
      await survivor.engine.webhookQueue.close();
      await survivor.engine.close();
    }
  });

  // Stops and restarts one redis-server (the cluster's whole restart is cluster.test.ts's).
  test('after Redis restarts empty, every node restores its share and then reports only what changed while Redis was gone', { skip: onClusterEnv() }, async () => {
    const prefix = `cluster${++prefixes}`;
    const a = await make('redis', { prefix, nodeId: 'ra', leaseMs: 2000 });
    const b = await make('redis', { prefix, nodeId: 'rb', leaseMs: 2000 });
    const ch = 'presence-r';
    try {
      await a.engine.store.subscribePresence('a1', ch, '1.1', { userId: 'ann', userInfo: undefined }, 10);
      await b.engine.store.subscribePresence('a1', ch, '2.1', { userId: 'ann', userInfo: undefined }, 10);
      await b.engine.store.subscribePresence('a1', ch, '2.2', { userId: 'bob', userInfo: { n: 1 } }, 10);
      await sleep(600); // a lease round: each node knows the other
      await redis.stop();
      // Both leaves are kept by their node until Redis is back; ann still has a socket on b.
      await assert.rejects(a.engine.store.unsubscribePresence('a1', ch, '1.1', 'ann'), StoreUnavailableError);
      await assert.rejects(b.engine.store.unsubscribePresence('a1', ch, '2.2', 'bob'), StoreUnavailableError);
      await redis.restart();
      await eventually(async () => (await a.engine.store.subscriptionCount('a1', ch).catch(() => -1)) === 1, { timeoutMs: 10_000, what: 'the changes replayed' });
      await sleep(300);
      assert.deepEqual([...(await b.engine.store.members('a1', ch)).keys()], ['ann']);
      const members = [...a.heard.changed.flat(), ...b.heard.changed.flat()].filter((e) => e.kind !== 'count');
      assert.deepEqual(members, [{ kind: 'member_removed', appId: 'a1', channel: ch, userId: 'bob' }], 'bob left; ann, still on b, did not');
      const queued = (await a.engine.webhookQueue.read(queueName('a1', webhookUrl), 100)).map((e) => e.ev);
      assert.deepEqual(queued, [{ name: 'member_removed', channel: ch, user_id: 'bob' }], 'the restore itself queued nothing');
    } finally {
      await closeAll(a, b);
    }
  });
});
