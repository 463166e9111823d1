// Issue 23 point 4: in a cluster with default settings, SIGKILL the node that delivers an endpoint's
// webhooks, and the survivor's new events reach the receiver again within 5 s, in order and none
// lost; what the crash itself makes due (the dead node's channel_vacated) follows once its node lease
// has run out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { RawClient } from '../src/testing/raw-client.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

const app = { id: 'wt-id', key: 'wt-key', secret: 'wt-secret' };
let redis: RedisHandle;
const nodes: NodeHandle[] = [];
const clients: RawClient[] = [];
let receiver: WebhookReceiver;

before(async () => {
  redis = await startRedis();
  receiver = await WebhookReceiver.start();
});
after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(nodes.map((n) => n.kill()));
  await receiver?.stop();
  await redis?.stop();
});

async function subscribe(n: NodeHandle, channel: string): Promise<void> {
  const c = await RawClient.connect(n.port, app.key);
  clients.push(c);
  assert.equal((await c.subscribe(channel)).event, 'pusher_internal:subscription_succeeded');
}

test('SIGKILL of the delivering node with default settings: the survivor\'s channel_occupied webhooks arrive within 5 s, in order, none lost; the crash\'s channel_vacated follows the node lease', async (t) => {
  const cfg = { apps: [{ ...app, webhooks: [{ url: receiver.url, event_types: ['channel_occupied', 'channel_vacated'] }] }] };
  // Default lease and batching: only the cluster's Redis and the node names are set.
  const env = (id: string) => ({ REDIS_URL: redis.url, NODE_ID: id });
  // The first node is alone when it starts, so it owns the endpoint's queue; the second finds it owned.
  const doomed = await startNode({ config: cfg, env: env('wt-doomed') });
  nodes.push(doomed);
  await subscribe(doomed, 'on-doomed');
  await eventually(() => receiver.named('channel_occupied', 'on-doomed').length === 1, { timeoutMs: 5000, what: 'the first node delivers' });
  const survivor = await startNode({ config: cfg, env: env('wt-survivor') });
  nodes.push(survivor);
  await subscribe(survivor, 'before-kill');
  await eventually(() => receiver.named('channel_occupied', 'before-kill').length === 1, { timeoutMs: 5000, what: 'the survivor\'s event, delivered by the first node' });

  const killedAt = Date.now();
  await doomed.kill();
  const channels = ['after-0', 'after-1', 'after-2', 'after-3', 'after-4'];
  for (const ch of channels) {
    await subscribe(survivor, ch);
    await sleep(200);
  }
  await eventually(() => channels.every((ch) => receiver.named('channel_occupied', ch).length > 0), {
    timeoutMs: 20_000,
    what: () => `the survivor's new events; got ${JSON.stringify(receiver.events())}`,
  });
  const firstAfter = receiver.received.find((r) => r.events.some((e) => e.channel === 'after-0'))!;
  const tookMs = firstAfter.at - killedAt;
  t.diagnostic(`first new webhook ${tookMs} ms after the SIGKILL`);
  assert.ok(tookMs < 5000, `webhooks flow again within 5 s of the SIGKILL: the first new one took ${tookMs} ms`);
  const occupied = receiver.named('channel_occupied').map((e) => e.channel);
  assert.deepEqual(
    occupied.filter((ch) => String(ch).startsWith('after-')),
    channels,
    'the new events in the order they happened, each once',
  );

  // The dead node's own channel empties once its lease (10 s by default) has run out: that arrives too.
  await eventually(() => receiver.named('channel_vacated', 'on-doomed').length === 1, { timeoutMs: 20_000, what: 'the crash\'s channel_vacated' });
  assert.deepEqual(receiver.named('channel_occupied', 'on-doomed').length, 1);
});
