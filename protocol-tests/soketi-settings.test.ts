// Soketi's settings start the server Soketi would have started (issue 12): its environment variables
// and its config files (nested and dotted keys, numbers as strings, its app field spellings), in
// single-node and in Redis (cluster) mode, proven with a pusher-js client receiving a REST event.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startRedis, type RedisHandle } from '../src/testing/harness.js';
import { eventReaches, listeningAddresses, runCli, startCli, type CliProcess } from '../src/testing/cli-process.js';
import { Pusher } from '../src/testing/pusher-js.js';
import { RawClient, privateAuth } from '../src/testing/raw-client.js';
import { rest } from '../src/testing/sign-rest.js';

let redis: RedisHandle;
const started: CliProcess[] = [];
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await Promise.all(started.map((p) => p.stop()));
  await redis?.stop();
});

async function start(args: string[], env: Record<string, string>, port: number, opts: { cwd?: string; pathPrefix?: string } = {}): Promise<CliProcess> {
  const p = await startCli(args, { LOG_LEVEL: 'warn', ...env }, port, opts);
  started.push(p);
  return p;
}

function configFile(content: unknown): string {
  const p = join(mkdtempSync(join(tmpdir(), 'ripple-soketi-')), 'config.json');
  writeFileSync(p, JSON.stringify(content));
  return p;
}

const warnings = (out: string) =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === 40)
    .map((l) => l.msg);

const sk = { id: 'sk-id', key: 'sk-key', secret: 'sk-secret' };

test('SOKETI_DEFAULT_APP_ID/KEY/SECRET, SOKETI_PORT and SOKETI_HOST start that app on that port', async () => {
  const port = await freePort();
  const p = await start([], {
    SOKETI_PORT: String(port),
    SOKETI_HOST: '127.0.0.1',
    SOKETI_DEFAULT_APP_ID: sk.id,
    SOKETI_DEFAULT_APP_KEY: sk.key,
    SOKETI_DEFAULT_APP_SECRET: sk.secret,
    SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: 'true',
    SOKETI_DEFAULT_APP_MAX_CONNS: '100',
  }, port);
  assert.match(p.stdout(), new RegExp(`ripple listening on 127\\.0\\.0\\.1:${port}  app_id=sk-id key=sk-key secret=\\(configured, not shown\\)`));
  assert.deepEqual(warnings(p.stdout()), []);
  await eventReaches(sk, port);
  await p.stop();
});

test('SOKETI_DEFAULT_APP_ID=sk-id SOKETI_PORT=<port> alone: app sk-id (key and secret default as in Soketi), loopback only', async () => {
  const port = await freePort();
  const p = await start([], { SOKETI_DEFAULT_APP_ID: 'sk-id', SOKETI_PORT: String(port) }, port);
  assert.match(p.stdout(), new RegExp(`ripple listening on 127\\.0\\.0\\.1:${port}  app_id=sk-id key=app-key secret=app-secret`));
  assert.deepEqual(listeningAddresses(port), ['127.0.0.1']);
  await eventReaches({ id: 'sk-id', key: 'app-key', secret: 'app-secret' }, port);
  await p.stop();
});

test("a Soketi config file via --config=FILE: nested apps, Soketi's spellings, numbers and booleans as strings, unsupported settings named", async () => {
  const port = await freePort();
  const f = configFile({
    debug: false,
    port: String(port),
    host: '127.0.0.1',
    appManager: {
      driver: 'array',
      array: {
        apps: [
          {
            AppId: 'file-app',
            AppKey: 'file-key',
            AppSecret: 'file-secret',
            host: 'ws.example.com',
            enable_client_messages: 'true',
            max_backend_events_per_sec: '100',
            max_read_req_per_sec: '100',
            max_connections: '50',
            webhooks: '[]',
          },
        ],
      },
    },
    eventLimits: { maxPayloadInKb: '64' },
    cluster: { port: 11002, hostname: '127.0.0.1' },
    'queue.driver': 'redis',
  });
  const p = await start(['start', `--config=${f}`], {}, port);
  await eventReaches({ id: 'file-app', key: 'file-key', secret: 'file-secret' }, port);
  assert.deepEqual(warnings(p.stdout()).sort(), [
    'appManager.array.apps.0.host: ignored; an app has no host of its own here, every app is served on every address the node listens on',
    'cluster.hostname: not supported; ripple nodes find each other through Redis (adapter.driver "redis"), with no UDP discovery',
    'queue.driver: not supported; ripple queues webhooks itself: in memory on a single node, in Redis streams in cluster mode',
  ]);
  await p.stop();
});

