// The relay over Redis: events published before the connection is ready wait for it, up to a bound,
// and reach the listening node once Redis answers; nothing is listened to after unlisten.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { eventually } from '../testing/eventually.js';
import { startRedis, type RedisHandle } from '../testing/harness.js';
import { RedisKeys } from '../redis/keys.js';
import { RedisRelayTransport } from './redis-relay.js';

let redis: RedisHandle | undefined;
const transports: RedisRelayTransport[] = [];
after(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await redis?.stop();
});

test('events wait for the publishing connection (at most 1000), then reach the listener in order; unlisten stops them', async () => {
  redis = await startRedis();
  const target = { url: redis.url };
  const log = pino({ level: 'silent' });
  const listener = new RedisRelayTransport(target, new RedisKeys('t'), 'sub', log);
  transports.push(listener);
  const got: string[] = [];
  await listener.listen('a1', (json) => got.push(json));
  const publisher = new RedisRelayTransport(target, new RedisKeys('t'), 'pub', log);
  transports.push(publisher);
  // The publisher's connection opens with its first event: every one of these is published before it
  // can be ready, so they wait, and what is over the bound is dropped.
  for (let i = 0; i < 1200; i++) publisher.publish('a1', String(i));
  await eventually(() => got.length >= 1000, { timeoutMs: 20_000, what: () => `the waiting events (got ${got.length})` });
  publisher.publish('a1', 'last');
  await eventually(() => got.includes('last'), { timeoutMs: 10_000, what: 'a later event' });
  assert.deepEqual(got, [...Array.from({ length: 1000 }, (_, i) => String(i)), 'last']);
  listener.unlisten('a1');
  await new Promise((r) => setTimeout(r, 200));
  publisher.publish('a1', 'after');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(got.at(-1), 'last', 'nothing after unlisten');
});
