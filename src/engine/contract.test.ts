// One contract for both engines: every case runs against the memory engine and the Redis engine (a
// real redis-server), through the Engine interfaces only, so the two can never drift apart silently.
// Cluster-only behaviour (several nodes sharing one Redis) is at the end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { toApp } from '../apps/app.js';
import type { BackboneHandlers, NodeCommand } from '../backbone/backbone.js';
import { AppSchema, ConfigSchema } from '../config/schema.js';
import { Metrics } from '../metrics/metrics.js';
import { StoreUnavailableError, type ClusterEvent } from '../presence/store.js';
import { startRedis, type RedisHandle } from '../testing/harness.js';
import { eventually, sleep } from '../testing/eventually.js';
import { queueName } from '../webhooks/queue.js';
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

async function make(kind: 'memory' | 'redis', opts: { prefix?: string; nodeId?: string; leaseMs?: number } = {}): Promise<Made> {
  const heard = new Heard();
  const engine =
    kind === 'memory'
      ? memoryEngine(1000)
      : redisEngine(
          ConfigSchema.parse({
            redisUrl: redis.url,
            redisPrefix: opts.prefix ?? `contract${++prefixes}`,
            nodeLeaseMs: opts.leaseMs ?? 10_000,
            cacheTtl: 1,
            apps: [{ id: 'a1', key: 'k1', secret: 's1', webhooks: [{ url: webhookUrl, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }] }],
          }),
          opts.nodeId ?? `node-${prefixes}`,
          log,
          new Metrics(),
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

  test('after Redis restarts empty, every node restores its share and then reports only what changed while Redis was gone', async () => {
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
