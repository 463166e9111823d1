// Webhooks end to end: Pusher's format and signature (checked by the pusher SDK), filters, ordering,
// retries through receiver failures and outages, and cluster correctness (issue: webhooks never lost,
// never wrong).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import PusherServer from 'pusher';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { eventually, sleep, waitUntil } from '../src/testing/eventually.js';
import { RawClient, presenceAuth, privateAuth } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

const app = { id: 'wh-app', key: 'wh-key', secret: 'wh-secret' };
const allTypes = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event', 'cache_miss'];
const nodes: NodeHandle[] = [];
const receivers: WebhookReceiver[] = [];
let redis: RedisHandle;

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
  await Promise.all(receivers.map((r) => r.stop()));
  await redis.stop();
});

async function receiver(opts: { up?: boolean } = {}): Promise<WebhookReceiver> {
  const r = await WebhookReceiver.start(opts);
  receivers.push(r);
  return r;
}
async function node(config: unknown, env: Record<string, string> = {}): Promise<NodeHandle> {
  const n = await startNode({ config, env: { WEBHOOK_BATCH_MS: '20', ...env } });
  nodes.push(n);
  return n;
}
test('webhooks are Pusher-formatted, signed with the app secret, valid for the pusher SDK, and ordered per channel', async () => {
  const r = await receiver();
  const n = await node({ apps: [{ ...app, enableClientMessages: true, webhooks: [{ url: r.url, event_types: allTypes }] }] });
  const a = await RawClient.connect(n.port, app.key);
  const b = await RawClient.connect(n.port, app.key);
  const data = JSON.stringify({ user_id: 'u1', user_info: { name: 'Ann' } });
  await a.subscribe('presence-w', presenceAuth(app.key, app.secret, a.socketId, 'presence-w', data), data);
  await a.subscribe('private-w', privateAuth(app.key, app.secret, a.socketId, 'private-w'));
  await b.subscribe('private-w', privateAuth(app.key, app.secret, b.socketId, 'private-w'));
  a.send({ event: 'client-x', channel: 'private-w', data: { hi: 1 } });
  await b.nextEvent('client-x');
  await a.subscribe('cache-w');
  await a.close();
  await eventually(() => r.named('channel_vacated', 'presence-w').length === 1 && r.named('cache_miss').length === 1, { timeoutMs: 5000, what: 'all webhooks' });
  const sdk = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1' });
  for (const req of r.received) {
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['x-pusher-key'], app.key);
    assert.equal(req.headers['x-pusher-signature'], createHmac('sha256', app.secret).update(req.raw).digest('hex'));
    assert.ok(sdk.webhook({ headers: req.headers as Record<string, string>, rawBody: req.raw }).isValid(), 'the pusher SDK accepts it');
    assert.equal(typeof req.timeMs, 'number');
  }
  const names = (ch: string) => r.events().filter((e) => e.channel === ch).map((e) => e.name);
  assert.deepEqual(names('presence-w'), ['channel_occupied', 'member_added', 'member_removed', 'channel_vacated']);
  assert.deepEqual(r.named('member_added')[0], { name: 'member_added', channel: 'presence-w', user_id: 'u1' });
  const ce = r.named('client_event')[0];
  assert.deepEqual({ ...ce }, { name: 'client_event', channel: 'private-w', event: 'client-x', data: { hi: 1 }, socket_id: a.socketId });
  assert.deepEqual(r.named('cache_miss'), [{ name: 'cache_miss', channel: 'cache-w' }]);
  await b.close();
});

test('an endpoint gets only the event types and channels its filter names, and each app signs with its own secret', async () => {
  const all = await receiver();
  const filtered = await receiver();
  const other = await receiver();
  const otherApp = { id: 'wh-2', key: 'wh-key-2', secret: 'wh-secret-2' };
  const n = await node({
    apps: [
      {
        ...app,
        webhooks: [
          { url: all.url, event_types: ['channel_occupied', 'channel_vacated'] },
          { url: filtered.url, event_types: ['channel_occupied'], filter: { channel_name_starts_with: 'presence-' } },
        ],
      },
      { ...otherApp, webhooks: [{ url: other.url, event_types: ['channel_occupied'] }] },
    ],
  });
  const c = await RawClient.connect(n.port, app.key);
  const d = JSON.stringify({ user_id: 'f' });
  await c.subscribe('plain-f');
  await c.subscribe('presence-f', presenceAuth(app.key, app.secret, c.socketId, 'presence-f', d), d);
  const o = await RawClient.connect(n.port, otherApp.key);
  await o.subscribe('plain-o');
  await c.close();
  await eventually(() => all.named('channel_vacated').length === 2 && other.received.length === 1, { timeoutMs: 5000, what: 'webhooks' });
  await sleep(200);
  assert.deepEqual(filtered.events(), [{ name: 'channel_occupied', channel: 'presence-f' }], 'only the filtered event, in the body too');
  assert.equal(other.received[0].headers['x-pusher-key'], otherApp.key);
  assert.equal(other.received[0].headers['x-pusher-signature'], createHmac('sha256', otherApp.secret).update(other.received[0].raw).digest('hex'));
  assert.deepEqual(other.events(), [{ name: 'channel_occupied', channel: 'plain-o' }]);
  await o.close();
});

