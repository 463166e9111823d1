// The app store in front of a database (style.md: a caching decorator around any source, as Sockudo's
// CachedAppManager): lookups are answered from memory, by key and by id in separate maps (an id equal
// to another app's key never collides), so a connection storm does not become a query storm:
// concurrent lookups of one key share one query, an unknown key is remembered for a moment, and the
// queries waiting at once are bounded. Entries never expire on their own: the change detector
// (change-detector.ts) refreshes them when the table changes, and while the database is unreachable
// the apps already loaded keep working.
import type { Logger } from 'pino';
import { toApp, type App } from './app.js';
import type { AppSource, SourceRow } from './source.js';
import type { AppChange, AppChangeListener, AppStore, Found, Lookup } from './store.js';

/** An unknown key or id is answered from memory this long (a new app is found sooner: a change clears them). */
const UNKNOWN_FOR_MS = 2000;
/** Unknown keys and ids remembered at most (the oldest are forgotten first). */
const MAX_UNKNOWN = 10_000;
/** Queries to the source waiting at once at most; more is refused at once (a retryable refusal). */
const MAX_PENDING = 2048;
/** A lookup the source has not answered in this time fails (retryable), whatever the driver does. */
export const SOURCE_DEADLINE_MS = 3000;

/** The source cannot answer now: callers refuse with a retryable code (4100, 503), never "unknown app". */
export class AppSourceUnavailable extends Error {
  override name = 'AppSourceUnavailable';
}

