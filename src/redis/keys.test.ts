// The keyspace's names are shared by every node of a cluster, including nodes of other versions during
// a rolling upgrade: they are pinned here, and the Lua twins must build the same names as the methods.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type RedisHandle } from '../testing/harness.js';
import { clusterDerivedKeysLua, derivedKeysLua, RedisKeys } from './keys.js';

let redis: RedisHandle;
let client: Redis;

before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
after(async () => {
  client?.disconnect();
  await redis?.stop();
});

test('every key and channel keeps the name earlier versions used', () => {
  const k = new RedisKeys('rp');
  assert.deepEqual(
    {
      nodes: k.nodes,
      dataset: k.dataset,
      restored: k.restored,
      commands: k.commands,
      connections: k.connections,
      webhookBell: k.webhookBell,
      channel: k.channel('a1', 'presence-x:y'),
      history: k.history('a1', 'c'),
      cache: k.cache('a1', 'cache-c'),
      cacheMiss: k.cacheMiss('a1', 'cache-c'),
      rate: k.rate('backend', 'a1', 1700000000),
      nodeConnections: k.nodeConnections('n1'),
      nodeSubscriptions: k.nodeSubscriptions('n1'),
      nodePresence: k.nodePresence('n1'),
      appSubscriptions: k.appSubscriptions('a1'),
      presence: k.presence('a1', 'presence-c'),
      webhookStream: k.webhookStream('a1|0123456789abcdef'),
      webhookOwner: k.webhookOwner('a1|0123456789abcdef'),
      webhookDead: k.webhookDead('a1'),
    },
    {
      nodes: 'rp:nodes',
      dataset: 'rp:dataset',
      restored: 'rp:restored',
      commands: 'rp:cmd',
      connections: 'rp:conns',
      webhookBell: 'rp:wh:bell',
      channel: 'rp:ch:a1:presence-x:y',
      history: { epoch: 'rp:h:a1:c:e', serial: 'rp:h:a1:c:n', events: 'rp:h:a1:c:s', senders: 'rp:h:a1:c:d' },
      cache: 'rp:cache:a1:cache-c',
      cacheMiss: 'rp:cache-miss:a1:cache-c',
      rate: 'rp:rate:backend:a1:1700000000',
      nodeConnections: 'rp:n:n1:conns',
      nodeSubscriptions: 'rp:n:n1:subs',
      nodePresence: 'rp:n:n1:pres',
      appSubscriptions: 'rp:subs:a1',
      presence: { sockets: 'rp:p:a1:presence-c:s', users: 'rp:p:a1:presence-c:u', infos: 'rp:p:a1:presence-c:i' },
      webhookStream: 'rp:wh:q:a1|0123456789abcdef',
      webhookOwner: 'rp:wh:owner:a1|0123456789abcdef',
      webhookDead: 'rp:wh:dead:a1',
    },
  );
});

test('the Lua twins build the same names as RedisKeys for the channels a script finds in the data', async () => {
  const k = new RedisKeys('my:prefix');
  const lua = `${derivedKeysLua}
local p = presenceKeys(ARGV[1], ARGV[2], ARGV[3])
return { appSubscriptionsKey(ARGV[1], ARGV[2]), p.sockets, p.users, p.infos }`;
  for (const [app, channel] of [['a1', 'presence-room'], ['app:with:colons', 'presence-%d\n{x}']]) {
    const p = k.presence(app, channel);
    assert.deepEqual(await client.eval(lua, 0, k.prefix, app, channel), [k.appSubscriptions(app), p.sockets, p.users, p.infos]);
  }
});

/** The part of a name Redis Cluster hashes: the first {...} with something inside, else the whole name. */
function hashed(name: string): string {
  const a = name.indexOf('{');
  const b = a < 0 ? -1 : name.indexOf('}', a + 1);
  return b > a + 1 ? name.slice(a + 1, b) : name;
}

test('on Redis Cluster a channel\'s traffic and state share one hash tag, and the cluster state another', () => {
  const k = new RedisKeys('rp', { cluster: true });
  const h = k.history('a1', 'presence-x:y');
  const s = k.channelState('a1', 'presence-x:y');
  const p = k.presence('a1', 'presence-x:y');
  const traffic = [
    k.channel('a1', 'presence-x:y'), h.epoch, h.serial, h.events, h.senders, k.cache('a1', 'presence-x:y'), k.cacheMiss('a1', 'presence-x:y'),
    s.count, s.nodes, s.sockets, s.users, s.infos, s.pending, s.seq, p.sockets, p.users, p.infos,
  ];
  assert.deepEqual(new Set(traffic.map(hashed)), new Set(['a1:presence-x:y']));
  assert.equal(new Set(traffic).size, traffic.length - 3, 'every name its own, the presence hashes being the state\'s');
  assert.equal(k.channel('a1', 'c'), 'rp:ch:{a1:c}');
  const state = [
    k.nodes, k.dataset, k.restored, k.commands, k.connections, k.webhookBell, k.webhookMoved('a1', 'presence-x:y'),
    k.nodeConnections('n1'), k.nodeSubscriptions('n1'), k.nodePresence('n1'), k.appChannels('a1'),
    k.webhookStream('a1|x'), k.webhookOwner('a1|x'), k.webhookDead('a1'),
  ];
  assert.deepEqual(new Set(state.map(hashed)), new Set(['rp']));
  assert.equal(k.nodes, '{rp}:nodes');
  // Classic PUBLISH is copied to every node whatever the name: the backbone's fallback needs no tag.
  assert.equal(k.fallback, 'rp:fallback');
  assert.throws(() => new RedisKeys('r{p}', { cluster: true }), /no \{ or \}/);
});

test('the Lua twin of appChannels builds the Redis Cluster name, given statePrefix', async () => {
  const k = new RedisKeys('my:prefix', { cluster: true });
  const lua = `${clusterDerivedKeysLua}
return appChannelsKey(ARGV[1], ARGV[2])`;
  assert.equal(await client.eval(lua, 0, k.statePrefix, 'app:with:colons'), k.appChannels('app:with:colons'));
});
