// The management API on a cluster of two nodes sharing a PostgreSQL app table (and Redis): apps
// created, changed, disabled and deleted through one node reach both within 1 s (the table check is
// slowed to a minute here, so the backbone is what carries them); a rotated secret and its predecessor
// are both accepted during the overlap for REST signatures, channel auth and sign-in, webhooks are
// signed with the new one, and only the new one is accepted after; secrets are answered masked; the
// routes are the operator's only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { SOKETI_TABLE, testDatabase, type TestDatabase } from '../src/testing/databases.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { startNode, startRedis, type NodeHandle, type RedisHandle } from '../src/testing/harness.js';
import { privateAuth, RawClient, signinAuth } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

const TOKEN = 'operator-token-for-tests-0123456789';
/** API changes reach every node within this (the bound). */
const WITHIN_MS = 1000;

let db: TestDatabase;
let redis: RedisHandle;
let receiver: WebhookReceiver;
let a: NodeHandle;
let b: NodeHandle;
const clients: RawClient[] = [];

before(async () => {
  db = await testDatabase('postgres');
  await db.sql(SOKETI_TABLE.postgres);
  redis = await startRedis();
  receiver = await WebhookReceiver.start();
  const env = {
    REDIS_URL: redis.url,
    OPERATOR_TOKEN: TOKEN,
    APP_STORE_DRIVER: 'postgres',
    APP_STORE_HOST: db.host,
    APP_STORE_PORT: String(db.port),
    APP_STORE_USER: db.user,
    APP_STORE_DATABASE: db.name,
    // Only the backbone can carry a change to the other node within the bound.
    APP_STORE_REFRESH_MS: '60000',
  };
  [a, b] = await Promise.all([startNode({ env }), startNode({ env })]);
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all([a?.stop(), b?.stop()]);
  await receiver?.stop();
  await redis?.stop();
  await db?.drop();
});