/** Rejects with AppSourceUnavailable when `work` takes longer than `ms`. */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AppSourceUnavailable(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** The source's state as the store last saw it, for the log, /ready and the metrics. */
export interface AppSourceHealth {
  readonly up: boolean;
  /** Queries sent to the source for lookups (not answered from memory). */
  readonly sourceLookups: number;
  /** Lookups refused because the source could not answer. */
  readonly failedLookups: number;
}

export class CachedAppStore implements AppStore, AppSourceHealth {
  private readonly byKey = new Map<string, App>();
  private readonly byId = new Map<string, App>();
  private readonly unknownKeys = new Map<string, number>();
  private readonly unknownIds = new Map<string, number>();
  private readonly pendingKeys = new Map<string, Promise<Found>>();
  private readonly pendingIds = new Map<string, Promise<Found>>();
  private readonly listeners: AppChangeListener[] = [];
  /** The last problem reported for each bad row, so each is logged once until it changes. */
  private readonly reported = new Map<string, string>();
  private pending = 0;
  /** Bumped by every refresh: a lookup that began before one may hold an older row. */
  private generation = 0;
  private refreshWanted = true;
  private downSince: number | undefined;
  sourceLookups = 0;
  failedLookups = 0;

  constructor(
    private readonly source: AppSource,
    private readonly log: Logger,
  ) {}

  get up(): boolean {
    return this.downSince === undefined;
  }

  /** A full refresh is due whatever the fingerprint says (a lookup may have cached an older row). */
  get refreshDue(): boolean {
    return this.refreshWanted;
  }

  findByKey(key: string): Lookup {
    const app = this.byKey.get(key);
    if (app) return app;
    if (isRemembered(this.unknownKeys, key)) return undefined;
    return this.pendingKeys.get(key) ?? this.lookup(key, this.pendingKeys, this.unknownKeys, () => this.source.byKey(key));
  }

  findById(id: string): Lookup {
    const app = this.byId.get(id);
    if (app) return app;
    if (isRemembered(this.unknownIds, id)) return undefined;
    return this.pendingIds.get(id) ?? this.lookup(id, this.pendingIds, this.unknownIds, () => this.source.byId(id));
  }

  all(): App[] {
    return [...this.byId.values()];
  }

  onChange(listener: AppChangeListener): void {
    this.listeners.push(listener);
  }

  /** Reads every row and brings the loaded apps up to date (the change detector calls this when the table changed). */
  async refresh(): Promise<void> {
    this.generation++;
    this.refreshWanted = false;
    let rows: SourceRow[];
    try {
      rows = await withDeadline(this.source.all(), SOURCE_DEADLINE_MS * 2, 'reading every app');
    } catch (err) {
      this.refreshWanted = true;
      throw err;
    }
    this.answered();
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const row of rows) if (!row.ok) this.reportBad(row);
    for (const cached of [...this.byId.values()]) this.apply(cached, byId.get(cached.id));
    // A key or id unknown a moment ago may be a new app now.
    this.unknownKeys.clear();
    this.unknownIds.clear();
  }

  /** One app changed at its source (a management API write, on any node): read it again now. */
  async reload(id: string): Promise<void> {
    this.generation++;
    this.unknownKeys.clear();
    this.unknownIds.clear();
    const cached = this.byId.get(id);
    if (!cached) return;
    const row = await withDeadline(this.source.byId(id), SOURCE_DEADLINE_MS, 'reading an app');
    this.answered();
    if (row && !row.ok) this.reportBad(row);
    this.apply(cached, row);
  }

  /** The source answered: if it was down, it is back (said once). */
  answered(): void {
    if (this.downSince === undefined) return;
    const seconds = Math.round((Date.now() - this.downSince) / 100) / 10;
    this.downSince = undefined;
    this.log.info({ source: this.source.description, downForS: seconds }, 'app database answers again: apps are looked up as usual');
  }

  /** The source could not answer: said once when it starts. */
  failed(err: unknown): void {
    if (this.downSince !== undefined) return;
    this.downSince = Date.now();
    this.log.warn(
      { err, source: this.source.description, loadedApps: this.byId.size },
      'app database unreachable: loaded apps keep working; other apps are refused with 4100 (REST: 503) until it answers',
    );
  }

  private lookup(token: string, pending: Map<string, Promise<Found>>, unknown: Map<string, number>, read: () => Promise<SourceRow | undefined>): Promise<Found> {
    if (this.pending >= MAX_PENDING) {
      this.failedLookups++;
      return Promise.reject(new AppSourceUnavailable(`${MAX_PENDING} app lookups are waiting for the database already`));
    }
    this.pending++;
    this.sourceLookups++;
    const generation = this.generation;
    const found = withDeadline(read(), SOURCE_DEADLINE_MS, 'an app lookup')
      .then(
        (row) => {
          this.answered();
          return this.loaded(row, token, unknown, generation);
        },
        (err: unknown) => {
          this.failedLookups++;
          this.failed(err);
          throw err;
        },
      )
      .finally(() => {
        this.pending--;
        pending.delete(token);
      });
    pending.set(token, found);
    return found;
  }

  private loaded(row: SourceRow | undefined, token: string, unknown: Map<string, number>, generation: number): Found {
    // A refresh ran while this lookup waited: its row may be older than the refresh's. It is used
    // for this lookup, and the next check refreshes everything.
    const stale = generation !== this.generation;
    if (stale) this.refreshWanted = true;
    if (!row || !row.ok) {
      if (row) this.reportBad(row);
      if (!stale) remember(unknown, token);
      return undefined;
    }
    this.reportNotes(row);
    const app = toApp(row.config, row.previousSecret);
    const cached = this.byId.get(app.id);
    if (cached) return this.apply(cached, row) ?? app;
    this.put(app);
    this.emit({ kind: 'added', app });
    return app;
  }

  /** Brings a loaded app to what its row says now (undefined: the row is gone). Returns the app as it is now. */
  private apply(previous: App, row: SourceRow | undefined): App | undefined {
    if (!row) {
      this.drop(previous);
      this.emit({ kind: 'removed', previous });
      return undefined;
    }
    // A bad row keeps the app's last good settings (reported): a typo in the table does not cut off its clients.
    if (!row.ok) return previous;
    this.reportNotes(row);
    const app = toApp(row.config, row.previousSecret);
    if (JSON.stringify(app) === JSON.stringify(previous)) return previous;
    this.drop(previous);
    this.put(app);
    this.emit(!app.enabled && previous.enabled ? { kind: 'disabled', app, previous } : { kind: 'updated', app, previous });
    return app;
  }

  private put(app: App): void {
    this.byId.set(app.id, app);
    this.byKey.set(app.key, app);
  }

  private drop(app: App): void {
    this.byId.delete(app.id);
    if (this.byKey.get(app.key) === app) this.byKey.delete(app.key);
  }

  private emit(change: AppChange): void {
    for (const l of this.listeners) l(change);
  }

  private reportBad(row: Extract<SourceRow, { ok: false }>): void {
    if (this.reported.get(row.id) === row.problem) return;
    this.reported.set(row.id, row.problem);
    this.log.warn({ app: row.id || undefined, problem: row.problem, source: this.source.description }, 'app row skipped');
  }

  private reportNotes(row: Extract<SourceRow, { ok: true }>): void {
    if (!row.notes.length) return void this.reported.delete(row.id);
    const text = row.notes.join('; ');
    if (this.reported.get(row.id) === text) return;
    this.reported.set(row.id, text);
    this.log.warn({ app: row.id, notes: row.notes, source: this.source.description }, 'app row read in part');
  }
}

function isRemembered(unknown: Map<string, number>, token: string): boolean {
  const until = unknown.get(token);
  if (until === undefined) return false;
  if (until > Date.now()) return true;
  unknown.delete(token);
  return false;
}

function remember(unknown: Map<string, number>, token: string): void {
  if (unknown.size >= MAX_UNKNOWN) unknown.delete(unknown.keys().next().value!);
  unknown.set(token, Date.now() + UNKNOWN_FOR_MS);
}