test('a receiver that fails its first 3 attempts still gets every event, once delivered', async () => {
  const r = await receiver();
  r.failFirst = 3;
  const n = await node({ apps: [{ ...app, webhooks: [{ url: r.url, event_types: ['channel_occupied', 'channel_vacated'] }] }] });
  const c = await RawClient.connect(n.port, app.key);
  for (let i = 0; i < 5; i++) await c.subscribe(`retry-${i}`);
  await c.close();
  await eventually(() => r.named('channel_vacated').length === 5, { timeoutMs: 20_000, what: 'all vacated after retries' });
  assert.ok(r.attempts.length > 3);
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(r.events().filter((e) => e.channel === `retry-${i}`).map((e) => e.name), ['channel_occupied', 'channel_vacated']);
  }
});

test('a receiver down for 10 s and then up gets everything', async () => {
  const r = await receiver({ up: false });
  const n = await node({ apps: [{ ...app, webhooks: [{ url: r.url, event_types: ['channel_occupied', 'channel_vacated'] }] }] });
  const c = await RawClient.connect(n.port, app.key);
  for (let i = 0; i < 10; i++) await c.subscribe(`outage-${i}`);
  await c.close();
  await sleep(10_000);
  await r.up();
  await eventually(() => r.named('channel_vacated').length === 10, { timeoutMs: 40_000, what: 'all events after the outage' });
  assert.equal(r.named('channel_occupied').length, 10);
});

test('three nodes give exactly one channel_occupied and one channel_vacated for a channel with subscribers on all three', async () => {
  const r = await receiver();
  const cfg = { apps: [{ ...app, webhooks: [{ url: r.url, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }] }] };
  const env = { REDIS_URL: redis.url, NODE_LEASE_MS: '2000' };
  const ns = await Promise.all([node(cfg, { ...env, NODE_ID: 'w1' }), node(cfg, { ...env, NODE_ID: 'w2' }), node(cfg, { ...env, NODE_ID: 'w3' })]);
  const cs = await Promise.all(ns.map((n) => RawClient.connect(n.port, app.key)));
  await Promise.all(cs.map((c) => c.subscribe('shared')));
  const d = JSON.stringify({ user_id: 'same-user' });
  await Promise.all(cs.map((c) => c.subscribe('presence-shared', presenceAuth(app.key, app.secret, c.socketId, 'presence-shared', d), d)));
  await Promise.all(cs.map((c) => c.close()));
  await eventually(() => r.named('channel_vacated', 'presence-shared').length >= 1 && r.named('channel_vacated', 'shared').length >= 1, { timeoutMs: 8000, what: 'vacated' });
  await sleep(500);
  assert.equal(r.named('channel_occupied', 'shared').length, 1);
  assert.equal(r.named('channel_vacated', 'shared').length, 1);
  assert.equal(r.named('member_added', 'presence-shared').length, 1);
  assert.equal(r.named('member_removed', 'presence-shared').length, 1);
  const order = r.events().filter((e) => e.channel === 'presence-shared').map((e) => e.name);
  assert.deepEqual(order, ['channel_occupied', 'member_added', 'member_removed', 'channel_vacated']);
});

test('when the node holding undelivered webhooks is SIGKILLed, another node delivers them', async () => {
  const r = await receiver({ up: false });
  const cfg = { apps: [{ ...app, webhooks: [{ url: r.url, event_types: ['channel_occupied'] }] }] };
  const env = { REDIS_URL: redis.url, NODE_LEASE_MS: '2000', WEBHOOK_CLAIM_IDLE_MS: '2000' };
  const [doomed, survivor] = await Promise.all([node(cfg, { ...env, NODE_ID: 'wk-1' }), node(cfg, { ...env, NODE_ID: 'wk-2' })]);
  const c = await RawClient.connect(doomed.port, app.key);
  for (let i = 0; i < 3; i++) await c.subscribe(`held-${i}`);
  // The receiver is down: the doomed node holds the occupied webhooks, retrying. Then it dies.
  await sleep(1000);
  await doomed.kill();
  await r.up();
  await eventually(() => r.named('channel_occupied').length >= 3, { timeoutMs: 30_000, what: 'the survivor delivered the dead node\'s webhooks' });
  assert.deepEqual(r.named('channel_occupied').map((e) => e.channel).sort(), ['held-0', 'held-1', 'held-2']);
  void survivor;
});

