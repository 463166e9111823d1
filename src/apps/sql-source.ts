// Apps in an SQL table (Soketi's or Sockudo's, unchanged), for either dialect: lookups by key and by id
// as prepared statements, every row at once, the table's fingerprint, and the management API's writes.
// A rotated secret's previous value waits out its overlap in a side table of ours (appStore.secretsTable,
// created if missing), so the app table keeps only the columns its owners gave it.
import { storedAppFields, type AppConfig } from '../config/schema.js';
import type { PreviousSecret } from './app.js';
import { RowMapping, RowWriteError, type ColumnInfo, type Row } from './row-mapping.js';
import { AppWriteError, type AppSource, type AppWriter, type SourceRow } from './source.js';

export interface Executed {
  rows: Row[];
  /** Rows an INSERT, UPDATE or DELETE touched. */
  affected: number;
}

export interface SqlExecutor {
  /** A prepared statement (the driver keeps it prepared per connection). */
  execute(sql: string, params: readonly unknown[]): Promise<Executed>;
}

/** One database through its driver's pool. */
export interface SqlClient extends SqlExecutor {
  /** A statement that cannot be prepared (DDL, CHECKSUM TABLE). */
  query(sql: string): Promise<Row[]>;
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** What differs between PostgreSQL and MySQL/MariaDB. */
export interface SqlDialect {
  readonly name: 'postgres' | 'mysql';
  /** A name quoted, `schema.table` part by part. */
  quote(name: string): string;
  /** The n-th (1-based) parameter's placeholder. */
  param(n: number): string;
  /** A join condition: the side table's text column equals the app table's id (an integer id, or another collation). */
  sameId(sideColumn: string, idColumn: string): string;
  /** The table's columns: name, type, whether an insert may leave it out. */
  columns(client: SqlClient, table: string): Promise<ColumnInfo[]>;
  /** One aggregate over every row of each table (missing tables read as empty). */
  fingerprint(client: SqlClient, tables: readonly string[]): Promise<string>;
  createSecretsTable(table: string): string;
  /** Insert or replace the side table's row of one app: (app_id, previous_secret, valid_until). */
  upsertSecret(table: string): string;
  /** The row-locking suffix of a SELECT inside a transaction. */
  readonly forUpdate: string;
  /** The error is the database refusing a duplicate (id or key). */
  isDuplicate(err: unknown): boolean;
  /** The error is an answer of the database (a refusal), not a failure to reach it. */
  isAnswer(err: unknown): boolean;
}

export interface SqlTables {
  table: string;
  secretsTable: string;
}

const PREVIOUS = 'ripple_previous_secret';
const UNTIL = 'ripple_previous_until';

export class SqlAppSource implements AppSource, AppWriter {
  readonly description: string;
  /** The side table exists (false until prepare() made sure, or when it could not be created). */
  private secretsReady = false;
  private secretsUnavailable?: string;
  private columnInfo?: Map<string, ColumnInfo>;
  private readonly q: (name: string) => string;

  constructor(
    private readonly client: SqlClient,
    private readonly dialect: SqlDialect,
    private readonly mapping: RowMapping,
    private readonly tables: SqlTables,
  ) {
    this.description = `${dialect.name} table ${tables.table}`;
    this.q = (n) => dialect.quote(n);
  }

  /** Why secrets cannot be rotated (the side table could not be created), if so. */
  get rotationUnavailable(): string | undefined {
    return this.secretsUnavailable;
  }

  async prepare(): Promise<void> {
    if (this.secretsReady || this.secretsUnavailable) return;
    const create = this.dialect.createSecretsTable(this.tables.secretsTable);
    try {
      await this.client.query(create);
    } catch (err) {
      if (!this.dialect.isAnswer(err)) throw err;
      // Two nodes creating it at once: PostgreSQL may refuse the second (its type's name is taken).
      try {
        await this.client.query(create);
      } catch (again) {
        if (!this.dialect.isAnswer(again)) throw again;
        // A read-only user, say: apps are read as usual, only rotation is off.
        this.secretsUnavailable = `the table ${this.tables.secretsTable} cannot be created: ${(again as Error).message}`;
        return;
      }
    }
    this.secretsReady = true;
  }

  byKey(key: string): Promise<SourceRow | undefined> {
    return this.one(this.mapping.keyColumn, key);
  }

  byId(id: string): Promise<SourceRow | undefined> {
    return this.one(this.mapping.idColumn, id);
  }

  async all(): Promise<SourceRow[]> {
    const { rows } = await this.client.execute(this.select(), []);
    const now = Date.now();
    return rows.map((r) => this.toSourceRow(r, now));
  }

  fingerprint(): Promise<string> {
    const tables = this.secretsReady ? [this.tables.table, this.tables.secretsTable] : [this.tables.table];
    return this.dialect.fingerprint(this.client, tables);
  }

  close(): Promise<void> {
    return this.client.close();
  }

  async create(config: AppConfig, given: Partial<AppConfig> = config): Promise<void> {
    const columns = await this.columns();
    // What the caller gave, plus every column that must have a value (Soketi's layout has many).
    const fields: Partial<AppConfig> = { ...given };
    for (const field of storedAppFields) {
      if (fields[field] !== undefined) continue;
      const column = this.mapping.columnOf(field, (c) => columns.has(c));
      if (column && !columns.get(column)!.optional) (fields as Record<string, unknown>)[field] = config[field];
    }
    const values = this.toColumns(fields, columns);
    const names = Object.keys(values);
    const sql = `INSERT INTO ${this.q(this.tables.table)} (${names.map(this.q).join(', ')}) VALUES (${names.map((_, i) => this.dialect.param(i + 1)).join(', ')})`;
    await this.write(() => this.client.execute(sql, Object.values(values)));
  }

