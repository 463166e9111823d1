// Changes made directly in the app table reach a running node within 3 s, with no cache setting: a
// row inserted, its secret, limits, webhooks and flags updated, disabled, deleted. Live sessions follow
// (a new secret signs their next subscription; a disabled or deleted app's sockets are closed 4003).
// With Soketi's cache settings the change takes effect within the TTL. Lookups come from memory: a
// storm of connections for one new key, or for an unknown one, costs one query.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SOKETI_TABLE, testDatabase, type Driver, type TestDatabase } from '../src/testing/databases.js';
import { eventually } from '../src/testing/eventually.js';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { privateAuth, RawClient } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

/** Hot changes take effect within this (the bound), measured from the statement's commit. */
const WITHIN_MS = 3000;

let receiver: WebhookReceiver;
before(async () => (receiver = await WebhookReceiver.start()));
after(() => receiver.stop());

const quote = (db: TestDatabase, n: string) => (db.driver === 'postgres' ? `"${n}"` : `\`${n}\``);
const ph = (db: TestDatabase, i: number) => (db.driver === 'postgres' ? `$${i}` : '?');

async function insertApp(db: TestDatabase, id: string, extra: Record<string, unknown> = {}): Promise<void> {
  const row: Record<string, unknown> = {
    id,
    key: `${id}-key`,
    secret: `${id}-secret`,
    max_connections: -1,
    enable_client_messages: 0,
    enabled: 1,
    max_backend_events_per_sec: -1,
    max_client_events_per_sec: -1,
    max_read_req_per_sec: -1,
    enable_user_authentication: 0,
    ...extra,
  };
  const names = Object.keys(row);
  await db.sql(`INSERT INTO apps (${names.map((n) => quote(db, n)).join(', ')}) VALUES (${names.map((_, i) => ph(db, i + 1)).join(', ')})`, Object.values(row));
}

async function update(db: TestDatabase, id: string, set: Record<string, unknown>): Promise<void> {
  const names = Object.keys(set);
  const assignments = names.map((n, i) => `${quote(db, n)} = ${ph(db, i + 1)}`).join(', ');
  await db.sql(`UPDATE apps SET ${assignments} WHERE id = ${ph(db, names.length + 1)}`, [...Object.values(set), id]);
}

function ripplesEnv(db: TestDatabase, extra: Record<string, string> = {}): Record<string, string> {
  return { APP_STORE_DRIVER: db.driver, APP_STORE_HOST: db.host, APP_STORE_PORT: String(db.port), APP_STORE_USER: db.user, APP_STORE_DATABASE: db.name, ...extra };
}

