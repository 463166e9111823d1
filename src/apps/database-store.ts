// An app store in a database, put together from the config's appStore: the driver's pool and
// dialect (loaded only when asked for, so a node with static apps loads no database driver), the row
// mapping, the SQL source, the caching store in front of it and the change detector behind it.
import type { Logger } from 'pino';
import type { AppStoreConfig } from '../config/schema.js';
import { CachedAppStore } from './cached-store.js';
import { ChangeDetector } from './change-detector.js';
import { RowMapping } from './row-mapping.js';
import { SqlAppSource, type SqlClient, type SqlDialect } from './sql-source.js';

export interface DatabaseAppStore {
  store: CachedAppStore;
  source: SqlAppSource;
  /** Reads one app again now (after a management API write on any node). */
  reload(appId: string): Promise<void>;
  close(): Promise<void>;
}

/** Opens the pool and checks the table once; never fails for an unreachable database (the store says so and retries). */
export async function openDatabaseStore(settings: AppStoreConfig, log: Logger): Promise<DatabaseAppStore> {
  let client: SqlClient;
  let dialect: SqlDialect;
  if (settings.driver === 'postgres') {
    const pg = await import('./postgres.js');
    client = pg.postgresClient(settings, (err) => log.debug({ err }, 'an idle app database connection failed'));
    dialect = pg.postgresDialect;
  } else {
    const my = await import('./mysql.js');
    client = my.mysqlClient(settings);
    dialect = my.mysqlDialect;
  }
  const source = new SqlAppSource(client, dialect, new RowMapping(settings.columns, settings.defaults), settings);
  const store = new CachedAppStore(source, log);
  const detector = new ChangeDetector(source, store, settings.refreshMs);
  await detector.start();
  const rotation = source.rotationUnavailable ?? (store.up ? 'on' : 'known once the database answers');
  log.info({ source: source.description, refreshMs: settings.refreshMs, reachable: store.up, rotation }, 'apps come from a database');
  return {
    store,
    source,
    async reload(appId) {
      try {
        await store.reload(appId);
      } catch (err) {
        // The change detector sees the change at its next check instead.
        store.failed(err);
      }
    },
    async close() {
      await detector.stop();
      await source.close();
    },
  };
}