  async update(id: string, fields: Partial<AppConfig>): Promise<boolean> {
    const values = this.toColumns(fields, await this.columns());
    const names = Object.keys(values);
    if (!names.length) return (await this.byId(id)) !== undefined;
    const set = names.map((n, i) => `${this.q(n)} = ${this.dialect.param(i + 1)}`).join(', ');
    const sql = `UPDATE ${this.q(this.tables.table)} SET ${set} WHERE ${this.q(this.mapping.idColumn)} = ${this.dialect.param(names.length + 1)}`;
    const { affected } = await this.write(() => this.client.execute(sql, [...Object.values(values), id]));
    // MySQL counts only rows whose values changed: an update to the same values finds the row still.
    return affected > 0 || (await this.byId(id)) !== undefined;
  }

  async remove(id: string): Promise<boolean> {
    const { affected } = await this.client.execute(`DELETE FROM ${this.q(this.tables.table)} WHERE ${this.q(this.mapping.idColumn)} = ${this.dialect.param(1)}`, [id]);
    if (this.secretsReady) await this.client.execute(`DELETE FROM ${this.q(this.tables.secretsTable)} WHERE app_id = ${this.dialect.param(1)}`, [id]);
    return affected > 0;
  }

  async rotateSecret(id: string, secret: string, previousUntil: number): Promise<{ previous: PreviousSecret } | undefined> {
    await this.prepare();
    if (!this.secretsReady) throw new AppWriteError(`secrets cannot be rotated: ${this.secretsUnavailable}`);
    const columns = await this.columns();
    const secretColumn = this.mapping.columnOf('secret', (c) => columns.has(c))!;
    const idColumn = this.q(this.mapping.idColumn);
    const t = this.q(this.tables.table);
    const s = this.q(this.tables.secretsTable);
    const p = (n: number) => this.dialect.param(n);
    return this.client.transaction(async (tx) => {
      const { rows } = await tx.execute(`SELECT ${this.q(secretColumn)} AS secret FROM ${t} WHERE ${idColumn} = ${p(1)}${this.dialect.forUpdate}`, [id]);
      if (!rows.length) return undefined;
      const old = String(rows[0].secret);
      await tx.execute(`UPDATE ${t} SET ${this.q(secretColumn)} = ${p(1)} WHERE ${idColumn} = ${p(2)}`, [secret, id]);
      await tx.execute(this.dialect.upsertSecret(this.tables.secretsTable), [id, old, previousUntil]);
      // Overlaps that ended are of no use to anyone: the table holds only apps mid-rotation.
      await tx.execute(`DELETE FROM ${s} WHERE valid_until < ${p(1)}`, [Date.now()]);
      return { previous: { secret: old, until: previousUntil } };
    });
  }

  private select(where?: string): string {
    const t = this.q(this.tables.table);
    const filter = where === undefined ? '' : ` WHERE t.${this.q(where)} = ${this.dialect.param(1)}`;
    if (!this.secretsReady) return `SELECT t.* FROM ${t} t${filter}`;
    const s = this.q(this.tables.secretsTable);
    const on = this.dialect.sameId('s.app_id', `t.${this.q(this.mapping.idColumn)}`);
    return `SELECT t.*, s.previous_secret AS ${PREVIOUS}, s.valid_until AS ${UNTIL} FROM ${t} t LEFT JOIN ${s} s ON ${on}${filter}`;
  }

  private async one(column: string, value: string): Promise<SourceRow | undefined> {
    const { rows } = await this.client.execute(this.select(column), [value]);
    // Soketi's MySQL layout has no unique key: like Soketi, the first row wins.
    return rows.length ? this.toSourceRow(rows[0], Date.now()) : undefined;
  }

  private toSourceRow(row: Row, now: number): SourceRow {
    const { [PREVIOUS]: previous, [UNTIL]: until, ...columns } = row;
    const read = this.mapping.read(columns);
    if (!read.ok) return read;
    const untilMs = Number(until);
    const previousSecret = typeof previous === 'string' && untilMs > now ? { secret: previous, until: untilMs } : undefined;
    return { ok: true, id: read.config.id, config: read.config, previousSecret, notes: read.notes };
  }

  private async columns(): Promise<Map<string, ColumnInfo>> {
    if (!this.columnInfo) {
      const list = await this.dialect.columns(this.client, this.tables.table);
      if (!list.length) throw new AppWriteError(`the table ${this.tables.table} does not exist`);
      this.columnInfo = new Map(list.map((c) => [c.name, c]));
    }
    return this.columnInfo;
  }

  private toColumns(fields: Partial<AppConfig>, columns: ReadonlyMap<string, ColumnInfo>): Record<string, unknown> {
    try {
      return this.mapping.write(fields, columns);
    } catch (err) {
      if (err instanceof RowWriteError) throw new AppWriteError(err.message);
      throw err;
    }
  }

  private async write<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (this.dialect.isDuplicate(err)) throw new AppWriteError('an app with this id or key exists already', 409);
      // The table refused the values (a column's type or constraint): the caller's to fix.
      if (this.dialect.isAnswer(err)) throw new AppWriteError(`the app table refused the values: ${(err as Error).message}`);
      throw err;
    }
  }
}
