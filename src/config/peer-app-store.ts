// Where Soketi and Sockudo read apps from a database, in their own names, mapped to ripple's
// `appStore`: the driver, the connection, the table, the pool size and the app cache.
//
// Soketi 1.6.1: `appManager.driver` mysql | postgres, `database.mysql.*` / `database.postgres.*`
// (host, port, user, password, database; defaults 127.0.0.1, 3306/5432, root/postgres, password,
// main), `appManager.mysql.table` / `appManager.postgres.table` (apps), `appManager.cache.enabled`
// and `.ttl` (seconds, -1 never expires), `databasePooling.enabled` and `.max`.
// Sockudo: `app_manager.driver` (APP_MANAGER_DRIVER) mysql | pgsql | postgres | postgresql,
// `database.mysql.*` / `database.postgres.*` with `username` and `table_name` (DATABASE_MYSQL_*,
// DATABASE_POSTGRES_*; defaults localhost, root, no password, sockudo, applications),
// `app_manager.cache.ttl`, `connection_pool_size`.
import { ConfigError } from './errors.js';
import type { Kind } from './env-names.js';

/** One peer setting as gathered (soketi.ts's SoketiEntry, for any peer). */
interface Entry {
  path: string;
  value: unknown;
  label: string;
  rank: number;
}

interface Sink {
  set(path: string, value: unknown, label: string, rank: number): void;
  warn(message: string): void;
  notice(message: string): void;
}

type Db = 'mysql' | 'postgres';

const CONNECTION = ['host', 'port', 'password', 'database'] as const;

/** Every peer path this module reads, with how its text is read. */
export const PEER_APP_STORE_PATHS: Readonly<Record<string, Kind | 'any'>> = {
  'appManager.driver': 'string',
  'appManager.cache.enabled': 'bool',
  'appManager.cache.ttl': 'int',
  'appManager.mysql.table': 'string',
  'appManager.postgres.table': 'string',
  // Knex's hints (the server version, the mysql2 client): nothing to choose here, read and dropped
  'appManager.mysql.version': 'any',
  'appManager.mysql.useMysql2': 'bool',
  'appManager.postgres.version': 'any',
  'databasePooling.enabled': 'bool',
  'databasePooling.min': 'int',
  'databasePooling.max': 'int',
  'app_manager.driver': 'string',
  'app_manager.cache.enabled': 'bool',
  'app_manager.cache.ttl': 'int',
  ...Object.fromEntries(
    (['mysql', 'postgres'] as const).flatMap((db) => [
      [`database.${db}.host`, 'string'],
      [`database.${db}.port`, 'int'],
      [`database.${db}.user`, 'string'],
      [`database.${db}.username`, 'string'],
      [`database.${db}.password`, 'string'],
      [`database.${db}.database`, 'string'],
      [`database.${db}.table_name`, 'string'],
      [`database.${db}.connection_pool_size`, 'int'],
    ]),
  ),
};

/** Sockudo's environment names (no prefix of their own) → its config paths. */
export const SOCKUDO_ENV: Readonly<Record<string, string>> = {
  APP_MANAGER_DRIVER: 'app_manager.driver',
  // Sockudo's Redis Cluster adapter (its other adapters' settings are Soketi's paths too)
  ADAPTER_DRIVER: 'adapter.driver',
  DATABASE_REDIS_CLUSTER_NODES: 'database.redis.clusterNodes',
  ...Object.fromEntries(
    (['mysql', 'postgres'] as const).flatMap((db) => {
      const up = db.toUpperCase();
      return [
        [`DATABASE_${up}_HOST`, `database.${db}.host`],
        [`DATABASE_${up}_PORT`, `database.${db}.port`],
        [`DATABASE_${up}_USERNAME`, `database.${db}.username`],
        [`DATABASE_${up}_PASSWORD`, `database.${db}.password`],
        [`DATABASE_${up}_DATABASE`, `database.${db}.database`],
      ];
    }),
  ),
  DATABASE_MYSQL_TABLE_NAME: 'database.mysql.table_name',
};

const DRIVERS: Readonly<Record<string, Db | 'static'>> = {
  array: 'static',
  memory: 'static',
  mysql: 'mysql',
  postgres: 'postgres',
  pgsql: 'postgres',
  postgresql: 'postgres',
};

const DEFAULTS = {
  soketi: {
    mysql: { host: '127.0.0.1', port: 3306, user: 'root', password: 'password', database: 'main', table: 'apps' },
    postgres: { host: '127.0.0.1', port: 5432, user: 'postgres', password: 'password', database: 'main', table: 'apps' },
  },
  // Sockudo's own postgres default port is 3306 (one default for both); 5432 is what works.
  sockudo: {
    mysql: { host: 'localhost', port: 3306, user: 'root', password: '', database: 'sockudo', table: 'applications' },
    postgres: { host: 'localhost', port: 5432, user: 'root', password: '', database: 'sockudo', table: 'applications' },
  },
} as const;

