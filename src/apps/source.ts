// What a database gives the app store (apps/cached-store.ts), whatever the database: rows read by key,
// by id or all at once, a fingerprint that changes with any row, and the writes of the management API.
// Every call may reject while the database is unreachable; the store decides what that means.
import type { AppConfig } from '../config/schema.js';
import type { PreviousSecret } from './app.js';

/** One row as an app, or why it cannot be one (reported by id, never thrown). */
export type SourceRow =
  | { ok: true; id: string; config: AppConfig; previousSecret?: PreviousSecret; notes: readonly string[] }
  | { ok: false; id: string; problem: string };

export interface AppSource {
  /** For logs: "postgres table apps". */
  readonly description: string;
  /** Prepares what the source needs beyond the app table (the rotation side table); rejects while the database is down. */
  prepare(): Promise<void>;
  byKey(key: string): Promise<SourceRow | undefined>;
  byId(id: string): Promise<SourceRow | undefined>;
  all(): Promise<SourceRow[]>;
  /** A value that changes whenever a row of the app table (or a rotation) changes: one cheap query. */
  fingerprint(): Promise<string>;
  close(): Promise<void>;
}

/** The management API's writes, to the same table the apps are read from. */
export interface AppWriter {
  /**
   * Inserts the app: the fields the caller `given`, and from `config` (complete, defaults filled in)
   * whatever else the table needs a value for.
   */
  create(config: AppConfig, given?: Partial<AppConfig>): Promise<void>;
  /** False when there is no such app. */
  update(id: string, fields: Partial<AppConfig>): Promise<boolean>;
  remove(id: string): Promise<boolean>;
  /** Sets the new secret and keeps the one it replaces accepted until `previous.until`, in one transaction. */
  rotateSecret(id: string, secret: string, previousUntil: number): Promise<{ previous: PreviousSecret } | undefined>;
}

/** Thrown by a write the table cannot take (no column for a field, a value its column cannot hold, a duplicate). */
export class AppWriteError extends Error {
  override name = 'AppWriteError';
  constructor(
    message: string,
    /** 409 for a duplicate id or key, 400 otherwise. */
    readonly status: 400 | 409 = 400,
  ) {
    super(message);
  }
}
