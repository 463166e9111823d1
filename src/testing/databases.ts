// Real databases for the app store's tests: a database of its own on the machine's PostgreSQL
// (127.0.0.1:5432, trust) or MariaDB (127.0.0.1:3306, root without a password), dropped afterwards;
// and throwaway servers on a free port with a temporary data directory, for tests that kill and
// restart the database (killed by PID, the server and the processes it started).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { eventually } from './eventually.js';
import { freePort } from './harness.js';

export type Driver = 'postgres' | 'mysql';

export interface TestDatabase {
  driver: Driver;
  name: string;
  host: string;
  port: number;
  user: string;
  /** Runs one statement (placeholders: $1 for postgres, ? for mysql) and answers its rows. */
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  drop(): Promise<void>;
}

/** A fresh database on a PostgreSQL server (the machine's by default). */
export async function postgresDatabase(port = 5432): Promise<TestDatabase> {
  const name = `ripple_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'postgres', database: name, max: 2 });
  pool.on('error', () => undefined);
  return {
    driver: 'postgres',
    name,
    host: '127.0.0.1',
    port,
    user: 'postgres',
    sql: async (text, params) => (await pool.query(text, params)).rows,
    async drop() {
      await pool.end();
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A fresh database on a MariaDB/MySQL server (the machine's by default). */
export async function mariadbDatabase(port = 3306): Promise<TestDatabase> {
  const name = `ripple_test_${randomBytes(6).toString('hex')}`;
  const admin = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const pool = mysql.createPool({ host: '127.0.0.1', port, user: 'root', database: name, connectionLimit: 2 });
  return {
    driver: 'mysql',
    name,
    host: '127.0.0.1',
    port,
    user: 'root',
    async sql(text, params) {
      const [rows] = await pool.query(text, params);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    async drop() {
      await pool.end();
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
      await c.query(`DROP DATABASE IF EXISTS ${name}`);
      await c.end();
    },
  };
}

export function testDatabase(driver: Driver, port?: number): Promise<TestDatabase> {
  return driver === 'postgres' ? postgresDatabase(port) : mariadbDatabase(port);
}

/** Soketi's tables as its documentation writes them (docs: app-management/sql-drivers), with the optional limit columns. */
export const SOKETI_TABLE: Readonly<Record<Driver, string>> = {
  postgres: `CREATE TABLE apps (
    id varchar(255) PRIMARY KEY,
    "key" varchar(255) NOT NULL,
    secret varchar(255) NOT NULL,
    max_connections integer NOT NULL,
    enable_client_messages smallint NOT NULL,
    "enabled" smallint NOT NULL,
    max_backend_events_per_sec integer NOT NULL,
    max_client_events_per_sec integer NOT NULL,
    max_read_req_per_sec integer NOT NULL,
    max_presence_members_per_channel integer DEFAULT NULL,
    max_presence_member_size_in_kb integer DEFAULT NULL,
    max_channel_name_length integer DEFAULT NULL,
    max_event_channels_at_once integer DEFAULT NULL,
    max_event_name_length integer DEFAULT NULL,
    max_event_payload_in_kb integer DEFAULT NULL,
    max_event_batch_size integer DEFAULT NULL,
    webhooks json,
    enable_user_authentication smallint NOT NULL
  )`,
  mysql: `CREATE TABLE IF NOT EXISTS \`apps\` (
    \`id\` varchar(255) NOT NULL,
    \`key\` varchar(255) NOT NULL,
    \`secret\` varchar(255) NOT NULL,
    \`max_connections\` integer(10) NOT NULL,
    \`enable_client_messages\` tinyint(1) NOT NULL,
    \`enabled\` tinyint(1) NOT NULL,
    \`max_backend_events_per_sec\` integer(10) NOT NULL,
    \`max_client_events_per_sec\` integer(10) NOT NULL,
    \`max_read_req_per_sec\` integer(10) NOT NULL,
    \`webhooks\` json,
    \`max_presence_members_per_channel\` integer DEFAULT NULL,
    \`max_presence_member_size_in_kb\` double DEFAULT NULL,
    \`max_channel_name_length\` integer DEFAULT NULL,
    \`max_event_channels_at_once\` integer DEFAULT NULL,
    \`max_event_name_length\` integer DEFAULT NULL,
    \`max_event_payload_in_kb\` double DEFAULT NULL,
    \`max_event_batch_size\` integer DEFAULT NULL,
    \`enable_user_authentication\` tinyint(1) DEFAULT NULL,
    PRIMARY KEY (\`id\`)
  )`,
};

