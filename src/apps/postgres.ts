// PostgreSQL for the app store, through node-postgres (`pg`): a pool of `appStore.poolSize`
// connections, named prepared statements, TLS options passed through as `ssl`.
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { AppStoreConfig } from '../config/schema.js';
import type { ColumnInfo } from './row-mapping.js';
import type { Executed, SqlClient, SqlDialect, SqlExecutor } from './sql-source.js';

// Bounded waits: an unreachable or stalled database must fail a lookup, not hold it.
const CONNECT_TIMEOUT_MS = 5000;
const QUERY_TIMEOUT_MS = 5000;

export function postgresClient(settings: AppStoreConfig, onIdleError: (err: Error) => void): SqlClient {
  const pool = new pg.Pool({
    host: settings.host,
    port: settings.port ?? 5432,
    user: settings.user,
    password: settings.password,
    database: settings.database,
    ssl: settings.ssl as pg.PoolConfig['ssl'],
    max: settings.poolSize,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    keepAlive: true,
    application_name: 'ripple',
  });
  // A connection that breaks while idle in the pool (the server went away) is dropped by the pool;
  // unheard, the event would end the process.
  pool.on('error', onIdleError);
  const executor = (target: pg.Pool | pg.PoolClient): SqlExecutor => ({
    async execute(sql, params) {
      const r = await target.query({ name: statementName(sql), text: sql, values: params as unknown[] });
      return toExecuted(r);
    },
  });
  return {
    ...executor(pool),
    async query(sql) {
      return (await pool.query(sql)).rows;
    },
    async transaction(work) {
      const conn = await pool.connect();
      try {
        await conn.query('BEGIN');
        const result = await work(executor(conn));
        await conn.query('COMMIT');
        return result;
      } catch (err) {
        await conn.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        conn.release();
      }
    },
    close: () => pool.end(),
  };
}

/** A prepared statement's name: one per distinct text, so each connection prepares it once. */
function statementName(sql: string): string {
  return `ripple_${createHash('md5').update(sql).digest('hex').slice(0, 16)}`;
}

function toExecuted(r: pg.QueryResult): Executed {
  return { rows: r.rows, affected: r.rowCount ?? 0 };
}

export const postgresDialect: SqlDialect = {
  name: 'postgres',
  quote: (name) =>
    name
      .split('.')
      .map((p) => `"${p}"`)
      .join('.'),
  param: (n) => `$${n}`,
  sameId: (side, id) => `${side} = CAST(${id} AS text)`,
  async columns(client, table) {
    const { rows } = await client.execute(
      'SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, (NOT a.attnotnull OR a.atthasdef) AS optional ' +
        'FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped',
      [postgresDialect.quote(table)],
    );
    return rows.map((r): ColumnInfo => ({ name: String(r.name), type: String(r.type).toLowerCase(), optional: r.optional === true }));
  },
  async fingerprint(client, tables) {
    // Each row's text hashed (64 bits, the hash PostgreSQL 11+ partitions by) and the hashes added up,
    // with the row count: any change to any column of any row, or a row more or less, changes it,
    // whatever the table's columns are; no sort, so it stays cheap for thousands of rows.
    const parts = tables.map((t, i) => `(SELECT count(*) || ':' || coalesce(sum(hashtextextended(r::text, 0)), 0) FROM ${postgresDialect.quote(t)} r) AS f${i}`);
    const { rows } = await client.execute(`SELECT ${parts.join(', ')}`, []);
    return tables.map((_, i) => String(rows[0][`f${i}`])).join('/');
  },
  createSecretsTable: (table) =>
    `CREATE TABLE IF NOT EXISTS ${postgresDialect.quote(table)} (app_id varchar(255) PRIMARY KEY, previous_secret varchar(255) NOT NULL, valid_until bigint NOT NULL)`,
  upsertSecret: (table) =>
    `INSERT INTO ${postgresDialect.quote(table)} (app_id, previous_secret, valid_until) VALUES ($1, $2, $3) ` +
    'ON CONFLICT (app_id) DO UPDATE SET previous_secret = EXCLUDED.previous_secret, valid_until = EXCLUDED.valid_until',
  forUpdate: ' FOR UPDATE',
  isDuplicate: (err) => err instanceof pg.DatabaseError && err.code === '23505',
  isAnswer: (err) => err instanceof pg.DatabaseError,
};
