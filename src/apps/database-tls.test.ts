// The app store's TLS options reach the driver as given: against a throwaway PostgreSQL with TLS on,
// the server's own certificate as the CA connects over TLS (the server says so), another CA is refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppStoreSchema } from '../config/schema.js';
import { postgresDatabase, startPostgresServer, SOKETI_TABLE, type DatabaseServer, type TestDatabase } from '../testing/databases.js';
import { silentLog } from '../testing/memory-node.js';
import { openDatabaseStore } from './database-store.js';

let server: DatabaseServer & { certificate?: string };
let db: TestDatabase;

before(async () => {
  server = await startPostgresServer({ tls: true });
  db = await postgresDatabase(server.port);
  await db.sql(SOKETI_TABLE.postgres);
  await db.sql(
    'INSERT INTO apps (id, "key", secret, max_connections, enable_client_messages, enabled, max_backend_events_per_sec, max_client_events_per_sec, max_read_req_per_sec, enable_user_authentication) ' +
      "VALUES ('tls', 'tls-key', 'tls-secret', -1, 0, 1, -1, -1, -1, 0)",
  );
});

after(async () => {
  await db?.drop();
  await server?.destroy();
});

const settings = (ssl: unknown) => AppStoreSchema.parse({ driver: 'postgres', port: server.port, user: 'postgres', database: db.name, ssl });

test("appStore.ssl is passed to the driver: the server's certificate as CA gives a TLS connection", async () => {
  const store = await openDatabaseStore(settings({ ca: server.certificate }), silentLog);
  try {
    assert.equal((await store.store.findByKey('tls-key'))?.id, 'tls');
    const rows = await db.sql("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'ripple'");
    assert.ok(rows.length > 0 && rows.every((r) => r.ssl === true), JSON.stringify(rows));
  } finally {
    await store.close();
  }
});

test('a CA that did not sign the server certificate: lookups fail (retryable), the store does not pretend the app is unknown', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ripple-other-ca-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=other'], { stdio: 'ignore' });
  const store = await openDatabaseStore(settings({ ca: readFileSync(join(dir, 'c.pem'), 'utf8') }), silentLog);
  try {
    assert.equal(store.store.up, false);
    await assert.rejects(Promise.resolve(store.store.findByKey('tls-key')));
  } finally {
    await store.close();
  }
});
