// Redis Cluster seed nodes as the config gives them, turned into ioredis's node list and node options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RedisOptions } from 'ioredis';
import { seedNode } from './clients.js';

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
