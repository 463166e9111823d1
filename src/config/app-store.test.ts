// Where apps come from when a database holds them: ripple's appStore settings, and Soketi's and
// Sockudo's own names and config shapes for the same, read through the real loader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigWithNotes, ConfigError } from './load.js';

function file(content: unknown): string {
  const p = join(mkdtempSync(join(tmpdir(), 'ripple-appstore-')), 'c.json');
  writeFileSync(p, JSON.stringify(content));
  return p;
}
const load = (env: Record<string, string>, content?: unknown) => loadConfigWithNotes(content === undefined ? [] : [`--config=${file(content)}`], env);
const rejects = (env: Record<string, string>, content: unknown, message: RegExp) =>
  assert.throws(() => load(env, content), (e: Error) => e instanceof ConfigError && message.test(e.message), String(message));

test("Soketi's environment picks the MySQL table with Soketi's defaults for what it leaves unset", () => {
  const { config } = load({ SOKETI_APP_MANAGER_DRIVER: 'mysql', SOKETI_DB_MYSQL_HOST: 'db.internal', SOKETI_DB_MYSQL_PASSWORD: 'pw' });
  assert.deepEqual(
    { ...config.appStore, defaults: undefined, columns: undefined },
    { driver: 'mysql', host: 'db.internal', port: 3306, user: 'root', password: 'pw', database: 'main', table: 'apps', poolSize: 10, refreshMs: 1000, secretsTable: 'ripple_app_secrets', defaults: undefined, columns: undefined },
  );
  assert.deepEqual(config.apps, [], 'no development app next to a database');
  const pg = load({ SOKETI_APP_MANAGER_DRIVER: 'postgres', SOKETI_DB_POSTGRES_PORT: '6543', SOKETI_APP_MANAGER_POSTGRES_TABLE: 'soketi_apps', SOKETI_DB_POSTGRES_USERNAME: 'u', SOKETI_DB_POSTGRES_DATABASE: 'd' }).config.appStore!;
  assert.deepEqual([pg.driver, pg.host, pg.port, pg.user, pg.password, pg.database, pg.table], ['postgres', '127.0.0.1', 6543, 'u', 'password', 'd', 'soketi_apps']);
});

test("Soketi's JSON config: the app manager, its cache TTL as the change check's interval, and pooling", () => {
  const { config, notices } = load(
    {},
    {
      appManager: { driver: 'postgres', postgres: { table: 't1', version: '13.3' }, cache: { enabled: true, ttl: 30 } },
      database: { postgres: { host: 'pg', user: 'soketi', password: 'x', database: 'sk' } },
      databasePooling: { enabled: true, min: 1, max: 4 },
    },
  );
  const s = config.appStore!;
  assert.deepEqual([s.driver, s.host, s.port, s.user, s.database, s.table, s.poolSize, s.refreshMs], ['postgres', 'pg', 5432, 'soketi', 'sk', 't1', 4, 30_000]);
  assert.match(notices.join('\n'), /appManager\.cache\.ttl: apps are checked for changes every 30 s/);
  // a cache that never expires is not copied
  const forever = load({ SOKETI_APP_MANAGER_DRIVER: 'mysql', SOKETI_APP_MANAGER_CACHE_ENABLED: 'true' });
  assert.equal(forever.config.appStore!.refreshMs, 1000);
  assert.match(forever.warnings.join('\n'), /^SOKETI_APP_MANAGER_CACHE_ENABLED: a cache that never expires is not copied/m);
  // without the cache, changes are seen within a second, as Soketi sees them at the next lookup
  assert.equal(load({ SOKETI_APP_MANAGER_DRIVER: 'mysql', SOKETI_APP_MANAGER_CACHE_ENABLED: 'false', SOKETI_APP_MANAGER_CACHE_TTL: '60' }).config.appStore!.refreshMs, 1000);
});

