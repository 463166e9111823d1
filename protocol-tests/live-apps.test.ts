// Apps as a live source: a node started with one app follows its app store when apps are added,
// changed, disabled and removed at run time (the static store's replace(), standing in for a database
// store's change detection). Cluster mode on a real Redis, so the Redis webhook queue, its doorbell and
// the presence scripts' routes are the ones that must follow.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { StaticAppStore } from '../src/apps/static-store.js';
import { ConfigSchema, type AppConfig } from '../src/config/schema.js';
import { startNode, type RunningNode } from '../src/node.js';
import { silentLog } from '../src/testing/memory-node.js';
import { eventually } from '../src/testing/eventually.js';
import { freePort, startRedis, type RedisHandle } from '../src/testing/harness.js';
import { presenceAuth, privateAuth, RawClient } from '../src/testing/raw-client.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

let redis: RedisHandle;
let receiver: WebhookReceiver;
let node: RunningNode;
let store: StaticAppStore;
const clients: RawClient[] = [];

const first = { id: 'first', key: 'first-key', secret: 'first-secret' };
const added = { id: 'added', key: 'added-key', secret: 'added-secret' };

function appConfigs(list: Record<string, unknown>[]): AppConfig[] {
  return ConfigSchema.parse({ apps: list }).apps;
}

before(async () => {
  redis = await startRedis();
  receiver = await WebhookReceiver.start();
  // No app has webhooks at start: the Redis webhook queue and its doorbell must exist anyway.
  const config = ConfigSchema.parse({ port: await freePort(), host: '127.0.0.1', redisUrl: redis.url, redisPrefix: 'live', nodeLeaseMs: 2000, apps: [first] });
  store = new StaticAppStore(config.apps);
  node = await startNode(config, silentLog, { apps: store });
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await node?.stop();
  await receiver?.stop();
  await redis?.stop();
});

async function connect(key: string): Promise<RawClient> {
  const c = await RawClient.connect(node.port, key);
  clients.push(c);
  return c;
}