/** Sockudo's applications table (its fresh-schema migrations: booleans, jsonb / JSON, *_per_second columns). */
export const SOCKUDO_TABLE: Readonly<Record<Driver, string>> = {
  postgres: `CREATE TABLE applications (
    id VARCHAR(255) PRIMARY KEY,
    key VARCHAR(255) UNIQUE NOT NULL,
    secret VARCHAR(255) NOT NULL,
    max_connections INTEGER NOT NULL,
    enable_client_messages BOOLEAN NOT NULL DEFAULT FALSE,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    max_backend_events_per_second INTEGER,
    max_client_events_per_second INTEGER NOT NULL,
    max_read_requests_per_second INTEGER,
    max_presence_members_per_channel INTEGER,
    max_presence_member_size_in_kb INTEGER,
    max_channel_name_length INTEGER,
    max_event_channels_at_once INTEGER,
    max_event_name_length INTEGER,
    max_event_payload_in_kb INTEGER,
    max_event_batch_size INTEGER,
    enable_user_authentication BOOLEAN,
    enable_watchlist_events BOOLEAN,
    policy JSONB,
    webhooks JSONB,
    allowed_origins JSONB,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
  )`,
  mysql: `CREATE TABLE IF NOT EXISTS \`applications\` (
    id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_general_ci PRIMARY KEY,
    \`key\` VARCHAR(255) CHARACTER SET ascii COLLATE ascii_general_ci UNIQUE NOT NULL,
    secret VARCHAR(255) NOT NULL,
    max_connections INT UNSIGNED NOT NULL,
    enable_client_messages BOOLEAN NOT NULL DEFAULT FALSE,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    max_backend_events_per_second INT UNSIGNED NULL,
    max_client_events_per_second INT UNSIGNED NOT NULL,
    max_read_requests_per_second INT UNSIGNED NULL,
    max_presence_members_per_channel INT UNSIGNED NULL,
    max_presence_member_size_in_kb INT UNSIGNED NULL,
    max_channel_name_length INT UNSIGNED NULL,
    max_event_channels_at_once INT UNSIGNED NULL,
    max_event_name_length INT UNSIGNED NULL,
    max_event_payload_in_kb INT UNSIGNED NULL,
    max_event_batch_size INT UNSIGNED NULL,
    enable_user_authentication BOOLEAN NULL,
    enable_watchlist_events BOOLEAN NULL,
    policy JSON NULL,
    webhooks JSON NULL,
    allowed_origins JSON NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
};

/** Soketi's own environment names for a database (SOKETI_APP_MANAGER_DRIVER and SOKETI_DB_*). */
export function soketiEnv(db: TestDatabase): Record<string, string> {
  const d = db.driver === 'postgres' ? 'POSTGRES' : 'MYSQL';
  return {
    SOKETI_APP_MANAGER_DRIVER: db.driver,
    [`SOKETI_DB_${d}_HOST`]: db.host,
    [`SOKETI_DB_${d}_PORT`]: String(db.port),
    [`SOKETI_DB_${d}_USERNAME`]: db.user,
    [`SOKETI_DB_${d}_PASSWORD`]: '',
    [`SOKETI_DB_${d}_DATABASE`]: db.name,
  };
}

/** Sockudo's own environment names for a database (APP_MANAGER_DRIVER and DATABASE_*). */
export function sockudoEnv(db: TestDatabase): Record<string, string> {
  const d = db.driver === 'postgres' ? 'POSTGRES' : 'MYSQL';
  return {
    APP_MANAGER_DRIVER: db.driver === 'postgres' ? 'pgsql' : 'mysql',
    [`DATABASE_${d}_HOST`]: db.host,
    [`DATABASE_${d}_PORT`]: String(db.port),
    [`DATABASE_${d}_USERNAME`]: db.user,
    [`DATABASE_${d}_PASSWORD`]: '',
    [`DATABASE_${d}_DATABASE`]: db.name,
  };
}

/** A database server of the test's own: killed and started again on the same port and data. */
export interface DatabaseServer {
  driver: Driver;
  port: number;
  /** The server process's id, while it runs. */
  readonly pid: number | undefined;
  /** SIGKILL to the server and every process it started (a crash, not a shutdown). */
  kill(): Promise<void>;
  /** Starts it again (after kill) and waits until it takes connections. */
  start(): Promise<void>;
  /** Kills it and removes its data directory. */
  destroy(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) killTree(p.pid!);
});

/** Process ids whose parent is `pid` (from /proc; no traffic, no signals). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (new RegExp(`^PPid:\\s+${pid}$`, 'm').test(status)) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function killTree(pid: number): void {
  for (const child of childrenOf(pid)) killTree(child);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

function systemUser(name: string): { uid: number; gid: number } | undefined {
  // PostgreSQL refuses to run as root; the server runs as its own system user then.
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error(`no system user ${name} to run the database server as`);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Where initdb and postgres are: on the PATH, else Debian's /usr/lib/postgresql/<version>/bin. */
function postgresBin(name: string): string {
  if (spawnSync('sh', ['-c', `command -v ${name}`]).status === 0) return name;
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  return join('/usr/lib/postgresql', versions[0], 'bin', name);
}

/**
 * initdb into a temporary directory, then `postgres` on a free port (trust, loopback only); with
 * `tls`, TLS on with a fresh self-signed certificate for 127.0.0.1 (its PEM in `certificate`).
 */
export async function startPostgresServer(opts: { tls?: boolean } = {}): Promise<DatabaseServer & { certificate?: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ripple-pg-'));
  const as = systemUser('postgres');
  const tlsArgs: string[] = [];
  let certificate: string | undefined;
  if (opts.tls) {
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    // PostgreSQL reads the key only when its owner alone may
    chmodSync(key, 0o600);
    if (as) for (const f of [cert, key]) chownSync(f, as.uid, as.gid);
    certificate = readFileSync(cert, 'utf8');
    tlsArgs.push('-c', 'ssl=on', '-c', `ssl_cert_file=${cert}`, '-c', `ssl_key_file=${key}`);
  }
  if (as) chownSync(dir, as.uid, as.gid);
  const data = join(dir, 'data');
  const init = spawnSync(postgresBin('initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'], { encoding: 'utf8', ...as });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=50', ...tlsArgs];
  const ready = async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  };
  return Object.assign(await serverHandle('postgres', port, dir, () => spawn(postgresBin('postgres'), args, { stdio: 'ignore', ...as }), ready), { certificate });
}

/** mariadb-install-db into a temporary directory, then `mariadbd` on a free port (loopback, no grant checks). */
export async function startMariaDbServer(): Promise<DatabaseServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ripple-maria-'));
  const data = join(dir, 'data');
  const init = spawnSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'], {
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`mariadb-install-db failed: ${init.stderr}`);
  const args = [
    '--no-defaults',
    `--datadir=${data}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--socket=${join(dir, 'mysqld.sock')}`,
    `--pid-file=${join(dir, 'mysqld.pid')}`,
    '--user=root',
    '--skip-grant-tables',
    '--skip-log-bin',
    '--innodb-buffer-pool-size=16M',
    '--innodb-flush-log-at-trx-commit=0',
  ];
  const ready = async () => {
    try {
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
      await c.end();
      return true;
    } catch {
      return false;
    }
  };
  return serverHandle('mysql', port, dir, () => spawn('mariadbd', args, { stdio: 'ignore' }), ready);
}

export function startDatabaseServer(driver: Driver): Promise<DatabaseServer> {
  return driver === 'postgres' ? startPostgresServer() : startMariaDbServer();
}

async function serverHandle(driver: Driver, port: number, dir: string, launch: () => ChildProcess, ready: () => Promise<boolean>): Promise<DatabaseServer> {
  let proc: ChildProcess | undefined;
  const handle: DatabaseServer = {
    driver,
    port,
    get pid() {
      return proc?.pid;
    },
    async kill() {
      if (!proc) return;
      const p = proc;
      proc = undefined;
      const exited = new Promise((r) => p.once('exit', r));
      killTree(p.pid!);
      await exited;
      running.delete(p);
    },
    async start() {
      proc = launch();
      running.add(proc);
      await eventually(ready, { timeoutMs: 60_000, intervalMs: 100, what: `${driver} on port ${port}` });
    },
    async destroy() {
      await handle.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await handle.start();
  return handle;
}
