// An app table's row ↔ an app's settings, for Soketi's and Sockudo's layouts (and a table whose
// columns the config maps): which column holds which field, how its value reads (NULL or empty is
// the default, flags as 0/1 or booleans, JSON as text or parsed, -1 unlimited), and how a field is
// written back in the column's own type.
import { AppSchema, storedAppFields, type AppConfig, type StoredAppField } from '../config/schema.js';

/** Where each field is looked for, in order: Soketi's spelling, then Sockudo's. */
const COLUMN_NAMES: Readonly<Record<StoredAppField, readonly string[]>> = {
  id: ['id'],
  key: ['key'],
  secret: ['secret'],
  enabled: ['enabled'],
  enableClientMessages: ['enable_client_messages'],
  enableUserAuthentication: ['enable_user_authentication'],
  maxConnections: ['max_connections'],
  maxBackendEventsPerSecond: ['max_backend_events_per_sec', 'max_backend_events_per_second'],
  maxClientEventsPerSecond: ['max_client_events_per_sec', 'max_client_events_per_second'],
  maxReadRequestsPerSecond: ['max_read_req_per_sec', 'max_read_requests_per_second'],
  maxPresenceMembersPerChannel: ['max_presence_members_per_channel'],
  maxPresenceMemberSizeInKb: ['max_presence_member_size_in_kb'],
  maxChannelNameLength: ['max_channel_name_length'],
  maxEventChannelsAtOnce: ['max_event_channels_at_once'],
  maxEventNameLength: ['max_event_name_length'],
  maxEventPayloadInKb: ['max_event_payload_in_kb'],
  maxEventBatchSize: ['max_event_batch_size'],
  webhooks: ['webhooks'],
  allowedOrigins: ['allowed_origins'],
};

type FieldKind = 'string' | 'flag' | 'unlimited' | 'positive' | 'json';
const KINDS: Readonly<Record<StoredAppField, FieldKind>> = {
  id: 'string',
  key: 'string',
  secret: 'string',
  enabled: 'flag',
  enableClientMessages: 'flag',
  enableUserAuthentication: 'flag',
  // -1 is unlimited (and 0 for connections, as Soketi reads it)
  maxConnections: 'unlimited',
  maxBackendEventsPerSecond: 'unlimited',
  maxClientEventsPerSecond: 'unlimited',
  maxReadRequestsPerSecond: 'unlimited',
  maxPresenceMembersPerChannel: 'positive',
  maxPresenceMemberSizeInKb: 'positive',
  maxChannelNameLength: 'positive',
  maxEventChannelsAtOnce: 'positive',
  maxEventNameLength: 'positive',
  maxEventPayloadInKb: 'positive',
  maxEventBatchSize: 'positive',
  webhooks: 'json',
  allowedOrigins: 'json',
};

/** Soketi's and Sockudo's webhook keys for AWS Lambda targets, which ripple does not call. */
const LAMBDA_KEYS = ['lambda', 'lambda_function'];
/** Sockudo's per-webhook delivery settings: ripple's server-wide webhook settings apply instead. */
const DELIVERY_KEYS = ['retry', 'request_timeout_ms'];
/** Sockudo's filter spellings of Soketi's (and ripple's) two filters. */
const FILTER_ALIASES: Readonly<Record<string, string>> = { channel_prefix: 'channel_name_starts_with', channel_suffix: 'channel_name_ends_with' };

export type Row = Record<string, unknown>;

/** A row read: the app's settings, or why the row cannot be an app (reported by the store, never thrown). */
export type ReadRow = { ok: true; config: AppConfig; notes: string[] } | { ok: false; id: string; problem: string };

/** One column of the table, as the database describes it (for writes). */
export interface ColumnInfo {
  name: string;
  /** The database's type name, lower case: boolean, tinyint, smallint, integer, int unsigned, json, jsonb, text, ... */
  type: string;
  /** Whether an insert may leave it out (nullable or with a default). */
  optional: boolean;
}

export class RowMapping {
  /**
   * `overrides`: a column name by field (config appStore.columns); `defaults`: values for empty
   * columns (appStore.defaults, Soketi's server-wide limits), under the schema's own defaults.
   */
  constructor(
    private readonly overrides: Readonly<Partial<Record<StoredAppField, string>>>,
    private readonly defaults: Readonly<Record<string, unknown>>,
  ) {}

  /** The column a field is read from in this row (or written to, given the table's columns). */
  columnOf(field: StoredAppField, has: (column: string) => boolean): string | undefined {
    const override = this.overrides[field];
    if (override) return has(override) ? override : undefined;
    return COLUMN_NAMES[field].find(has);
  }

  /** The columns the id and the key are in (lookups name them in their WHERE clause). */
  get idColumn(): string {
    return this.overrides.id ?? 'id';
  }
  get keyColumn(): string {
    return this.overrides.key ?? 'key';
  }

