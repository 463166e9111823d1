// Message recovery when one recorded event never reaches a node while the history keeps it
// (docs/recovery.md, "Gaps on one channel"): on Redis Cluster a slot migration can send a channel's
// record-and-publish step to a shard the node does not listen on yet; any lost message does the same.
// The test makes the gap itself: it runs the node's own record script on the channel's real history keys
// but publishes on a channel nobody listens on, so serial n is kept and no node got it; then the next
// event goes through the REST API as usual. Runs on one Redis and with RIPPLE_TEST_REDIS=cluster.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { recordEvent } from '../src/history/redis-lua.js';
import { EPOCH_KEEP_MS, newEpoch } from '../src/history/history.js';
import { channelEvent } from '../src/protocol/frames.js';
import { RedisKeys } from '../src/redis/keys.js';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { subscribeRecovering, type RecoveryOutcome } from '../src/testing/recovery.js';
import { RawClient, type Frame } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const app = { id: 'gap', key: 'gap-key', secret: 'gap-secret' };
const recovery = { historySize: 100, historyTtl: 120, channels: [{ prefix: 'one-', historySize: 1 }] };
const CLUSTER_URL = 'redis-cluster://';

let redis: RedisHandle;
let node: NodeHandle;
/** The test's own connection to the node's Redis (a Cluster client on Redis Cluster). */
let direct: Redis | Cluster;
let keys: RedisKeys;
const clients: RawClient[] = [];

before(async () => {
  redis = await startRedis();
  node = await startNode({ env: { REDIS_URL: redis.url, NODE_ID: 'gap-node', LOG_LEVEL: 'info' }, config: { apps: [{ ...app, recovery }] } });
  const cluster = redis.url.startsWith(CLUSTER_URL);
  keys = new RedisKeys('ripple', { cluster });
  direct = cluster
    ? new Cluster(
        redis.url
          .slice(CLUSTER_URL.length)
          .split(',')
          .map((s) => ({ host: s.split(':')[0], port: Number(s.split(':')[1]) })),
      )
    : new Redis(redis.url);
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  direct?.disconnect();
  await node?.kill();
  await redis?.stop();
});

async function connect(): Promise<RawClient> {
  const c = await RawClient.connect(node.port, app.key);
  clients.push(c);
  return c;
}

async function trigger(channel: string, data: string): Promise<void> {
  const res = await rest(node.url, app, 'POST', `/apps/${app.id}/events`, { name: 'msg', channel, data });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

/**
 * Records an event as the node would (the same script, keys and policy) but publishes it on a channel
 * in the same slot that nobody subscribes to: kept in the history, delivered nowhere. Returns its position.
 */
async function recordUnseen(channel: string, data: string, size: number): Promise<string> {
  const k = keys.history(app.id, channel);
  const nowhere = `${keys.channel(app.id, channel)}:nobody`;
  const frame = channelEvent('msg', channel, data);
  const args = [newEpoch(), size, recovery.historyTtl * 1000, EPOCH_KEEP_MS, frame, '', nowhere, '1 gap-test\n\n', 'gap-test', 1];
  if (keys.cluster) args.push('SPUBLISH');
  return String(await direct.eval(recordEvent.lua, 4, k.epoch, k.serial, k.events, k.senders, ...args));
}

const positionOf = (f: Frame) => (f as Frame & { ripple_position?: string }).ripple_position;
const serialOf = (p: string | null | undefined) => Number(String(p).split(':')[1]);
const eventsOf = (c: RawClient, channel: string) => c.frames.filter((f) => f.channel === channel && f.event === 'msg');
const outcomesOf = (c: RawClient, channel: string) =>
  c.frames.filter((f) => f.channel === channel && f.event === 'pusher_internal:ripple_recovery').map((f) => JSON.parse(f.data as string) as RecoveryOutcome);

async function until(c: RawClient, channel: string, count: number): Promise<Frame[]> {
  await eventually(() => eventsOf(c, channel).length >= count, { timeoutMs: 5000, what: () => `${count} events on ${channel}, have ${eventsOf(c, channel).length}` });
  return eventsOf(c, channel);
}

async function gapsCounted(): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`ripple_recovery_channel_gaps_total{app="${app.id}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('a recorded event that never reached the node but is in the history: the opted-in client gets it, then the next one, in order, once each, told nothing', async () => {
  const channel = 'gap-refilled';
  const c = await connect();
  await subscribeRecovering(c, channel);
  const before = await gapsCounted();
  await trigger(channel, 'a');
  await until(c, channel, 1);
  const unseen = await recordUnseen(channel, 'b', recovery.historySize);
  assert.equal(serialOf(unseen), 2);
  await trigger(channel, 'c');
  await until(c, channel, 3);
  await trigger(channel, 'd');
  await until(c, channel, 4);
  await sleep(200);
  assert.deepEqual(
    eventsOf(c, channel).map((f) => [f.data, serialOf(positionOf(f))]),
    [['a', 1], ['b', 2], ['c', 3], ['d', 4]],
  );
  assert.equal(outcomesOf(c, channel).length, 1, "no outcome but the subscribe's: the gap was filled");
  assert.equal(await gapsCounted(), before + 1);
  assert.match(node.output(), /"channel":"gap-refilled".*did not reach the node/);
});

test('a recorded event that never reached the node and is no longer in the history: the opted-in client is told (recovered: false, trimmed), then gets the next ones', async () => {
  const channel = 'one-gap'; // its history keeps 1 event
  const c = await connect();
  await subscribeRecovering(c, channel);
  await trigger(channel, 'a');
  await until(c, channel, 1);
  await recordUnseen(channel, 'b', 1);
  await trigger(channel, 'c'); // the history now keeps only this one
  await until(c, channel, 2);
  await trigger(channel, 'd');
  await until(c, channel, 3);
  await sleep(200);
  assert.deepEqual(
    eventsOf(c, channel).map((f) => [f.data, serialOf(positionOf(f))]),
    [['a', 1], ['c', 3], ['d', 4]],
  );
  const outcomes = outcomesOf(c, channel);
  assert.equal(outcomes.length, 2);
  assert.deepEqual([outcomes[1].recovered, outcomes[1].reason, serialOf(outcomes[1].position)], [false, 'trimmed', 2]);
  const order = c.frames.filter((f) => f.channel === channel && f.event !== 'pusher_internal:subscription_succeeded').map((f) => (f.event === 'msg' ? f.data : 'outcome'));
  assert.deepEqual(order, ['outcome', 'a', 'outcome', 'c', 'd'], 'told before the event that revealed the gap');
});
