// Soketi's and Sockudo's app tables, unchanged, on the real PostgreSQL and MariaDB servers: a node
// started with the peer's own environment names serves the rows, honouring every field (client
// events, the connection limit, enabled, webhooks, the limit columns, user authentication, allowed
// origins), reads NULL as the default, and skips a bad row (reported by its id) without falling over.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { soketiEnv, sockudoEnv, SOCKUDO_TABLE, SOKETI_TABLE, testDatabase, type Driver, type TestDatabase } from '../src/testing/databases.js';
import { eventually } from '../src/testing/eventually.js';
import { startNode, type NodeHandle } from '../src/testing/harness.js';
import { presenceAuth, privateAuth, RawClient } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';
import { WebhookReceiver } from '../src/testing/webhook-receiver.js';

type Layout = 'soketi' | 'sockudo';

const receiver = await WebhookReceiver.start();
after(() => receiver.stop());

/** Column names of the two layouts that differ. */
const SPELLING: Record<Layout, Record<string, string>> = {
  soketi: { backend: 'max_backend_events_per_sec', client: 'max_client_events_per_sec', read: 'max_read_req_per_sec' },
  sockudo: { backend: 'max_backend_events_per_second', client: 'max_client_events_per_second', read: 'max_read_requests_per_second' },
};

/** Inserts a row with the layout's own column names and value types (flags as 0/1 or booleans). */
async function insert(db: TestDatabase, layout: Layout, row: Record<string, unknown>): Promise<void> {
  const table = layout === 'soketi' ? 'apps' : 'applications';
  const flag = (v: unknown) => (layout === 'sockudo' && db.driver === 'postgres' ? v === 1 : v);
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    const column = SPELLING[layout][k] ?? k;
    values[column] = k.startsWith('enable') ? flag(v) : v !== null && typeof v === 'object' ? JSON.stringify(v) : v;
  }
  const names = Object.keys(values);
  const q = (n: string) => (db.driver === 'postgres' ? `"${n}"` : `\`${n}\``);
  const params = names.map((_, i) => (db.driver === 'postgres' ? `$${i + 1}` : '?'));
  await db.sql(`INSERT INTO ${table} (${names.map(q).join(', ')}) VALUES (${params.join(', ')})`, Object.values(values));
}

/** Every column a layout's NOT NULL constraints ask for. */
const base = (id: string, layout: Layout) => ({
  id,
  key: `${id}-key`,
  secret: `${id}-secret`,
  max_connections: 0,
  enable_client_messages: 0,
  enabled: 1,
  // unsigned in Sockudo's MySQL layout, where NULL (the default) stands for none
  backend: layout === 'sockudo' ? null : -1,
  client: 100,
  read: layout === 'sockudo' ? null : -1,
  enable_user_authentication: 0,
});