test('unsupported SOKETI_* variables are reported at start, one line each by name; the node still serves', async () => {
  const port = await freePort();
  const p = await start([], {
    PORT: String(port),
    HOST: '127.0.0.1',
    APP_ID: 'a',
    APP_KEY: 'k',
    APP_SECRET: 's',
    SOKETI_MODE: 'full', // Soketi's default: nothing to say
    SOKETI_QUEUE_DRIVER: 'sqs',
    SOKETI_RATE_LIMITER_DRIVER: 'redis',
  }, port);
  assert.deepEqual(warnings(p.stdout()), [
    'SOKETI_QUEUE_DRIVER: not supported; ripple queues webhooks itself: in memory on a single node, in Redis streams in cluster mode',
    'SOKETI_RATE_LIMITER_DRIVER: not supported; ripple counts rate limits in memory on a single node, in Redis in cluster mode',
  ]);
  await eventReaches({ id: 'a', key: 'k', secret: 's' }, port);
  await p.stop();
});

test('a Soketi file with a bad app field or an unsupported driver exits 2, naming the key as written', async () => {
  let r = await runCli([`--config=${configFile({ 'appManager.array.apps': [{ id: 'a', key: 'b', secret: 'c', max_connections: 'lots' }] })}`]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'ripple: appManager.array.apps.0.max_connections: expected an integer, got "lots"\n');
  r = await runCli([], { SOKETI_APP_MANAGER_DRIVER: 'dynamodb' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^ripple: SOKETI_APP_MANAGER_DRIVER: "dynamodb" is not supported; ripple reads apps from its config file, the environment, or a MySQL\/MariaDB or PostgreSQL table/);
});

test('SOKETI_ADAPTER_DRIVER=redis with SOKETI_DB_REDIS_*: cluster mode; an event triggered on one node reaches a client on the other', async () => {
  const [pa, pb] = [await freePort(), await freePort()];
  const env = {
    HOST: '127.0.0.1',
    SOKETI_ADAPTER_DRIVER: 'redis',
    SOKETI_DB_REDIS_HOST: '127.0.0.1',
    SOKETI_DB_REDIS_PORT: String(redis.port),
    SOKETI_DB_REDIS_DB: '0',
    SOKETI_DB_REDIS_KEY_PREFIX: `sk-env-${process.pid}:`,
    SOKETI_DEFAULT_APP_ID: sk.id,
    SOKETI_DEFAULT_APP_KEY: sk.key,
    SOKETI_DEFAULT_APP_SECRET: sk.secret,
  };
  const a = await start([], { ...env, SOKETI_PORT: String(pa) }, pa);
  const b = await start([], { ...env, SOKETI_PORT: String(pb) }, pb);
  await eventReaches(sk, pb, pa);
  await eventReaches(sk, pa, pb);
  assert.deepEqual([...warnings(a.stdout()), ...warnings(b.stdout())], []);
  await Promise.all([a.stop(), b.stop()]);
});

test('a Soketi file with adapter.driver "redis" and database.redis.* (dotted and nested): cluster mode across two nodes', async () => {
  const [pa, pb] = [await freePort(), await freePort()];
  const file = (port: number) =>
    configFile({
      port,
      host: '127.0.0.1',
      'adapter.driver': 'redis',
      database: { redis: { host: '127.0.0.1', port: String(redis.port), keyPrefix: `sk-file-${process.pid}` } },
      'appManager.array.apps': [{ id: sk.id, key: sk.key, secret: sk.secret }],
    });
  const a = await start([`--config=${file(pa)}`], {}, pa);
  const b = await start(['--config', file(pb)], {}, pb);
  await eventReaches(sk, pa, pb);
  await Promise.all([a.stop(), b.stop()]);
});

const infos = (out: string) =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === 30)
    .map((l) => l.msg);

