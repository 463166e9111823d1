// Webhook order across nodes (issue 11, point 3): per channel, channel_occupied comes before every
// member_added, every member_removed before channel_vacated, and each user's member_added before its
// member_removed, however the joins and leaves are spread over the nodes, and when a node is
// SIGKILLed and the survivor removes its share.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually } from '../src/testing/eventually.js';
import { RawClient, presenceAuth } from '../src/testing/raw-client.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

const app = { id: 'order-app', key: 'order-key', secret: 'order-secret' };
const CHANNELS = 20;
let redis: RedisHandle;
const nodes: NodeHandle[] = [];
const receivers: WebhookReceiver[] = [];
const clients: RawClient[] = [];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(nodes.map((n) => n.kill()));
  await Promise.all(receivers.map((r) => r.stop()));
  await redis.stop();
});

async function cluster(prefix: string): Promise<{ a: NodeHandle; b: NodeHandle; hooks: WebhookReceiver }> {
  const hooks = await WebhookReceiver.start();
  receivers.push(hooks);
  const config = { apps: [{ ...app, webhooks: [{ url: hooks.url, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }] }] };
  const env = { REDIS_URL: redis.url, REDIS_PREFIX: prefix, NODE_LEASE_MS: '2000', WEBHOOK_BATCH_MS: '20' };
  const [a, b] = await Promise.all([startNode({ config, env: { ...env, NODE_ID: `${prefix}-a` } }), startNode({ config, env: { ...env, NODE_ID: `${prefix}-b` } })]);
  nodes.push(a, b);
  return { a, b, hooks };
}

/** One socket per channel on the node, each joining its channel as `<tag><i>`, all at once. */
async function joinAll(n: NodeHandle, tag: string): Promise<RawClient[]> {
  const cs = await Promise.all(Array.from({ length: CHANNELS }, () => RawClient.connect(n.port, app.key)));
  clients.push(...cs);
  await Promise.all(
    cs.map((c, i) => {
      const data = JSON.stringify({ user_id: `${tag}${i}` });
      return c.subscribe(`presence-order-${i}`, presenceAuth(app.key, app.secret, c.socketId, `presence-order-${i}`, data), data);
    }),
  );
  return cs;
}

function assertOrdered(hooks: WebhookReceiver): void {
  const wrong: string[] = [];
  for (let i = 0; i < CHANNELS; i++) {
    const seen = hooks.firstOf(`presence-order-${i}`);
    const at = (id: string) => seen.indexOf(id);
    const ok =
      seen.length === 6 &&
      at('channel_occupied') === 0 &&
      at('channel_vacated') === 5 &&
      ['a', 'b'].every((tag) => at(`member_added:${tag}${i}`) > 0 && at(`member_added:${tag}${i}`) < at(`member_removed:${tag}${i}`));
    if (!ok) wrong.push(`presence-order-${i}: ${seen.join(', ')}`);
  }
  assert.deepEqual(wrong, [], `${wrong.length} of ${CHANNELS} channels out of order`);
}

test('two nodes, simultaneous joins and leaves on both: every channel\'s webhooks come in transition order', async () => {
  const { a, b, hooks } = await cluster('order1');
  const [onA, onB] = await Promise.all([joinAll(a, 'a'), joinAll(b, 'b')]);
  await Promise.all([...onA, ...onB].map((c) => c.close()));
  await eventually(() => hooks.named('channel_vacated').length >= CHANNELS, { timeoutMs: 15_000, what: () => `${CHANNELS} vacated (got ${hooks.named('channel_vacated').length})` });
  assertOrdered(hooks);
});

test('a node SIGKILLed while the other node\'s members leave: the survivor\'s takeover keeps every channel\'s webhooks in order', async () => {
  const { a, b, hooks } = await cluster('order2');
  const [onA] = await Promise.all([joinAll(a, 'a'), joinAll(b, 'b')]);
  await Promise.all([b.kill(), ...onA.map((c) => c.close())]);
  await eventually(() => hooks.named('channel_vacated').length >= CHANNELS, { timeoutMs: 20_000, what: () => `${CHANNELS} vacated (got ${hooks.named('channel_vacated').length})` });
  assertOrdered(hooks);
});