function open(port: number, key: string, origin?: string): Promise<{ code: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${key}?protocol=7&client=js&version=8.4.0`, { origin });
    ws.on('close', (code) => resolve({ code }));
    ws.on('error', () => undefined);
    ws.on('message', (m) => {
      if (String(m).includes('connection_established')) ws.close(1000);
    });
  });
}

for (const driver of ['postgres', 'mysql'] as Driver[]) {
  for (const layout of ['soketi', 'sockudo'] as Layout[]) {
    test(`${layout}'s ${driver === 'mysql' ? 'MariaDB' : 'PostgreSQL'} table, started with ${layout}'s environment names: every field honoured, NULL as the default, a bad row skipped`, async () => {
      const db = await testDatabase(driver);
      let node: NodeHandle | undefined;
      const clients: RawClient[] = [];
      try {
        await db.sql((layout === 'soketi' ? SOKETI_TABLE : SOCKUDO_TABLE)[driver]);
        await insert(db, layout, {
          ...base('main', layout),
          max_connections: 2,
          enable_client_messages: 1,
          read: 2,
          webhooks: [{ url: receiver.url, event_types: ['client_event'] }],
          max_channel_name_length: 20,
          max_event_payload_in_kb: 1,
          max_event_batch_size: 2,
          max_event_channels_at_once: 2,
          max_event_name_length: 10,
          max_presence_members_per_channel: 1,
        });
        await insert(db, layout, { ...base('off', layout), enabled: 0 });
        await insert(db, layout, { ...base('signin', layout), enable_user_authentication: 1 });
        await insert(db, layout, { ...base('bad', layout), webhooks: { not: 'a list' } });
        await insert(db, layout, base('plain', layout));
        if (layout === 'sockudo') await insert(db, layout, { ...base('origins', layout), allowed_origins: ['https://ok.example'] });

        const env = { ...(layout === 'soketi' ? soketiEnv(db) : sockudoEnv(db)), SOKETI_USER_AUTHENTICATION_TIMEOUT: '1000' };
        // An empty variable is no setting (for Soketi too): a password-less MariaDB root is written in Soketi's config file.
        const config = layout === 'soketi' && driver === 'mysql' ? { database: { mysql: { password: '' } } } : undefined;
        node = await startNode({ env, config });
        const main = { id: 'main', key: 'main-key', secret: 'main-secret' };

        // enabled, the connection limit (0 elsewhere: unlimited)
        const a = await RawClient.connect(node.port, main.key);
        const b = await RawClient.connect(node.port, main.key);
        clients.push(a, b);
        assert.equal((await open(node.port, main.key)).code, 4004, 'max_connections 2');
        assert.equal((await open(node.port, 'off-key')).code, 4003, 'enabled 0');

        // client events (enable_client_messages) and their webhook (webhooks)
        for (const c of [a, b]) {
          const r = await c.subscribe('private-room', privateAuth(main.key, main.secret, c.socketId, 'private-room'));
          assert.equal(r.event, 'pusher_internal:subscription_succeeded');
        }
        a.send({ event: 'client-x', channel: 'private-room', data: { who: 'a' } });
        assert.deepEqual((await b.nextEvent('client-x', 'private-room')).data, { who: 'a' });
        await eventually(() => receiver.named('client_event', 'private-room').some((e) => e.event === 'client-x' && e.socket_id === a.socketId), { timeoutMs: 5000, what: 'client_event webhook' });

        // the limit columns
        const long = await a.subscribe('private-twenty-one-chars', privateAuth(main.key, main.secret, a.socketId, 'private-twenty-one-chars'));
        assert.notEqual(long.event, 'pusher_internal:subscription_succeeded', 'max_channel_name_length 20');
        const channelData = (id: string) => JSON.stringify({ user_id: id });
        assert.equal((await a.subscribe('presence-r', presenceAuth(main.key, main.secret, a.socketId, 'presence-r', channelData('ann')), channelData('ann'))).event, 'pusher_internal:subscription_succeeded');
        assert.equal((await b.subscribe('presence-r', presenceAuth(main.key, main.secret, b.socketId, 'presence-r', channelData('bob')), channelData('bob'))).event, 'pusher:subscription_error', 'max_presence_members_per_channel 1');
        const trigger = (body: unknown) => rest(node!.url, main, 'POST', '/apps/main/events', body);
        assert.equal((await trigger({ name: 'ok', channel: 'c', data: 'x' })).status, 200);
        assert.equal((await trigger({ name: 'ok', channel: 'c', data: 'x'.repeat(2048) })).status, 413, 'max_event_payload_in_kb 1');
        assert.equal((await trigger({ name: 'much-too-long', channel: 'c', data: 'x' })).status, 400, 'max_event_name_length 10');
        assert.equal((await trigger({ name: 'ok', channels: ['c1', 'c2', 'c3'], data: 'x' })).status, 400, 'max_event_channels_at_once 2');
        const batch = (n: number) => rest(node!.url, main, 'POST', '/apps/main/batch_events', { batch: Array.from({ length: n }, () => ({ name: 'ok', channel: 'c', data: 'x' })) });
        assert.equal((await batch(3)).status, 400, 'max_event_batch_size 2');
        const reads = await Promise.all(Array.from({ length: 6 }, () => rest(node!.url, main, 'GET', '/apps/main/channels')));
        assert.ok(reads.some((r) => r.status === 429), `max read requests 2/s: ${reads.map((r) => r.status)}`);

        // NULL limit columns: the server's defaults (10 KB of event data)
        const plain = { id: 'plain', key: 'plain-key', secret: 'plain-secret' };
        assert.equal((await rest(node.url, plain, 'POST', '/apps/plain/events', { name: 'ok', channel: 'c', data: 'x'.repeat(5 * 1024) })).status, 200);
        assert.equal((await rest(node.url, plain, 'POST', '/apps/plain/events', { name: 'ok', channel: 'c', data: 'x'.repeat(11 * 1024) })).status, 413);

        // user authentication: a connection that does not sign in is closed
        const signin = await RawClient.connect(node.port, 'signin-key');
        clients.push(signin);
        assert.equal((await signin.closed).code, 4009, 'enable_user_authentication 1');

        // allowed origins (Sockudo's column)
        if (layout === 'sockudo') {
          assert.equal((await open(node.port, 'origins-key', 'https://evil.example')).code, 4009);
          assert.equal((await open(node.port, 'origins-key', 'https://ok.example')).code, 1000);
        }

        // a bad row: skipped, reported by id, the node serves on
        assert.equal((await open(node.port, 'bad-key')).code, 4001);
        await eventually(() => /"app":"bad".*app row skipped|app row skipped.*"app":"bad"/.test(node!.output()), { timeoutMs: 5000, what: 'the bad row reported' });
        assert.equal((await open(node.port, 'main-key')).code, 4004, 'still serving');
      } finally {
        for (const c of clients) c.ws.terminate();
        await node?.stop();
        await db.drop();
      }
    });
  }
}
