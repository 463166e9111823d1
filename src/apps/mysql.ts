// MySQL and MariaDB for the app store, through mysql2: a pool of `appStore.poolSize` connections,
// prepared statements (`execute`, kept per connection), TLS options passed through as `ssl`.
import mysql from 'mysql2/promise';
import type { AppStoreConfig } from '../config/schema.js';
import type { ColumnInfo, Row } from './row-mapping.js';
import type { Executed, SqlClient, SqlDialect, SqlExecutor } from './sql-source.js';

// Bounded waits: an unreachable or stalled database must fail a lookup, not hold it.
const CONNECT_TIMEOUT_MS = 5000;
const QUERY_TIMEOUT_MS = 5000;

type Target = Pick<mysql.Pool, 'execute'> | Pick<mysql.PoolConnection, 'execute'>;

export function mysqlClient(settings: AppStoreConfig): SqlClient {
  const pool = mysql.createPool({
    host: settings.host,
    port: settings.port ?? 3306,
    user: settings.user,
    password: settings.password,
    database: settings.database,
    ssl: settings.ssl === true ? {} : (settings.ssl as mysql.PoolOptions['ssl']),
    connectionLimit: settings.poolSize,
    maxIdle: settings.poolSize,
    connectTimeout: CONNECT_TIMEOUT_MS,
    enableKeepAlive: true,
    // ids and limits as numbers even in BIGINT columns; DECIMAL as text (the mapping reads both)
    supportBigNumbers: true,
  });
  const executor = (target: Target): SqlExecutor => ({
    async execute(sql, params) {
      const [result] = await target.execute({ sql, timeout: QUERY_TIMEOUT_MS }, params as never[]);
      return toExecuted(result);
    },
  });
  return {
    ...executor(pool),
    async query(sql) {
      const [result] = await pool.query({ sql, timeout: QUERY_TIMEOUT_MS });
      return Array.isArray(result) ? (result as Row[]) : [];
    },
    async transaction(work) {
      const conn = await pool.getConnection();
      try {
        await conn.beginTransaction();
        const result = await work(executor(conn));
        await conn.commit();
        return result;
      } catch (err) {
        await conn.rollback().catch(() => undefined);
        throw err;
      } finally {
        conn.release();
      }
    },
    close: () => pool.end(),
  };
}

function toExecuted(result: unknown): Executed {
  if (Array.isArray(result)) return { rows: result as Row[], affected: 0 };
  return { rows: [], affected: (result as mysql.ResultSetHeader).affectedRows };
}

interface MysqlError {
  code?: string;
  sqlState?: string;
  fatal?: boolean;
}

export const mysqlDialect: SqlDialect = {
  name: 'mysql',
  quote: (name) =>
    name
      .split('.')
      .map((p) => `\`${p}\``)
      .join('.'),
  param: () => '?',
  // Byte for byte: the two tables' character sets and collations may differ (Sockudo's ids are ascii).
  sameId: (side, id) => `CAST(${side} AS BINARY) = CAST(${id} AS BINARY)`,
  async columns(client, table) {
    const [schema, name] = table.includes('.') ? table.split('.') : [null, table];
    const { rows } = await client.execute(
      'SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, ' +
        "(IS_NULLABLE = 'YES' OR COLUMN_DEFAULT IS NOT NULL OR EXTRA LIKE '%auto_increment%') AS optional " +
        'FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?',
      [schema, name],
    );
    return rows.map((r): ColumnInfo => ({ name: String(r.name), type: String(r.type).toLowerCase(), optional: Number(r.optional) === 1 }));
  },
  async fingerprint(client, tables) {
    // The server's own checksum of each table's rows (NULL for a table that does not exist).
    const rows = await client.query(`CHECKSUM TABLE ${tables.map(mysqlDialect.quote).join(', ')}`);
    return rows.map((r) => String(r.Checksum)).join('/');
  },
  createSecretsTable: (table) =>
    `CREATE TABLE IF NOT EXISTS ${mysqlDialect.quote(table)} (app_id VARCHAR(255) NOT NULL PRIMARY KEY, previous_secret VARCHAR(255) NOT NULL, valid_until BIGINT NOT NULL)`,
  upsertSecret: (table) =>
    `INSERT INTO ${mysqlDialect.quote(table)} (app_id, previous_secret, valid_until) VALUES (?, ?, ?) ` +
    'ON DUPLICATE KEY UPDATE previous_secret = VALUES(previous_secret), valid_until = VALUES(valid_until)',
  forUpdate: ' FOR UPDATE',
  isDuplicate: (err) => (err as MysqlError)?.code === 'ER_DUP_ENTRY',
  isAnswer: (err) => typeof (err as MysqlError)?.sqlState === 'string' && (err as MysqlError).fatal !== true,
};
