import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadConfigWithNotes, ConfigError } from './load.js';

function file(content: unknown): string {
  const p = join(mkdtempSync(join(tmpdir(), 'ripple-load-')), 'c.json');
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

test("with no configuration the development app has Soketi's default credentials, and client events off as in Soketi", () => {
  const { config: c, notices } = loadConfigWithNotes([], {});
  assert.equal(c.port, 6001);
  assert.equal(c.apps.length, 1);
  assert.deepEqual([c.apps[0].id, c.apps[0].key, c.apps[0].secret], ['app-id', 'app-key', 'app-secret']);
  assert.equal(c.apps[0].enableClientMessages, false);
  assert.ok(notices.some((n) => n.startsWith('client events (client-*) are off for every app')), notices.join('\n'));
  assert.equal(c.apps[0].maxEventPayloadInKb, 10);
  assert.equal(c.apps[0].maxPresenceMembersPerChannel, 100);
  assert.equal(c.redisUrl, undefined);
});

test('an app from SOKETI_DEFAULT_APP_* or APP_* has client events off unless it says so; the start names the apps that allow them', () => {
  for (const env of [
    { SOKETI_DEFAULT_APP_ID: 'sk', SOKETI_DEFAULT_APP_KEY: 'k', SOKETI_DEFAULT_APP_SECRET: 's' },
    { APP_ID: 'r', APP_KEY: 'k', APP_SECRET: 's' },
  ]) {
    assert.equal(loadConfig([], env).apps[0].enableClientMessages, false, Object.keys(env)[0]);
  }
  const on = loadConfigWithNotes([], { APP_ID: 'r', APP_KEY: 'k', APP_SECRET: 's', SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: 'true' });
  assert.equal(on.config.apps[0].enableClientMessages, true);
  assert.ok(on.notices.includes('client events (client-*) are allowed for every app: r'), on.notices.join('\n'));
  const mixed = loadConfigWithNotes(['--config', file({ apps: [{ id: 'chat', key: 'k1', secret: 's', enableClientMessages: true }, { id: 'news', key: 'k2', secret: 's' }] })], {});
  assert.ok(
    mixed.notices.some((n) => n.startsWith('client events (client-*) are allowed for chat; off for the other 1 app(s)')),
    mixed.notices.join('\n'),
  );
});

test('environment variables override the development app and server settings', () => {
  const c = loadConfig([], { APP_ID: '7', APP_KEY: 'k', APP_SECRET: 's', PORT: '7000', APP_MAX_CONNECTIONS: '3', APP_ENABLE_CLIENT_MESSAGES: 'false' });
  assert.equal(c.port, 7000);
  assert.deepEqual([c.apps[0].id, c.apps[0].key, c.apps[0].secret, c.apps[0].maxConnections], ['7', 'k', 's', 3]);
  assert.equal(c.apps[0].enableClientMessages, false);
});

test('a bad field is rejected with a message naming it', () => {
  const p = file({ apps: [{ id: '1', key: 'k', secret: 's', maxConnections: 'lots' }] });
  assert.throws(() => loadConfig(['--config', p], {}), (e: Error) => e instanceof ConfigError && /apps\.0\.maxConnections/.test(e.message));
  const q = file({ apps: [{ id: '1', key: 'k', secret: 's', maxConections: 5 }] });
  assert.throws(() => loadConfig(['--config', q], {}), (e: Error) => e instanceof ConfigError && /apps\.0\.maxConections: unknown setting \(did you mean maxConnections\?\)/.test(e.message));
  assert.throws(() => loadConfig([], { PORT: 'x' }), (e: Error) => e instanceof ConfigError && /PORT/.test(e.message));
  assert.throws(() => loadConfig(['--config', file('{not json')], {}), (e: Error) => e instanceof ConfigError && /not valid JSON/.test(e.message));
});

test('duplicate app keys are rejected', () => {
  const p = file({ apps: [{ id: '1', key: 'k', secret: 's' }, { id: '2', key: 'k', secret: 's' }] });
  assert.throws(() => loadConfig(['--config', p], {}), /duplicate app key k/);
});

test("a Soketi config file works unchanged: apps under appManager.array.apps, snake_case and PascalCase fields", () => {
  const p = file({
    debug: true,
    port: 6010,
    'appManager.array.apps': [
      { id: 'app-1', key: 'key-1', secret: 'secret-1', max_connections: 50, EnableClientMessages: true, maxBackendEventsPerSecond: 20,
        webhooks: [{ url: 'http://127.0.0.1:9/hook', event_types: ['channel_occupied'] }] },
    ],
    'database.redis.host': '127.0.0.1',
  });
  const { config, warnings } = loadConfigWithNotes(['--config', p], {});
  assert.equal(config.port, 6010);
  assert.equal(config.logLevel, 'debug');
  assert.equal(config.apps[0].maxConnections, 50);
  assert.equal(config.apps[0].enableClientMessages, true);
  assert.equal(config.apps[0].maxBackendEventsPerSecond, 20);
  assert.equal(config.apps[0].webhooks[0].url, 'http://127.0.0.1:9/hook');
  // Redis settings without adapter.driver "redis" do nothing in Soketi either: reported, single node
  assert.equal(config.redisOptions, undefined);
  assert.deepEqual(warnings.map((w) => w.split(':')[0]), ['database.redis.host']);
  const nested = file({ appManager: { array: { apps: [{ id: 1, key: 'k', secret: 's' }] } } });
  assert.equal(loadConfig(['--config', nested], {}).apps[0].id, '1');
});

test('the loaded configuration is frozen', () => {
  const c = loadConfig([], {});
  assert.throws(() => {
    (c as { port: number }).port = 1;
  });
});

test('WEBHOOK_CLAIM_IDLE_MS, the old name of a lease length, is read as NODE_LEASE_MS unless that is set', () => {
  const alias = loadConfigWithNotes([], { WEBHOOK_CLAIM_IDLE_MS: '2000' });
  assert.equal(alias.config.nodeLeaseMs, 2000);
  assert.ok(alias.notices.some((n) => n.includes('WEBHOOK_CLAIM_IDLE_MS') && n.includes('NODE_LEASE_MS')), alias.notices.join('\n'));
  assert.equal(loadConfig([], {}).nodeLeaseMs, 10_000);
  const both = loadConfigWithNotes([], { WEBHOOK_CLAIM_IDLE_MS: '2000', NODE_LEASE_MS: '3000' });
  assert.equal(both.config.nodeLeaseMs, 3000);
  assert.ok(both.warnings.some((w) => w.startsWith('WEBHOOK_CLAIM_IDLE_MS: ignored')), both.warnings.join('\n'));
  const fromFile = loadConfig(['--config', file({ apps: [{ id: '1', key: 'k', secret: 's' }], webhooks: { claimIdleMs: 4000 } })], {});
  assert.equal(fromFile.nodeLeaseMs, 4000);
});

test('WORKERS (or --workers) above 1 needs cluster mode and a shared port', () => {
  assert.equal(loadConfig([], {}).workers, 1);
  assert.equal(loadConfig(['--workers', '4'], { REDIS_URL: 'redis://127.0.0.1:6379' }).workers, 4);
  assert.throws(() => loadConfig([], { WORKERS: '2' }), (e: Error) => e instanceof ConfigError && /^WORKERS: several node processes need cluster mode/.test(e.message));
  assert.throws(() => loadConfig(['--workers=2'], { REDIS_URL: 'redis://x', REUSE_PORT: 'false' }), /REUSE_PORT: off, but --workers starts 2 processes/);
  assert.throws(() => loadConfig([], { WORKERS: '0' }), /WORKERS: /);
});
