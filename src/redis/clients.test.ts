// Redis Cluster seed nodes as the config gives them, turned into ioredis's node list and node options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { RedisOptions } from 'ioredis';
import { freePort, startRedis } from '../testing/harness.js';
import { sleep } from '../testing/eventually.js';
import { seedNode, settleStoppedSubscribers } from './clients.js';

test('a seed node is host:port, [ipv6]:port, a bare host, or a redis:// / rediss:// URL whose credentials and TLS go to every node', () => {
  const o: RedisOptions = {};
  assert.deepEqual(seedNode('10.0.0.1:7000', o), { host: '10.0.0.1', port: 7000 });
  assert.deepEqual(seedNode('[::1]:7001', o), { host: '::1', port: 7001 });
  assert.deepEqual(seedNode('redis-a', o), { host: 'redis-a', port: 6379 });
  assert.deepEqual(o, {});
  assert.deepEqual(seedNode('rediss://user:p%40ss@cache.example:6380', o), { host: 'cache.example', port: 6380 });
  assert.deepEqual(o, { username: 'user', password: 'p@ss', tls: {} });
  // Options given in redisOptions win over a URL's.
  const given: RedisOptions = { password: 'from-options' };
  seedNode('redis://:other@h:7000', given);
  assert.equal(given.password, 'from-options');
  assert.throws(() => seedNode('h:notaport', {}), /the port must be a number/);
});

test('ioredis 5.11.1: a sharded subscriber stopped while it connects settles its start() (its group awaits it in a reset, and would never reset again)', async () => {
  const redis = await startRedis(await freePort());
  try {
    settleStoppedSubscribers();
    const ShardedSubscriber = (createRequire(import.meta.url)('ioredis/built/cluster/ShardedSubscriber.js') as { default: new (...args: unknown[]) => ShardedSubscriber }).default;
    // TLS to a plain redis-server: its handshake gets no answer, so the connection stays connecting.
    const s = new ShardedSubscriber(new EventEmitter(), { host: '127.0.0.1', port: redis.port }, { tls: {}, connectTimeout: 60_000 });
    const started = s.start().then(
      () => 'connected',
      (err: Error) => err.message,
    );
    await sleep(300);
    assert.equal(s.subscriberStatus, 'starting');
    s.stop();
    assert.equal(await Promise.race([started, sleep(2000).then(() => 'still pending 2 s after stop()')]), 'sharded subscriber stopped while connecting');
  } finally {
    await redis.stop();
  }
});

interface ShardedSubscriber {
  start(): Promise<void>;
  stop(): void;
  subscriberStatus: string;
}