  read(row: Row): ReadRow {
    const raw: Record<string, unknown> = { ...this.defaults };
    const notes: string[] = [];
    const idColumn = this.columnOf('id', (c) => c in row);
    const id = idColumn === undefined || row[idColumn] === null ? '' : String(row[idColumn]);
    for (const field of storedAppFields) {
      const column = this.columnOf(field, (c) => c in row);
      if (column === undefined) continue;
      const v = row[column];
      // NULL or empty: the default, as Soketi reads it
      if (v === null || v === undefined || v === '') continue;
      const read = readValue(KINDS[field], field, v);
      if ('problem' in read) return { ok: false, id, problem: `${column}: ${read.problem}` };
      if (read.value === undefined) continue;
      raw[field] = read.value;
    }
    if (Array.isArray(raw.webhooks)) raw.webhooks = webhooksOf(raw.webhooks, notes);
    const parsed = AppSchema.safeParse(raw);
    if (!parsed.success) {
      const problem = parsed.error.issues
        .map((i) => {
          const [field, ...rest] = i.path.map(String);
          const column = this.columnOf(field as StoredAppField, (c) => c in row) ?? field;
          return `${[column, ...rest].join('.')}: ${i.message}`;
        })
        .join('; ');
      return { ok: false, id, problem };
    }
    return { ok: true, config: parsed.data, notes };
  }

  /**
   * Column values for `fields`, each in its column's type. Throws (a message for the API) when the
   * table has no column for a field or the column cannot hold the value.
   */
  write(fields: Partial<AppConfig>, columns: ReadonlyMap<string, ColumnInfo>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(fields) as [StoredAppField, unknown][]) {
      if (value === undefined) continue;
      if (!(storedAppFields as readonly string[]).includes(field)) throw new RowWriteError(`${field} cannot be stored in the app table`);
      const column = this.columnOf(field, (c) => columns.has(c));
      if (column === undefined) throw new RowWriteError(`the app table has no column for ${field}`);
      out[column] = writeValue(KINDS[field], field, value, columns.get(column)!);
    }
    return out;
  }
}

export class RowWriteError extends Error {
  override name = 'RowWriteError';
}

function readValue(kind: FieldKind, field: string, v: unknown): { value: unknown } | { problem: string } {
  switch (kind) {
    case 'string':
      return typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' ? { value: String(v) } : { problem: 'not text' };
    case 'flag': {
      if (typeof v === 'boolean') return { value: v };
      // MySQL BIT(1)
      if (Buffer.isBuffer(v) && v.length === 1) return { value: v[0] !== 0 };
      const s = String(v).trim().toLowerCase();
      if (s === '1' || s === 'true' || s === 't') return { value: true };
      if (s === '0' || s === 'false' || s === 'f') return { value: false };
      return { problem: `"${String(v)}" is not a flag (0/1 or a boolean)` };
    }
    case 'unlimited':
    case 'positive': {
      const n = typeof v === 'number' ? v : Number(String(v).trim());
      if (!Number.isFinite(n)) return { problem: `"${String(v)}" is not a number` };
      if (kind === 'unlimited') return { value: n === 0 && field === 'maxConnections' ? -1 : n };
      // A limit that must be positive: -1 or 0 cannot be honoured as "none", so the default applies.
      return { value: n > 0 ? n : undefined };
    }
    case 'json': {
      if (typeof v === 'object' && !Buffer.isBuffer(v)) return { value: v };
      const text = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
      try {
        return { value: JSON.parse(text) };
      } catch {
        return { problem: 'not valid JSON' };
      }
    }
  }
}

/**
 * Webhooks as Soketi and Sockudo store them, in ripple's shape: null keys dropped (Sockudo writes
 * them), Sockudo's filter names mapped, a webhook ripple cannot honour (an AWS Lambda target, a filter
 * by pattern or namespace) left out and said so; the rest is the schema's to check.
 */
function webhooksOf(list: unknown[], notes: string[]): unknown[] {
  const out: unknown[] = [];
  for (const w of list) {
    if (!w || typeof w !== 'object' || Array.isArray(w)) {
      out.push(w);
      continue;
    }
    const hook = withoutNulls(w as Record<string, unknown>);
    if (hook.url === undefined && LAMBDA_KEYS.some((k) => k in hook)) {
      notes.push('an AWS Lambda webhook is not called by ripple (left out)');
      continue;
    }
    for (const k of LAMBDA_KEYS) delete hook[k];
    if (DELIVERY_KEYS.some((k) => k in hook)) notes.push(`${DELIVERY_KEYS.join(' and ')} of a webhook are not used: the server's webhook settings apply`);
    for (const k of DELIVERY_KEYS) delete hook[k];
    if (hook.filter && typeof hook.filter === 'object' && !Array.isArray(hook.filter)) {
      const filter: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(withoutNulls(hook.filter as Record<string, unknown>))) filter[FILTER_ALIASES[k] ?? k] = v;
      const unsupported = Object.keys(filter).filter((k) => k !== 'channel_name_starts_with' && k !== 'channel_name_ends_with');
      if (unsupported.length) {
        notes.push(`a webhook filtered by ${unsupported.join(', ')} is left out: ripple filters by channel name prefix and suffix only`);
        continue;
      }
      hook.filter = filter;
    }
    out.push(hook);
  }
  return out;
}

function withoutNulls(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));
}

function writeValue(kind: FieldKind, field: string, v: unknown, column: ColumnInfo): unknown {
  const type = column.type;
  switch (kind) {
    case 'string':
      return String(v);
    case 'flag':
      return type.startsWith('bool') ? v === true : v === true ? 1 : 0;
    case 'unlimited': {
      const n = Number(v);
      if (n >= 0 || !type.includes('unsigned')) return n;
      // An unsigned column cannot hold -1: connections take 0 (read as unlimited too).
      if (field === 'maxConnections') return 0;
      throw new RowWriteError(`${column.name} is unsigned and cannot hold -1 (unlimited); give a number`);
    }
    case 'positive':
      return Number(v);
    case 'json':
      return JSON.stringify(v);
  }
}