/** Soketi's and Sockudo's app-manager settings → `appStore.*`. */
export function applyPeerAppStore(get: (path: string) => Entry | undefined, sink: Sink): void {
  const soketiDriver = get('appManager.driver');
  const sockudoDriver = get('app_manager.driver');
  // The higher-ranked source names the driver when both peers' names are given.
  const driverEntry = [soketiDriver, sockudoDriver].filter((e) => e !== undefined).sort((a, b) => b.rank - a.rank)[0];
  const peer = driverEntry === sockudoDriver ? 'sockudo' : 'soketi';
  const driver = driverEntry && DRIVERS[String(driverEntry.value).toLowerCase()];
  if (driverEntry && !driver) {
    throw new ConfigError(
      `${driverEntry.label}: "${String(driverEntry.value)}" is not supported; ripple reads apps from its config file, ` +
        'the environment, or a MySQL/MariaDB or PostgreSQL table (mysql, postgres)',
    );
  }
  if (!driverEntry || driver === 'static') {
    // Soketi's files often spell out its defaults: only a value of one's own is worth a word.
    for (const db of ['mysql', 'postgres'] as const) {
      for (const k of CONNECTION) {
        const e = get(`database.${db}.${k}`);
        if (!e || e.value === DEFAULTS.soketi[db][k] || e.value === DEFAULTS.sockudo[db][k]) continue;
        sink.warn(`${e.label}: ignored; apps come from the config or the environment unless the app manager driver is mysql or postgres`);
      }
    }
    return;
  }
  const db = driver;
  const defaults = DEFAULTS[peer][db];
  const { label, rank } = driverEntry;
  sink.set('appStore.driver', db, label, rank);
  const put = (field: string, paths: string[], fallback: unknown) => {
    // An empty password is a password (a file may give one); the environment has none (an empty variable is unset).
    const e = paths.map(get).find((x) => x !== undefined && x.value !== null && (x.value !== '' || field === 'password'));
    // the peer's default ranks below any setting of ripple's own
    if (e) sink.set(`appStore.${field}`, e.value, e.label, e.rank);
    else sink.set(`appStore.${field}`, fallback, label, -1);
  };
  put('host', [`database.${db}.host`], defaults.host);
  put('port', [`database.${db}.port`], defaults.port);
  put('user', [`database.${db}.username`, `database.${db}.user`], defaults.user);
  put('password', [`database.${db}.password`], defaults.password);
  put('database', [`database.${db}.database`], defaults.database);
  put('table', [peer === 'soketi' ? `appManager.${db}.table` : `database.${db}.table_name`], defaults.table);

  // Pool: Soketi opens one pool of databasePooling.max when pooling is on (else Knex's own default of 10).
  const pooling = get('databasePooling.enabled');
  const poolMax = get('databasePooling.max');
  const poolSize = get(`database.${db}.connection_pool_size`);
  if (poolSize) sink.set('appStore.poolSize', poolSize.value, poolSize.label, poolSize.rank);
  else if (pooling?.value === true) sink.set('appStore.poolSize', poolMax?.value ?? 7, poolMax?.label ?? pooling.label, pooling.rank);

  // The app cache: ripple always serves apps from memory and checks the table for changes; a cache
  // TTL becomes the interval of that check, so a change takes effect within the TTL as there.
  const enabled = get(peer === 'soketi' ? 'appManager.cache.enabled' : 'app_manager.cache.enabled');
  const ttl = get(peer === 'soketi' ? 'appManager.cache.ttl' : 'app_manager.cache.ttl');
  const cacheOn = peer === 'soketi' ? enabled?.value === true : enabled?.value !== false && ttl !== undefined;
  if (cacheOn && ttl && typeof ttl.value === 'number' && ttl.value > 0) {
    sink.set('appStore.refreshMs', Math.min(ttl.value, 3600) * 1000, ttl.label, ttl.rank);
    sink.notice(`${ttl.label}: apps are checked for changes every ${Math.min(ttl.value, 3600)} s (the cache's TTL); between checks they are served from memory`);
  } else if (cacheOn) {
    sink.warn(
      `${(ttl ?? enabled)!.label}: a cache that never expires is not copied; apps are served from memory and the table is checked ` +
        'for changes every second (APP_STORE_REFRESH_MS)',
    );
  }
}