async function api(node: NodeHandle, method: string, path: string, body?: unknown, token = TOKEN) {
  const res = await fetch(`${node.url}/ripple/apps${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
}

/** Resolves with the close code, or undefined if the socket is still open after ms. */
function closedWithin(c: RawClient, ms: number): Promise<number | undefined> {
  return Promise.race([c.closed.then((x) => x.code), sleep(ms).then(() => undefined)]);
}

async function connect(node: NodeHandle, key: string): Promise<RawClient> {
  const c = await RawClient.connect(node.port, key);
  clients.push(c);
  return c;
}

test('apps created, updated, disabled and deleted through one node reach both nodes within 1 s, and their live sockets follow', async () => {
  // unknown on b first (and remembered as unknown there)
  assert.equal((await RawClient.open(b.port, 'made-key').then((c) => c.closed)).code, 4001);
  const created = await api(a, 'POST', '', { id: 'made', key: 'made-key', enableClientMessages: true, maxConnections: 5 });
  assert.equal(created.status, 201);
  const secret = created.body.secret as string;
  assert.match(secret, /^[0-9a-f]{40}$/, 'a generated secret, answered in full this once');
  assert.equal(created.body.app.secret, `…${secret.slice(-4)}`);
  const t0 = Date.now();
  const onB = await connect(b, 'made-key');
  assert.ok(Date.now() - t0 < WITHIN_MS, 'the new app connects on the other node at once');
  const onA = await connect(a, 'made-key');

  // listed and read masked
  const list = await api(b, 'GET', '');
  const listed = list.body.apps.find((x: { id: string }) => x.id === 'made');
  assert.equal(listed.secret, `…${secret.slice(-4)}`);
  assert.equal(listed.maxConnections, 5);
  assert.ok(!JSON.stringify(list.body).includes(secret), 'no secret in full in a listing');
  assert.equal((await api(b, 'GET', '/made')).body.app.enableClientMessages, true);

  // an update (a lower payload limit) applies on both nodes within the bound
  assert.equal((await api(a, 'PATCH', '/made', { maxEventPayloadInKb: 1 })).status, 200);
  const app = { id: 'made', key: 'made-key', secret };
  const started = Date.now();
  await eventually(async () => (await rest(b.url, app, 'POST', '/apps/made/events', { name: 'e', channel: 'c', data: 'x'.repeat(2000) })).status === 413, {
    timeoutMs: WITHIN_MS,
    what: 'the update on the other node',
  });
  assert.ok(Date.now() - started < WITHIN_MS);

  // disabled: the sockets on both nodes are closed 4003 within the bound
  assert.equal((await api(a, 'PATCH', '/made', { enabled: false })).status, 200);
  assert.deepEqual(await Promise.all([closedWithin(onA, WITHIN_MS), closedWithin(onB, WITHIN_MS)]), [4003, 4003]);
  assert.equal((await RawClient.open(b.port, 'made-key').then((c) => c.closed)).code, 4003);

  // enabled again, then deleted: a socket on b closed, the key unknown on both
  assert.equal((await api(b, 'PATCH', '/made', { enabled: true })).status, 200);
  const again = await connect(b, 'made-key');
  assert.equal((await api(a, 'DELETE', '/made')).status, 204);
  assert.equal(await closedWithin(again, WITHIN_MS), 4003);
  assert.equal((await RawClient.open(a.port, 'made-key').then((c) => c.closed)).code, 4001);
  assert.equal((await api(b, 'GET', '/made')).status, 404);
  const rows = await db.sql('SELECT count(*)::int AS n FROM apps');
  assert.equal(rows[0].n, 0, 'written to the table itself');
});

test("a rotated secret: both accepted during the overlap (REST, channel auth, sign-in), webhooks signed with the new one, only the new one after", async () => {
  const created = await api(a, 'POST', '', {
    id: 'rot',
    key: 'rot-key',
    secret: 'old-secret-0123456789',
    webhooks: [{ url: receiver.url, event_types: ['channel_occupied'] }],
  });
  assert.equal(created.status, 201);
  const old = { id: 'rot', key: 'rot-key', secret: 'old-secret-0123456789' };
  const live = await connect(b, old.key);

  const rotated = await api(a, 'POST', '/rot/rotate-secret', { overlapSeconds: 3 });
  assert.equal(rotated.status, 200);
  const fresh = { ...old, secret: rotated.body.secret as string };
  const overlapEnds = Date.parse(rotated.body.previousSecretValidUntil);
  assert.notEqual(fresh.secret, old.secret);
  const shown = (await api(a, 'GET', '/rot')).body.app;
  assert.equal(shown.secret, `…${fresh.secret.slice(-4)}`);
  assert.equal(shown.previousSecret.secret, `…${old.secret.slice(-4)}`);

  // during the overlap, on both nodes: REST with either secret
  await eventually(async () => (await rest(b.url, fresh, 'GET', '/apps/rot/channels')).status === 200, { timeoutMs: WITHIN_MS, what: 'the new secret on b' });
  for (const node of [a, b]) {
    assert.equal((await rest(node.url, old, 'GET', '/apps/rot/channels')).status, 200, 'the old secret during the overlap');
    assert.equal((await rest(node.url, fresh, 'GET', '/apps/rot/channels')).status, 200);
  }
  // channel auth on a live session, with either secret
  assert.equal((await live.subscribe('private-old', privateAuth(old.key, old.secret, live.socketId, 'private-old'))).event, 'pusher_internal:subscription_succeeded');
  assert.equal((await live.subscribe('private-new', privateAuth(old.key, fresh.secret, live.socketId, 'private-new'))).event, 'pusher_internal:subscription_succeeded');
  // sign-in with the old secret
  const user = JSON.stringify({ id: 'u1' });
  live.send({ event: 'pusher:signin', data: { user_data: user, auth: signinAuth(old.key, old.secret, live.socketId, user) } });
  assert.equal((await live.nextEvent('pusher:signin_success')).event, 'pusher:signin_success');
  // webhooks are signed with the new secret
  await eventually(() => receiver.received.some((r) => r.events.some((e) => e.channel === 'private-old')), { timeoutMs: 5000, what: 'channel_occupied' });
  const hook = receiver.received.find((r) => r.events.some((e) => e.channel === 'private-old'))!;
  assert.equal(hook.headers['x-pusher-signature'], createHmac('sha256', fresh.secret).update(hook.raw).digest('hex'));

  // after the overlap: the old secret is refused everywhere, the new one accepted
  await sleep(Math.max(0, overlapEnds - Date.now()) + 100);
  for (const node of [a, b]) {
    assert.equal((await rest(node.url, old, 'GET', '/apps/rot/channels')).status, 401, 'the old secret after the overlap');
    assert.equal((await rest(node.url, fresh, 'GET', '/apps/rot/channels')).status, 200);
  }
  assert.equal((await live.subscribe('private-late', privateAuth(old.key, old.secret, live.socketId, 'private-late'))).event, 'pusher:subscription_error');
  assert.equal((await live.subscribe('private-late2', privateAuth(old.key, fresh.secret, live.socketId, 'private-late2'))).event, 'pusher_internal:subscription_succeeded');
});

test('the management routes are the operator\'s only, and refuse what the table cannot hold', async () => {
  assert.equal((await api(a, 'GET', '', undefined, 'wrong-token-wrong-token')).status, 401);
  assert.equal((await fetch(`${a.url}/ripple/apps`)).status, 401);
  assert.equal((await api(a, 'POST', '', { nope: 1 })).status, 400);
  assert.equal((await api(a, 'POST', '', { maxConnections: 'many' })).status, 400);
  assert.equal((await api(a, 'POST', '', { maxUserIdLength: 20 })).status, 400, 'a field the table has no column for');
  assert.equal((await api(a, 'POST', '', { id: 'dup', key: 'dup-key' })).status, 201);
  assert.equal((await api(a, 'POST', '', { id: 'dup', key: 'dup-key' })).status, 409);
  assert.equal((await api(a, 'PATCH', '/dup', { id: 'other' })).status, 400);
  assert.equal((await api(a, 'PATCH', '/missing', { enabled: false })).status, 404);
  assert.equal((await api(a, 'POST', '/missing/rotate-secret', {})).status, 404);
  assert.equal((await api(a, 'POST', '/dup/rotate-secret', { overlapSeconds: -1 })).status, 400);
  // nothing logged holds a secret
  const created = await api(a, 'POST', '', { id: 'quiet' });
  await api(a, 'POST', '/quiet/rotate-secret', {});
  for (const out of [a.output(), b.output()]) assert.ok(!out.includes(created.body.secret), 'a secret in a log');
});

test('without an operator token the routes do not exist; with apps from the config, writes are refused; under PATH_PREFIX', async () => {
  const plain = await startNode({ env: { APP_ID: 'x', APP_KEY: 'y', APP_SECRET: 'secret-of-x' } });
  const fromConfig = await startNode({ env: { APP_ID: 'x', APP_KEY: 'y', APP_SECRET: 'secret-of-x-0123', OPERATOR_TOKEN: TOKEN } });
  const prefixed = await startNode({ env: { APP_ID: 'x', APP_KEY: 'y', APP_SECRET: 'secret-of-x-0123', OPERATOR_TOKEN: TOKEN, PATH_PREFIX: '/ws' }, healthPath: '/ws/health' });
  try {
    assert.equal((await api(prefixed, 'GET', '')).status, 404);
    assert.equal((await fetch(`${prefixed.url}/ws/ripple/apps`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    assert.equal((await api(plain, 'GET', '')).status, 404);
    const list = await api(fromConfig, 'GET', '');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.apps.map((x: { id: string; secret: string }) => [x.id, x.secret]), [['x', '…0123']]);
    assert.equal((await api(fromConfig, 'POST', '', { id: 'z' })).status, 409);
  } finally {
    await Promise.all([plain.stop(), fromConfig.stop(), prefixed.stop()]);
  }
});
