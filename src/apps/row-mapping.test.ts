// Reading Soketi's and Sockudo's rows as the drivers hand them over (flags as 0/1 or booleans, numbers
// as text, JSON as text or parsed, NULL for the default), and writing fields back in each column's type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RowMapping, RowWriteError, type ColumnInfo } from './row-mapping.js';

const soketiRow = {
  id: 42,
  key: 'k',
  secret: 's',
  max_connections: 0,
  enable_client_messages: 1,
  enabled: '1',
  max_backend_events_per_sec: '-1',
  max_client_events_per_sec: 5,
  max_read_req_per_sec: null,
  max_presence_members_per_channel: -1,
  max_presence_member_size_in_kb: '2.5',
  max_event_payload_in_kb: '',
  webhooks: '[{"url":"http://h/x","event_types":["channel_occupied"]}]',
  enable_user_authentication: Buffer.from([1]),
  created_at: new Date(),
};

test("a Soketi row: 0 connections is unlimited, flags and numbers in any of the drivers' shapes, NULL or empty or -1 in a positive limit as the default", () => {
  const read = new RowMapping({}, {}).read(soketiRow);
  assert.ok(read.ok, JSON.stringify(read));
  const c = read.config;
  assert.equal(c.id, '42');
  assert.equal(c.maxConnections, -1);
  assert.deepEqual([c.enableClientMessages, c.enabled, c.enableUserAuthentication], [true, true, true]);
  assert.deepEqual([c.maxBackendEventsPerSecond, c.maxClientEventsPerSecond, c.maxReadRequestsPerSecond], [-1, 5, -1]);
  assert.equal(c.maxPresenceMembersPerChannel, 100, '-1 where a limit must be positive: the default');
  assert.equal(c.maxPresenceMemberSizeInKb, 2.5);
  assert.equal(c.maxEventPayloadInKb, 10);
  assert.equal(c.webhooks[0].url, 'http://h/x');
});

test("a Sockudo row: booleans, *_per_second columns, parsed JSON, allowed origins, its webhook filter names; defaults under the row's values", () => {
  const read = new RowMapping({}, { maxClientEventsPerSecond: 7, maxEventBatchSize: 3 }).read({
    id: 'a',
    key: 'k',
    secret: 's',
    max_connections: 10,
    enable_client_messages: false,
    enabled: true,
    max_backend_events_per_second: null,
    max_client_events_per_second: null,
    max_read_requests_per_second: 3,
    max_event_batch_size: 4,
    allowed_origins: ['https://a.example'],
    webhooks: [{ url: 'http://h/x', event_types: ['member_added'], filter: { channel_prefix: 'presence-', channel_suffix: null }, headers: null, lambda: null, retry: { max_attempts: 3 } }],
    enable_watchlist_events: true,
    policy: null,
  });
  assert.ok(read.ok, JSON.stringify(read));
  assert.equal(read.config.maxConnections, 10);
  assert.equal(read.config.maxClientEventsPerSecond, 7, 'NULL: the configured default');
  assert.equal(read.config.maxEventBatchSize, 4, "the row's value over the default");
  assert.equal(read.config.maxReadRequestsPerSecond, 3);
  assert.deepEqual(read.config.allowedOrigins, ['https://a.example']);
  assert.deepEqual(read.config.webhooks[0].filter, { channel_name_starts_with: 'presence-' });
  assert.match(read.notes.join(), /retry and request_timeout_ms of a webhook are not used/);
});

