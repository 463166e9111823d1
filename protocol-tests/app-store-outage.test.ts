// The app database killed and restarted under traffic, on a throwaway server of the test's own
// (PostgreSQL, then MariaDB; killed by PID): the node never exits, connected clients keep getting
// every event, apps already loaded keep working for new connections and REST calls, an app that
// cannot be looked up is refused with 4100 (pusher-js backs off and retries by itself) and 503 on
// REST, never "unknown app"; the node recovers by itself and says so in its log, /ready and a metric.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDatabaseServer, SOKETI_TABLE, testDatabase, type Driver } from '../src/testing/databases.js';
import { eventually, sleep } from '../src/testing/eventually.js';
import { startNode } from '../src/testing/harness.js';
import { Pusher, type PusherClient } from '../src/testing/pusher-js.js';
import { RawClient } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

const live = { id: 'live', key: 'live-key', secret: 'live-secret' };
const later = { id: 'later', key: 'later-key', secret: 'later-secret' };

async function metric(url: string, name: string): Promise<number | undefined> {
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`${url}/metrics`)).text());
  return m ? Number(m[1]) : undefined;
}

for (const driver of ['postgres', 'mysql'] as Driver[]) {
  test(`${driver === 'mysql' ? 'MariaDB' : 'PostgreSQL'} killed and restarted under traffic: no crash, no connected client affected, retryable refusals, recovery said`, async () => {
    const server = await startDatabaseServer(driver);
    const db = await testDatabase(driver, server.port);
    const node = await (async () => {
      await db.sql(SOKETI_TABLE[driver]);
      for (const app of [live, later]) {
        const key = driver === 'postgres' ? '"key"' : '`key`';
        await db.sql(
          `INSERT INTO apps (id, ${key}, secret, max_connections, enable_client_messages, enabled, max_backend_events_per_sec, max_client_events_per_sec, max_read_req_per_sec, enable_user_authentication) ` +
            `VALUES ('${app.id}', '${app.key}', '${app.secret}', -1, 0, 1, -1, -1, -1, 0)`,
        );
      }
      return startNode({
        env: { APP_STORE_DRIVER: driver, APP_STORE_HOST: db.host, APP_STORE_PORT: String(db.port), APP_STORE_USER: db.user, APP_STORE_DATABASE: db.name, APP_STORE_REFRESH_MS: '500', LOG_LEVEL: 'info' },
      });
    })();
    const clients: RawClient[] = [];
    let retrying: PusherClient | undefined;
    let traffic: Promise<void> | undefined;
    let stopTraffic = false;
    try {
      // connected clients of a loaded app, receiving a steady stream of REST-triggered events
      for (let i = 0; i < 3; i++) {
        const c = await RawClient.connect(node.port, live.key);
        assert.equal((await c.subscribe('feed')).event, 'pusher_internal:subscription_succeeded');
        clients.push(c);
      }
      let sent = 0;
      const refused: number[] = [];
      traffic = (async () => {
        // bounded: at most one event every 20 ms for at most 90 s
        for (let i = 0; i < 4500 && !stopTraffic; i++) {
          const r = await rest(node.url, live, 'POST', '/apps/live/events', { name: 'tick', channel: 'feed', data: String(i) });
          if (r.status === 200) sent++;
          else refused.push(r.status);
          await sleep(20);
        }
      })();
      await eventually(() => sent >= 10, { timeoutMs: 5000, what: 'traffic flowing' });

      await server.kill();
      await eventually(async () => (await metric(node.url, 'ripple_app_store_up')) === 0, { timeoutMs: 5000, what: 'the outage seen' });
      const ready = await fetch(`${node.url}/ready`);
      assert.equal(ready.status, 200, 'still ready: loaded apps keep working');
      assert.deepEqual(await ready.json(), { ready: true, appStore: 'unreachable' });
      assert.match(node.output(), /app database unreachable/);

      // a loaded app: new connections and REST calls as usual
      const fresh = await RawClient.connect(node.port, live.key);
      clients.push(fresh);
      assert.equal((await rest(node.url, live, 'GET', '/apps/live/channels')).status, 200);
      // an app not loaded yet: a retryable refusal, not "unknown app"
      const refusedSocket = await RawClient.open(node.port, later.key);
      assert.equal(((await refusedSocket.nextEvent('pusher:error')).data as { code: number }).code, 4100);
      assert.equal((await refusedSocket.closed).code, 4100);
      assert.equal((await rest(node.url, later, 'GET', '/apps/later/channels')).status, 503);
      // pusher-js, told 4100, backs off and tries again by itself
      retrying = new Pusher(later.key, { cluster: 'mt1', wsHost: '127.0.0.1', wsPort: node.port, forceTLS: false, disableStats: true, enabledTransports: ['ws'] });
      const connectedLater = new Promise<void>((resolve) => retrying!.connection.bind('connected', () => resolve()));
      await sleep(1500);

      await server.start();
      await eventually(async () => (await metric(node.url, 'ripple_app_store_up')) === 1, { timeoutMs: 15_000, what: 'the recovery seen' });
      assert.deepEqual(await (await fetch(`${node.url}/ready`)).json(), { ready: true, appStore: 'up' });
      assert.match(node.output(), /app database answers again/);
      await Promise.race([connectedLater, sleep(15_000).then(() => assert.fail('pusher-js did not connect after the recovery'))]);
      assert.equal((await rest(node.url, later, 'GET', '/apps/later/channels')).status, 200);

      stopTraffic = true;
      await traffic;
      assert.deepEqual(refused, [], 'every trigger of the loaded app accepted throughout');
      // every connected client got every event, and none was closed
      const last = String(sent - 1);
      for (const c of clients.slice(0, 3)) {
        await c.next((f) => f.event === 'tick' && f.data === last, 5000);
        assert.equal(c.frames.filter((f) => f.event === 'tick').length, sent);
      }
      assert.equal(await Promise.race([clients[0].closed.then(() => 'closed'), sleep(10).then(() => 'open')]), 'open');
      assert.equal(node.process.exitCode, null, 'the node never exited');
      assert.doesNotMatch(node.output(), /uncaught exception|unhandled rejection/);
    } finally {
      stopTraffic = true;
      await traffic;
      retrying?.disconnect();
      for (const c of clients) c.ws.terminate();
      await node.stop();
      await db.drop().catch(() => undefined);
      await server.destroy();
    }
  });
}