test('what still fails after the retry bound lands in the dead-letter list, shows in metrics, and replays', async () => {
  const r = await receiver();
  r.failFirst = 1_000_000;
  const n = await node(
    { apps: [{ ...app, webhooks: [{ url: r.url, event_types: ['channel_occupied', 'channel_vacated'] }] }] },
    { WEBHOOK_MAX_RETRY_MS: '1500' },
  );
  const c = await RawClient.connect(n.port, app.key);
  await c.subscribe('doomed-hook');
  await c.close();
  let dead: { dead_letters: { url: string; events: { name: string; channel: string }[]; attempts: number; error: string }[] } = { dead_letters: [] };
  await waitUntil(
    async () => {
      dead = (await rest(n.url, app, 'GET', `/apps/${app.id}/webhooks/dead_letters`)).body as unknown as typeof dead;
      return dead.dead_letters.length > 0;
    },
    { timeoutMs: 10_000, intervalMs: 100 },
  );
  assert.ok(dead.dead_letters.length >= 1, 'a dead letter is listed');
  const letter = dead.dead_letters[0];
  assert.equal(letter.url, r.url);
  assert.ok(letter.attempts > 1, 'it was retried before giving up');
  assert.match(letter.error, /HTTP 500/);
  const deadEvents = dead.dead_letters.flatMap((d) => d.events);
  assert.deepEqual(deadEvents.map((e) => e.name).sort(), ['channel_occupied', 'channel_vacated']);
  const metrics = await (await fetch(`${n.url}/metrics`)).text();
  assert.match(metrics, new RegExp(`^ripple_webhook_failures_total\\{app="${app.id}"\\} [1-9]`, 'm'));
  assert.match(metrics, new RegExp(`^ripple_webhook_retries_total\\{app="${app.id}"\\} [1-9]`, 'm'));
  // The operator fixes the receiver and replays: everything arrives, and the list is empty.
  r.failFirst = 0;
  const replay = await rest(n.url, app, 'POST', `/apps/${app.id}/webhooks/dead_letters/replay`, {});
  assert.equal(replay.status, 200);
  assert.deepEqual(replay.body, { replayed_events: 2 });
  await eventually(() => r.named('channel_vacated', 'doomed-hook').length === 1, { timeoutMs: 5000, what: 'replayed webhooks' });
  assert.deepEqual(r.events().map((e) => e.name), ['channel_occupied', 'channel_vacated']);
  assert.deepEqual((await rest(n.url, app, 'GET', `/apps/${app.id}/webhooks/dead_letters`)).body, { dead_letters: [] });
  // Unsigned or badly signed calls to these routes are refused like every other REST call.
  assert.equal((await fetch(`${n.url}/apps/${app.id}/webhooks/dead_letters`)).status, 401);
});

test('a receiver that hangs hits the timeout and is retried, while the gateway keeps delivering at full speed', async () => {
  const r = await receiver();
  r.hangFirst = 1;
  const n = await node(
    { apps: [{ ...app, webhooks: [{ url: r.url, event_types: ['channel_occupied'] }] }] },
    { WEBHOOK_TIMEOUT_MS: '1000' },
  );
  const c = await RawClient.connect(n.port, app.key);
  await c.subscribe('hang-1');
  // While the webhook request hangs, channel traffic is unaffected.
  const started = Date.now();
  for (let i = 0; i < 20; i++) {
    const got = c.nextEvent('tick');
    const res = await rest(n.url, app, 'POST', `/apps/${app.id}/events`, { name: 'tick', channel: 'hang-1', data: String(i) });
    assert.equal(res.status, 200);
    await got;
  }
  assert.ok(Date.now() - started < 1000, '20 round trips while a webhook hangs');
  await eventually(() => r.received.length === 1, { timeoutMs: 10_000, what: 'delivered after the timeout' });
  assert.ok(r.attempts.length >= 2);
  assert.deepEqual(r.events(), [{ name: 'channel_occupied', channel: 'hang-1' }]);
  await c.close();
});

test('cluster mode: webhooks that happen while Redis is down are kept by the node and delivered once it is back', async () => {
  const r = await receiver();
  const cfg = { apps: [{ ...app, enableClientMessages: true, webhooks: [{ url: r.url, event_types: ['client_event'] }] }] };
  const env = { REDIS_URL: redis.url, NODE_LEASE_MS: '2000', WEBHOOK_CLAIM_IDLE_MS: '2000' };
  const n = await node(cfg, { ...env, NODE_ID: 'wo-1' });
  const a = await RawClient.connect(n.port, app.key);
  const b = await RawClient.connect(n.port, app.key);
  await a.subscribe('private-out', privateAuth(app.key, app.secret, a.socketId, 'private-out'));
  await b.subscribe('private-out', privateAuth(app.key, app.secret, b.socketId, 'private-out'));
  await redis.stop();
  for (let i = 0; i < 3; i++) {
    a.send({ event: 'client-during', channel: 'private-out', data: { i } });
    await b.nextEvent('client-during'); // local delivery goes on without Redis
  }
  await sleep(500);
  assert.equal(r.received.length, 0, 'nothing can be queued in Redis yet');
  await redis.restart();
  await eventually(() => r.named('client_event').length === 3, { timeoutMs: 15_000, what: 'the outage\'s webhooks' });
  assert.deepEqual(r.named('client_event').map((e) => (e.data as { i: number }).i), [0, 1, 2]);
  await a.close();
  await b.close();
});