test("Sockudo's environment and config shape: APP_MANAGER_DRIVER, DATABASE_* and its applications table", () => {
  const env = load({
    APP_MANAGER_DRIVER: 'pgsql',
    DATABASE_POSTGRES_HOST: '127.0.0.1',
    DATABASE_POSTGRES_USERNAME: 'sockudo',
    DATABASE_POSTGRES_PASSWORD: 'pw',
    DATABASE_POSTGRES_DATABASE: 'realtime',
  }).config.appStore!;
  assert.deepEqual([env.driver, env.host, env.port, env.user, env.password, env.database, env.table], ['postgres', '127.0.0.1', 5432, 'sockudo', 'pw', 'realtime', 'applications']);
  const my = load({ APP_MANAGER_DRIVER: 'mysql', DATABASE_MYSQL_TABLE_NAME: 'apps_v2', DATABASE_MYSQL_PORT: '3307' }).config.appStore!;
  assert.deepEqual([my.driver, my.host, my.port, my.user, my.password, my.database, my.table], ['mysql', 'localhost', 3307, 'root', '', 'sockudo', 'apps_v2']);
  const shape = load(
    {},
    { app_manager: { driver: 'mysql', cache: { enabled: true, ttl: 5 } }, database: { mysql: { host: 'h', username: 'u', table_name: 'tbl', connection_pool_size: 3 } } },
  ).config.appStore!;
  assert.deepEqual([shape.driver, shape.host, shape.user, shape.table, shape.poolSize, shape.refreshMs], ['mysql', 'h', 'u', 'tbl', 3, 5000]);
  rejects({ APP_MANAGER_DRIVER: 'scylladb' }, undefined, /^APP_MANAGER_DRIVER: "scylladb" is not supported/);
});

test("ripple's own APP_STORE_* settings win over the peers' names, and a file may map columns", () => {
  const { config } = load(
    { SOKETI_APP_MANAGER_DRIVER: 'mysql', APP_STORE_DRIVER: 'postgres', APP_STORE_DATABASE: 'mine', APP_STORE_REFRESH_MS: '250', APP_STORE_SSL: '{"rejectUnauthorized":false}' },
    { appStore: { driver: 'mysql', database: 'x', columns: { maxClientEventsPerSecond: 'client_rate' }, table: 'realtime.apps' } },
  );
  const s = config.appStore!;
  assert.deepEqual([s.driver, s.database, s.refreshMs, s.table], ['postgres', 'mine', 250, 'realtime.apps']);
  assert.deepEqual(s.ssl, { rejectUnauthorized: false });
  assert.deepEqual(s.columns, { maxClientEventsPerSecond: 'client_rate' });
  rejects({}, { appStore: { driver: 'mysql', database: 'x', table: 'apps; drop table apps' } }, /appStore\.table: must be a plain SQL table name/);
  rejects({}, { appStore: { driver: 'mysql', database: 'x', columns: { nope: 'c' } } }, /appStore\.columns/);
  rejects({}, { appStore: { driver: 'oracle', database: 'x' } }, /appStore\.driver/);
});

test("with a database the config's apps and the development app's variables are not used, and say so; Soketi's server-wide limits become column defaults", () => {
  const { config, warnings } = load(
    { SOKETI_APP_MANAGER_DRIVER: 'postgres', APP_ID: 'dev', SOKETI_PRESENCE_MAX_MEMBERS: '7', SOKETI_EVENT_MAX_SIZE_IN_KB: '20' },
    { apps: [{ id: 'a', key: 'b', secret: 'c' }] },
  );
  assert.deepEqual(config.apps, []);
  assert.match(warnings.join('\n'), /^apps: ignored; apps come from the postgres table \(SOKETI_APP_MANAGER_DRIVER\)/m);
  assert.match(warnings.join('\n'), /^APP_ID: ignored; apps come from the postgres table/m);
  assert.deepEqual(config.appStore!.defaults, { maxPresenceMembersPerChannel: 7, maxEventPayloadInKb: 20 });
  rejects({ SOKETI_APP_MANAGER_DRIVER: 'postgres', SOKETI_PRESENCE_MAX_MEMBERS: '0' }, undefined, /SOKETI_PRESENCE_MAX_MEMBERS: /);
  // without a database, an empty app list is still an error
  rejects({}, { apps: [] }, /^apps: at least one app is needed/);
});