/** A signed REST request (spec §9.2) with this app's key and the given secret. */
async function rest(app: { id: string; key: string }, secret: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const params = new URLSearchParams({ auth_key: app.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' });
  if (text) params.set('body_md5', createHash('md5').update(text).digest('hex'));
  const query = [...params.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
  const signature = createHmac('sha256', secret).update(`${method}\n${path}\n${query}`).digest('hex');
  const url = `http://127.0.0.1:${node.port}${path}?${query}&auth_signature=${signature}`;
  return fetch(url, { method, body: text || undefined, headers: text ? { 'content-type': 'application/json' } : undefined });
}

test('an app added at run time: its connections, presence webhooks from the Redis scripts, long names on REST, and its secret and changes followed by live sessions', async () => {
  // Not there yet: 4001.
  const early = await RawClient.open(node.port, added.key);
  clients.push(early);
  assert.equal((await early.nextEvent('pusher:error')).data && (await early.closed).code, 4001);

  const webhooks = [{ url: receiver.url, event_types: ['channel_occupied', 'member_added'] }];
  store.replace(appConfigs([first, { ...added, webhooks, maxUserIdLength: 1000 }]));

  // Admission follows: the new key connects.
  const c = await connect(added.key);

  // Presence transitions are queued by the Redis scripts with the routes of the app as it is now, and
  // delivered through the webhook queue set that now includes its endpoint.
  const channelData = JSON.stringify({ user_id: 'ann' });
  const joined = await c.subscribe('presence-room', presenceAuth(added.key, added.secret, c.socketId, 'presence-room', channelData), channelData);
  assert.equal(joined.event, 'pusher_internal:subscription_succeeded');
  await eventually(() => receiver.named('member_added', 'presence-room').length === 1 && receiver.named('channel_occupied', 'presence-room').length === 1, {
    timeoutMs: 5000,
    what: 'channel_occupied and member_added webhooks of the added app',
  });
  const signed = receiver.received.find((r) => r.events.some((e) => e.name === 'member_added'))!;
  assert.equal(signed.headers['x-pusher-key'], added.key);
  assert.equal(signed.headers['x-pusher-signature'], createHmac('sha256', added.secret).update(signed.raw).digest('hex'));

  // Path parameters as long as the schema allows reach the route (a user id of 300 '€', 2,700 bytes
  // encoded: over what the apps present at start would have sized the router for).
  const longUser = '€'.repeat(300);
  const terminate = await rest(added, added.secret, 'POST', `/apps/added/users/${encodeURIComponent(longUser)}/terminate_connections`, {});
  assert.equal(terminate.status, 200, await terminate.text());

  // A new secret: REST takes only the new one, and the live session's next channel auth is checked with it.
  const rotated = { ...added, secret: 'added-secret-2' };
  store.replace(appConfigs([first, { ...rotated, webhooks, maxUserIdLength: 1000 }]));
  assert.equal((await rest(added, added.secret, 'GET', '/apps/added/channels')).status, 401);
  assert.equal((await rest(added, rotated.secret, 'GET', '/apps/added/channels')).status, 200);
  const stale = await c.subscribe('private-a', privateAuth(added.key, added.secret, c.socketId, 'private-a'));
  assert.equal(stale.event, 'pusher:subscription_error', 'the old secret no longer signs channel auth');
  const fresh = await c.subscribe('private-b', privateAuth(added.key, rotated.secret, c.socketId, 'private-b'));
  assert.equal(fresh.event, 'pusher_internal:subscription_succeeded');

  // Webhooks are signed with the new secret.
  const c2 = await connect(added.key);
  const channelData2 = JSON.stringify({ user_id: 'bob' });
  await c2.subscribe('presence-room', presenceAuth(added.key, rotated.secret, c2.socketId, 'presence-room', channelData2), channelData2);
  await eventually(() => receiver.named('member_added', 'presence-room').length === 2, { timeoutMs: 5000, what: 'member_added for bob' });
  const bob = receiver.received.find((r) => r.events.some((e) => e.user_id === 'bob'))!;
  assert.equal(bob.headers['x-pusher-signature'], createHmac('sha256', rotated.secret).update(bob.raw).digest('hex'));

  // Webhook event types follow too: an endpoint that no longer wants member_added gets none.
  store.replace(appConfigs([first, { ...rotated, webhooks: [{ url: receiver.url, event_types: ['channel_occupied'] }], maxUserIdLength: 1000 }]));
  const c3 = await connect(added.key);
  const channelData3 = JSON.stringify({ user_id: 'cat' });
  await c3.subscribe('presence-room', presenceAuth(added.key, rotated.secret, c3.socketId, 'presence-room', channelData3), channelData3);
  await c3.subscribe('presence-other', presenceAuth(added.key, rotated.secret, c3.socketId, 'presence-other', channelData3), channelData3);
  await eventually(() => receiver.named('channel_occupied', 'presence-other').length === 1, { timeoutMs: 5000, what: 'channel_occupied of presence-other' });
  assert.deepEqual(receiver.named('member_added').map((e) => e.user_id), ['ann', 'bob'], 'no member_added once the endpoint stopped wanting it');
});

test('a disabled app: its live sessions close with 4003 and new ones are refused; a removed app is unknown to REST', async () => {
  const app = { id: 'doomed', key: 'doomed-key', secret: 'doomed-secret' };
  store.replace(appConfigs([first, app]));
  const live = await connect(app.key);
  const bystander = await connect(first.key);
  store.replace(appConfigs([first, { ...app, enabled: false }]));
  assert.equal((await live.closed).code, 4003);
  const refused = await RawClient.open(node.port, app.key);
  clients.push(refused);
  assert.equal((await refused.closed).code, 4003);
  assert.equal((await rest(app, app.secret, 'GET', '/apps/doomed/channels')).status, 403);
  store.replace(appConfigs([first]));
  assert.equal((await rest(app, app.secret, 'GET', '/apps/doomed/channels')).status, 404);
  assert.equal(bystander.ws.readyState, bystander.ws.OPEN, "another app's session is untouched");
});