/** Two sockets on private-x: the first sends client-hello; what it is told, and whether the second got it. */
async function clientHello(port: number, app: { key: string; secret: string }) {
  const [a, b] = [await RawClient.connect(port, app.key), await RawClient.connect(port, app.key)];
  try {
    for (const c of [a, b]) await c.subscribe('private-x', privateAuth(app.key, app.secret, c.socketId, 'private-x'));
    a.send({ event: 'client-hello', channel: 'private-x', data: { hi: 1 } });
    const received = await b.nextEvent('client-hello', 'private-x', 1000).then(() => true, () => false);
    const error = await a.nextEvent('pusher:error', undefined, 500).then((f) => f.data as { code: number }, () => undefined);
    return { received, errorCode: error?.code };
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

test("an app from SOKETI_DEFAULT_APP_* without SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES refuses client events with 4301, as Soketi does; the start says which apps allow them", async () => {
  const port = await freePort();
  const env = { SOKETI_PORT: String(port), SOKETI_HOST: '127.0.0.1', SOKETI_DEFAULT_APP_ID: sk.id, SOKETI_DEFAULT_APP_KEY: sk.key, SOKETI_DEFAULT_APP_SECRET: sk.secret };
  const off = await start([], { ...env, LOG_LEVEL: 'info' }, port);
  assert.deepEqual(await clientHello(port, sk), { received: false, errorCode: 4301 });
  assert.ok(infos(off.stdout()).some((m) => m.startsWith('client events (client-*) are off for every app')), off.stdout());
  await off.stop();

  const on = await start([], { ...env, LOG_LEVEL: 'info', SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: 'true' }, port);
  assert.deepEqual(await clientHello(port, sk), { received: true, errorCode: undefined });
  assert.ok(infos(on.stdout()).includes(`client events (client-*) are allowed for every app: ${sk.id}`), on.stdout());
  await on.stop();

  // the development app with nothing configured: as Soketi's default app, off
  const dev = await start([], { PORT: String(port) }, port);
  assert.deepEqual(await clientHello(port, { key: 'app-key', secret: 'app-secret' }), { received: false, errorCode: 4301 });
  await dev.stop();
});

test('SOKETI_PATH_PREFIX=/ws: pusher-js with wsPath /ws (and over the HTTP fallback with httpPath /ws/pusher) gets events triggered at /ws/apps/<id>/events; nothing is served at the root', async () => {
  const port = await freePort();
  const p = await start([], {
    SOKETI_PORT: String(port),
    SOKETI_HOST: '127.0.0.1',
    SOKETI_PATH_PREFIX: '/ws',
    SOKETI_DEFAULT_APP_ID: sk.id,
    SOKETI_DEFAULT_APP_KEY: sk.key,
    SOKETI_DEFAULT_APP_SECRET: sk.secret,
  }, port, { pathPrefix: '/ws' });
  assert.deepEqual(warnings(p.stdout()), []);
  const base = `http://127.0.0.1:${port}`;
  for (const path of ['/ws/health', '/ws/ready', '/ws/metrics']) assert.equal((await fetch(base + path)).status, 200, path);
  for (const path of ['/health', '/apps/sk-id/channels', '/app/sk-key']) assert.equal((await fetch(base + path)).status, 404, path);
  const rootSocket = await RawClient.open(port, sk.key).then(() => 'opened', () => 'refused');
  assert.equal(rootSocket, 'refused', 'no WebSocket at /app/<key> without the prefix');

  for (const transport of ['ws', 'xhr_streaming'] as const) {
    const client = new Pusher(sk.key, {
      cluster: 'mt1',
      wsHost: '127.0.0.1',
      wsPort: port,
      wsPath: '/ws',
      httpHost: '127.0.0.1',
      httpPort: port,
      httpPath: '/ws/pusher',
      forceTLS: false,
      enabledTransports: [transport],
      disableStats: true,
    });
    try {
      const channel = `prefixed-${transport}`;
      const ch = client.subscribe(channel);
      await new Promise<void>((resolve) => ch.bind('pusher:subscription_succeeded', () => resolve()));
      const got = new Promise<unknown>((resolve) => ch.bind('hello', resolve));
      // signed over the path as sent, prefix included (as Soketi checks it)
      const r = await rest(base, sk, 'POST', `/ws/apps/${sk.id}/events`, { name: 'hello', channel, data: JSON.stringify({ via: transport }) });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(await got, { via: transport });
      assert.equal(client.connection.state, 'connected');
      const info = await rest(base, sk, 'GET', `/ws/apps/${sk.id}/channels/${channel}`);
      assert.equal(info.status, 200);
      assert.equal(info.body.occupied, true);
    } finally {
      client.disconnect();
    }
  }
  await p.stop();
});

test("a .env file with SOKETI_* lines in the working directory starts the app and port it names, as Soketi reads it; the environment wins over it", async () => {
  const [filePort, envPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'ripple-dotenv-'));
  writeFileSync(
    join(dir, '.env'),
    [
      'APP_NAME=Laravel',
      'APP_KEY=base64:bm90LWZvci1yaXBwbGU=',
      `SOKETI_PORT=${filePort}`,
      'SOKETI_HOST=127.0.0.1',
      `SOKETI_DEFAULT_APP_ID="${sk.id}"`,
      `SOKETI_DEFAULT_APP_KEY=${sk.key}`,
      `SOKETI_DEFAULT_APP_SECRET=${sk.secret} # from the .env`,
      '',
    ].join('\n'),
  );
  const fromFile = await start([], {}, filePort, { cwd: dir });
  await eventReaches(sk, filePort);
  assert.match(fromFile.stdout(), new RegExp(`ripple listening on 127\\.0\\.0\\.1:${filePort}  app_id=${sk.id} key=${sk.key} secret=\\(configured, not shown\\)`));
  await fromFile.stop();
  const envWins = await start([], { SOKETI_PORT: String(envPort) }, envPort, { cwd: dir });
  await eventReaches(sk, envPort);
  await envWins.stop();
});

test("a Soketi config file listing apps, with SOKETI_DEFAULT_APP_KEY/SECRET set: the file's first app takes them, as in Soketi", async () => {
  const port = await freePort();
  const f = configFile({
    port,
    host: '127.0.0.1',
    appManager: { array: { apps: [{ id: 'file-app', key: 'file-key', secret: 'file-secret' }, { id: 'second', key: 'second-key', secret: 'second-secret' }] } },
  });
  const p = await start([`--config=${f}`], { SOKETI_DEFAULT_APP_KEY: 'env-key', SOKETI_DEFAULT_APP_SECRET: 'env-secret' }, port);
  await eventReaches({ id: 'file-app', key: 'env-key', secret: 'env-secret' }, port);
  await eventReaches({ id: 'second', key: 'second-key', secret: 'second-secret' }, port);
  const stale = await RawClient.open(port, 'file-key');
  assert.deepEqual((await stale.nextEvent('pusher:error')).data, { code: 4001, message: 'App key file-key does not exist.' }, "the file's own key is replaced");
  await stale.closed;
  assert.deepEqual(warnings(p.stdout()), []);
  await p.stop();
});