async function lookupsSent(node: NodeHandle): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const m = /^ripple_app_store_lookups_total\{result="answered"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

for (const driver of ['postgres', 'mysql'] as Driver[]) {
  test(`${driver === 'mysql' ? 'MariaDB' : 'PostgreSQL'}: rows inserted, updated, disabled and deleted in the table take effect within 3 s, for new and live connections`, async () => {
    const db = await testDatabase(driver);
    let node: NodeHandle | undefined;
    const clients: RawClient[] = [];
    const connect = async (key: string) => {
      const c = await RawClient.connect(node!.port, key);
      clients.push(c);
      return c;
    };
    try {
      await db.sql(SOKETI_TABLE[driver]);
      await insertApp(db, 'one');
      node = await startNode({ env: ripplesEnv(db) });
      const one = { id: 'one', key: 'one-key', secret: 'one-secret' };
      const live = await connect(one.key);

      // inserted: the new key connects (it was unknown a moment ago, and remembered as such)
      const early = await RawClient.open(node.port, 'two-key');
      assert.equal((await early.closed).code, 4001);
      await insertApp(db, 'two');
      await eventually(async () => (await RawClient.connect(node!.port, 'two-key').then((c) => (clients.push(c), true), () => false)), { timeoutMs: WITHIN_MS, what: 'the inserted app' });

      // the secret: REST signed with the new one, and a live session's next subscription
      await update(db, 'one', { secret: 'one-rotated' });
      const rotated = { ...one, secret: 'one-rotated' };
      await eventually(async () => (await rest(node!.url, rotated, 'GET', '/apps/one/channels')).status === 200, { timeoutMs: WITHIN_MS, what: 'the new secret on REST' });
      assert.equal((await rest(node.url, one, 'GET', '/apps/one/channels')).status, 401, 'the old secret no longer');
      const sub = await live.subscribe('private-a', privateAuth(one.key, rotated.secret, live.socketId, 'private-a'));
      assert.equal(sub.event, 'pusher_internal:subscription_succeeded', 'a live session signs with the new secret');

      // limits: event data over a lowered limit is refused
      assert.equal((await rest(node.url, rotated, 'POST', '/apps/one/events', { name: 'e', channel: 'c', data: 'x'.repeat(3000) })).status, 200);
      await update(db, 'one', { max_event_payload_in_kb: 2 });
      await eventually(async () => (await rest(node!.url, rotated, 'POST', '/apps/one/events', { name: 'e', channel: 'c', data: 'x'.repeat(3000) })).status === 413, { timeoutMs: WITHIN_MS, what: 'the lowered payload limit' });

      // flags and webhooks: client events switched on for the live session, and their webhook
      const peer = await connect(one.key);
      await peer.subscribe('private-a', privateAuth(one.key, rotated.secret, peer.socketId, 'private-a'));
      await update(db, 'one', { enable_client_messages: 1, webhooks: JSON.stringify([{ url: receiver.url, event_types: ['client_event'] }]) });
      await eventually(
        async () => {
          live.send({ event: 'client-hi', channel: 'private-a', data: {} });
          return peer.nextEvent('client-hi', 'private-a', 300).then(() => true, () => false);
        },
        { timeoutMs: WITHIN_MS, what: 'client events switched on' },
      );
      await eventually(() => receiver.named('client_event', 'private-a').length > 0, { timeoutMs: WITHIN_MS, what: 'the new webhook' });

      // disabled: live sockets closed with 4003, new ones refused 4003
      await update(db, 'one', { enabled: 0 });
      const closed = await Promise.race([live.closed, new Promise<undefined>((r) => setTimeout(r, WITHIN_MS))]);
      assert.equal(closed?.code, 4003, 'a live socket of the disabled app closed within 3 s');
      assert.equal((await RawClient.open(node.port, one.key).then((c) => c.closed)).code, 4003);

      // deleted: the other app's live socket closed, its key unknown from then on
      const two = clients.find((c) => c !== live && c !== peer && c !== early)!;
      await db.sql(`DELETE FROM apps WHERE id = ${ph(db, 1)}`, ['two']);
      const gone = await Promise.race([two.closed, new Promise<undefined>((r) => setTimeout(r, WITHIN_MS))]);
      assert.equal(gone?.code, 4003, 'a live socket of the deleted app closed within 3 s');
      assert.equal((await RawClient.open(node.port, 'two-key').then((c) => c.closed)).code, 4001);
    } finally {
      for (const c of clients) c.ws.terminate();
      await node?.stop();
      await db.drop();
    }
  });
}

test("with Soketi's cache settings a change takes effect within the cache's TTL", async () => {
  const db = await testDatabase('postgres');
  let node: NodeHandle | undefined;
  try {
    await db.sql(SOKETI_TABLE.postgres);
    await insertApp(db, 'cached');
    node = await startNode({
      env: ripplesEnv(db, { APP_STORE_DRIVER: '', SOKETI_APP_MANAGER_DRIVER: 'postgres', SOKETI_DB_POSTGRES_DATABASE: db.name, SOKETI_DB_POSTGRES_USERNAME: 'postgres', SOKETI_APP_MANAGER_CACHE_ENABLED: 'true', SOKETI_APP_MANAGER_CACHE_TTL: '2' }),
    });
    const app = { id: 'cached', key: 'cached-key', secret: 'cached-secret' };
    assert.equal((await rest(node.url, app, 'GET', '/apps/cached/channels')).status, 200);
    await update(db, 'cached', { secret: 'cached-new' });
    await eventually(async () => (await rest(node!.url, { ...app, secret: 'cached-new' }, 'GET', '/apps/cached/channels')).status === 200, {
      timeoutMs: 2000 + 500,
      what: 'the new secret within the TTL (2 s)',
    });
  } finally {
    await node?.stop();
    await db.drop();
  }
});

test('a storm of connections for one new key costs one query, and so does a storm for an unknown key', async () => {
  const db = await testDatabase('postgres');
  let node: NodeHandle | undefined;
  const clients: RawClient[] = [];
  try {
    await db.sql(SOKETI_TABLE.postgres);
    await insertApp(db, 'storm');
    node = await startNode({ env: ripplesEnv(db) });
    const before = await lookupsSent(node);
    const opened = await Promise.all(Array.from({ length: 100 }, () => RawClient.connect(node!.port, 'storm-key')));
    clients.push(...opened);
    assert.equal((await lookupsSent(node)) - before, 1, '100 connections for a key not yet loaded: one lookup');
    const unknown = await Promise.all(Array.from({ length: 100 }, () => RawClient.open(node!.port, 'nobody-key').then((c) => (clients.push(c), c.closed))));
    assert.ok(unknown.every((c) => c.code === 4001));
    assert.equal((await lookupsSent(node)) - before, 2, '100 connections for an unknown key: one more lookup');
  } finally {
    for (const c of clients) c.ws.terminate();
    await node?.stop();
    await db.drop();
  }
});