test('webhooks ripple cannot honour are left out and said so; a bad row names its column', () => {
  const mapping = new RowMapping({}, {});
  const base = { id: 'a', key: 'k', secret: 's' };
  const lambda = mapping.read({ ...base, webhooks: [{ lambda_function: 'f', event_types: ['client_event'] }, { url: 'http://h/x', event_types: ['client_event'], lambda: {} }] });
  assert.ok(lambda.ok);
  assert.equal(lambda.config.webhooks.length, 1);
  assert.match(lambda.notes.join(), /AWS Lambda webhook is not called/);
  const pattern = mapping.read({ ...base, webhooks: [{ url: 'http://h/x', event_types: ['client_event'], filter: { channel_pattern: 'a.*' } }] });
  assert.ok(pattern.ok);
  assert.deepEqual(pattern.config.webhooks, []);
  assert.match(pattern.notes.join(), /filtered by channel_pattern is left out/);

  assert.deepEqual(mapping.read({ ...base, webhooks: '{not json' }), { ok: false, id: 'a', problem: 'webhooks: not valid JSON' });
  const notList = mapping.read({ ...base, webhooks: { url: 'x' } });
  assert.ok(!notList.ok && /^webhooks: /.test(notList.problem), JSON.stringify(notList));
  const noSecret = mapping.read({ id: 'a', key: 'k', secret: '' });
  assert.ok(!noSecret.ok && /^secret: /.test(noSecret.problem), JSON.stringify(noSecret));
  const flag = mapping.read({ ...base, enabled: 'maybe' });
  assert.ok(!flag.ok && /^enabled: "maybe" is not a flag/.test(flag.problem));
  const tooLong = mapping.read({ ...base, max_channel_name_length: 5000 });
  assert.ok(!tooLong.ok && /^max_channel_name_length: /.test(tooLong.problem));
});

test('a column mapped by the config is read and written under its own name', () => {
  const mapping = new RowMapping({ secret: 'app_secret', maxClientEventsPerSecond: 'client_rate' }, {});
  const read = mapping.read({ id: 'a', key: 'k', app_secret: 'from-mapped', secret: 'ignored', client_rate: 9 });
  assert.ok(read.ok);
  assert.equal(read.config.secret, 'from-mapped');
  assert.equal(read.config.maxClientEventsPerSecond, 9);
  const columns = new Map<string, ColumnInfo>([['app_secret', { name: 'app_secret', type: 'text', optional: false }]]);
  assert.deepEqual(mapping.write({ secret: 'n' }, columns), { app_secret: 'n' });
});

test("fields are written in each column's type, and a value a column cannot hold is refused", () => {
  const cols = (list: [string, string][]) => new Map(list.map(([name, type]) => [name, { name, type, optional: true }]));
  const mapping = new RowMapping({}, {});
  const soketiMy = cols([['enabled', 'tinyint(1)'], ['max_connections', 'int(10)'], ['webhooks', 'json'], ['max_backend_events_per_sec', 'int(11)']]);
  assert.deepEqual(mapping.write({ enabled: false, maxConnections: -1, webhooks: [], maxBackendEventsPerSecond: -1 }, soketiMy), {
    enabled: 0,
    max_connections: -1,
    webhooks: '[]',
    max_backend_events_per_sec: -1,
  });
  const sockudoMy = cols([['enabled', 'tinyint(1)'], ['max_connections', 'int(10) unsigned'], ['max_backend_events_per_second', 'int(10) unsigned']]);
  assert.deepEqual(mapping.write({ maxConnections: -1 }, sockudoMy), { max_connections: 0 }, 'unlimited connections in an unsigned column: 0');
  assert.throws(() => mapping.write({ maxBackendEventsPerSecond: -1 }, sockudoMy), RowWriteError);
  const sockudoPg = cols([['enabled', 'boolean'], ['allowed_origins', 'jsonb']]);
  assert.deepEqual(mapping.write({ enabled: true, allowedOrigins: ['*'] }, sockudoPg), { enabled: true, allowed_origins: '["*"]' });
  assert.throws(() => mapping.write({ maxEventBatchSize: 3 }, sockudoPg), /the app table has no column for maxEventBatchSize/);
  assert.throws(() => mapping.write({ maxUserIdLength: 3 }, sockudoPg), /maxUserIdLength cannot be stored/);
});
