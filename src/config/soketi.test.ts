// Soketi's settings read through the real loader: what each maps to, what is reported by name, and
// which name an error uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigWithNotes, ConfigError } from './load.js';

function file(content: unknown): string {
  const p = join(mkdtempSync(join(tmpdir(), 'ripple-soketi-')), 'c.json');
  writeFileSync(p, JSON.stringify(content));
  return p;
}
const load = (env: Record<string, string>, content?: unknown, argv: string[] = []) =>
  loadConfigWithNotes(content === undefined ? argv : [...argv, `--config=${file(content)}`], env);
function rejects(env: Record<string, string>, content: unknown, message: RegExp) {
  assert.throws(() => load(env, content), (e: Error) => e instanceof ConfigError && message.test(e.message), String(message));
}

test('SOKETI_DEFAULT_APP_* and SOKETI_PORT give the app and port Soketi would start', () => {
  const { config } = load({ SOKETI_DEFAULT_APP_ID: 'sk-id', SOKETI_DEFAULT_APP_KEY: 'sk-key', SOKETI_DEFAULT_APP_SECRET: 'sk-secret', SOKETI_PORT: '17030' });
  assert.equal(config.port, 17030);
  assert.deepEqual([config.apps[0].id, config.apps[0].key, config.apps[0].secret], ['sk-id', 'sk-key', 'sk-secret']);
  assert.equal(config.redisUrl ?? config.redisOptions, undefined);
});

test("every default-app variable, in Soketi's spelling and in the uniform one", () => {
  const { config } = load({
    SOKETI_DEFAULT_APP_ID: '42',
    SOKETI_DEFAULT_APP_SECRET: 's',
    SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: 'false',
    SOKETI_DEFAULT_APP_MAX_CONNS: '5',
    SOKETI_DEFAULT_APP_ENABLED: 'true',
    SOKETI_DEFAULT_APP_USER_AUTHENTICATION: 'true',
    SOKETI_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SEC: '11',
    SOKETI_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SEC: '-1',
    SOKETI_DEFAULT_APP_MAX_READ_REQ_PER_SEC: '12',
    SOKETI_DEFAULT_APP_WEBHOOKS: '[{"url":"http://127.0.0.1:9/h","event_types":["channel_vacated"]}]',
    SOKETI_DEFAULT_APP_MAX_PRESENCE_MEMBERS_PER_CHANNEL: '13',
    SOKETI_DEFAULT_APP_MAX_PRESENCE_MEMBER_SIZE_IN_KB: '1.5',
    SOKETI_DEFAULT_APP_MAX_CHANNEL_NAME_LENGTH: '14',
    SOKETI_DEFAULT_APP_MAX_EVENT_CHANNELS_AT_ONCE: '15',
    SOKETI_DEFAULT_APP_MAX_EVENT_NAME_LENGTH: '16',
    SOKETI_DEFAULT_APP_MAX_EVENT_PAYLOAD_IN_KB: '17',
    SOKETI_DEFAULT_APP_MAX_EVENT_BATCH_SIZE: '18',
  });
  const a = config.apps[0];
  assert.equal(a.id, '42');
  assert.equal(a.enableClientMessages, false);
  assert.equal(a.maxConnections, 5);
  assert.equal(a.enableUserAuthentication, true);
  assert.deepEqual(
    [a.maxBackendEventsPerSecond, a.maxClientEventsPerSecond, a.maxReadRequestsPerSecond, a.maxPresenceMembersPerChannel, a.maxPresenceMemberSizeInKb],
    [11, -1, 12, 13, 1.5],
  );
  assert.deepEqual([a.maxChannelNameLength, a.maxEventChannelsAtOnce, a.maxEventNameLength, a.maxEventPayloadInKb, a.maxEventBatchSize], [14, 15, 16, 17, 18]);
  assert.equal(a.webhooks[0].event_types[0], 'channel_vacated');
  const uniform = load({ SOKETI_DEFAULT_APP_MAX_CONNECTIONS: '6', SOKETI_DEFAULT_APP_ENABLE_USER_AUTHENTICATION: 'true' }).config.apps[0];
  assert.deepEqual([uniform.maxConnections, uniform.enableUserAuthentication], [6, true]);
});

test("ripple's own names win over SOKETI_* ones; the environment wins over the file; flags win over both", () => {
  const f = { port: 7000, 'appManager.array.apps': [{ id: 'f', key: 'fk', secret: 'fs' }] };
  assert.equal(load({}, f).config.port, 7000);
  assert.equal(load({ SOKETI_PORT: '7001' }, f).config.port, 7001);
  assert.equal(load({ SOKETI_PORT: '7001', PORT: '7002' }, f).config.port, 7002);
  assert.equal(load({ SOKETI_PORT: '7001', PORT: '7002' }, f, ['--port', '7003']).config.port, 7003);
  const app = load({ SOKETI_DEFAULT_APP_ID: 'soketi', APP_ID: 'ripple', APP_SECRET: 's' }).config.apps[0];
  assert.equal(app.id, 'ripple');
  assert.equal(load({ SOKETI_DEBUG: 'true' }).config.logLevel, 'debug');
  assert.equal(load({ SOKETI_DEBUG: 'true', LOG_LEVEL: 'warn' }).config.logLevel, 'warn');
  assert.equal(load({ SOKETI_DEBUG: 'false' }).config.logLevel, 'info');
  assert.equal(load({ LOG_LEVEL: 'warn' }, undefined, ['--debug']).config.logLevel, 'debug');
});

test('SOKETI_ADAPTER_DRIVER=redis with SOKETI_DB_REDIS_* is cluster mode through that Redis', () => {
  const { config } = load({
    SOKETI_ADAPTER_DRIVER: 'redis',
    SOKETI_DB_REDIS_HOST: '10.1.2.3',
    SOKETI_DB_REDIS_PORT: '6380',
    SOKETI_DB_REDIS_DB: '2',
    SOKETI_DB_REDIS_USERNAME: 'u',
    SOKETI_DB_REDIS_PASSWORD: '123456',
    SOKETI_DB_REDIS_KEY_PREFIX: 'myapp:',
    APP_SECRET: 's',
  });
  assert.deepEqual(config.redisOptions, { host: '10.1.2.3', port: 6380, db: 2, username: 'u', password: '123456' });
  assert.equal(config.redisPrefix, 'myapp');
  // Soketi's defaults when only the driver is given; its pub/sub prefix when there is no key prefix
  const bare = load({ SOKETI_ADAPTER_DRIVER: 'redis', SOKETI_ADAPTER_REDIS_PREFIX: 'pfx', APP_SECRET: 's' }).config;
  assert.deepEqual(bare.redisOptions, { host: '127.0.0.1', port: 6379 });
  assert.equal(bare.redisPrefix, 'pfx');
  // Sentinel
  const sentinel = load({ SOKETI_ADAPTER_DRIVER: 'redis', SOKETI_DB_REDIS_SENTINELS: '[{"host":"s1","port":26379}]', SOKETI_DB_REDIS_INSTANCE_NAME: 'main', APP_SECRET: 's' }).config;
  assert.deepEqual(sentinel.redisOptions, { host: '127.0.0.1', port: 6379, sentinels: [{ host: 's1', port: 26379 }], name: 'main' });
});

test("a Soketi file's adapter.driver redis with database.redis.* (nested or dotted) is cluster mode", () => {
  const nested = load({}, { adapter: { driver: 'redis' }, database: { redis: { host: 'r', port: '6390', keyPrefix: 'k' } }, 'appManager.array.apps': [{ id: 'a', key: 'b', secret: 'c' }] });
  assert.deepEqual(nested.config.redisOptions, { host: 'r', port: 6390 });
  assert.equal(nested.config.redisPrefix, 'k');
  const dotted = load({}, { 'adapter.driver': 'redis', 'database.redis.host': 'r', 'appManager.array.apps': [{ id: 'a', key: 'b', secret: 'c' }] });
  assert.deepEqual(dotted.config.redisOptions, { host: 'r', port: 6379 });
  assert.deepEqual(dotted.warnings, []);
});

test("REDIS_URL wins over Soketi's Redis settings, and says so", () => {
  const { config, warnings } = load({ REDIS_URL: 'redis://127.0.0.1:7777', SOKETI_ADAPTER_DRIVER: 'redis', SOKETI_DB_REDIS_HOST: 'other', APP_SECRET: 's' });
  assert.equal(config.redisUrl, 'redis://127.0.0.1:7777');
  assert.equal(config.redisOptions, undefined);
  assert.ok(warnings.some((w) => /^SOKETI_ADAPTER_DRIVER, SOKETI_DB_REDIS_HOST: ignored; REDIS_URL sets the Redis connection/.test(w)), warnings.join('\n'));
});

test("Soketi's server-wide limits become every app's defaults, under an app's own value", () => {
  const { config } = load(
    { SOKETI_EVENT_MAX_SIZE_IN_KB: '64', SOKETI_PRESENCE_MAX_MEMBERS: '300' },
    {
      eventLimits: { maxChannelsAtOnce: '50', maxNameLength: 120, maxBatchSize: 20, maxPayloadInKb: 32 },
      channelLimits: { maxNameLength: 150, cacheTtl: 600 },
      presence: { maxMemberSizeInKb: 4 },
      userAuthenticationTimeout: 5000,
      'appManager.array.apps': [
        { id: '1', key: 'k1', secret: 's1' },
        { id: '2', key: 'k2', secret: 's2', max_event_payload_in_kb: 8 },
      ],
    },
  );
  const [a, b] = config.apps;
  assert.equal(a.maxEventPayloadInKb, 64, 'the environment wins over the file');
  assert.equal(b.maxEventPayloadInKb, 8, "the app's own value wins");
  assert.deepEqual([a.maxEventChannelsAtOnce, a.maxEventNameLength, a.maxEventBatchSize, a.maxChannelNameLength], [50, 120, 20, 150]);
  assert.deepEqual([a.maxPresenceMembersPerChannel, a.maxPresenceMemberSizeInKb, a.userAuthenticationTimeout], [300, 4, 5000]);
  assert.equal(config.cacheTtl, 600);
});

test('other Soketi server settings with an equivalent here', () => {
  const { config } = load(
    {},
    {
      shutdownGracePeriod: 2500,
      httpApi: { requestLimitInMb: 2 },
      ssl: { certPath: '/c.pem', keyPath: '/k.pem', passphrase: '', caPath: '' },
      instance: { process_id: 'node-7' },
      webhooks: { batching: { enabled: true, duration: 120 } },
      metrics: { enabled: true },
      'appManager.array.apps': [{ id: 'a', key: 'b', secret: 'c' }],
    },
  );
  assert.equal(config.shutdownTimeoutMs, 2500);
  assert.equal(config.maxRequestBytes, 2 * 1024 * 1024);
  assert.deepEqual(config.tls, { certFile: '/c.pem', keyFile: '/k.pem' });
  assert.equal(config.nodeId, 'node-7');
  assert.equal(config.webhooks.batchMs, 120);
  assert.equal(config.metricsPort, 9601, "Soketi's default metrics port");
  const env = load({ SOKETI_METRICS_ENABLED: 'true', SOKETI_METRICS_SERVER_PORT: '9700', SOKETI_METRICS_HOST: '127.0.0.1', SOKETI_WEBHOOKS_BATCHING: 'false', SOKETI_SHUTDOWN_GRACE_PERIOD: '200' }).config;
  assert.deepEqual([env.metricsPort, env.metricsHost, env.webhooks.batchMs, env.shutdownTimeoutMs], [9700, '127.0.0.1', 0, 200]);
  assert.equal(load({ SOKETI_METRICS_ENABLED: 'true', METRICS_PORT: '9800' }).config.metricsPort, 9800);
  const off = load({ SOKETI_METRICS_SERVER_PORT: '9700' });
  assert.equal(off.config.metricsPort, undefined);
  assert.match(off.warnings.join('\n'), /^SOKETI_METRICS_SERVER_PORT: ignored, as in Soketi, because metrics.enabled/m);
});

test('Soketi settings without an equivalent are reported by their own name, once each, only when not left at the default', () => {
  const { warnings } = load(
    {
      SOKETI_QUEUE_DRIVER: 'redis',
      SOKETI_CLUSTER_PORT: '11002', // Soketi's default: nothing to report
      SOKETI_CLUSTER_HOST: '127.0.0.1',
      SOKETI_MODE: 'worker',
      SOKETI_RATE_LIMITER_DRIVER: 'redis',
      SOKETI_APP_MANAGER_DYNAMODB_REGION: 'eu-west-1',
      APP_SECRET: 's',
    },
    { cors: { origin: ['https://a.example'] }, 'metrics.prometheus.prefix': 'x_', ssl: { caPath: '/ca.pem' } },
  );
  const names = warnings.map((w) => w.slice(0, w.indexOf(':')));
  assert.deepEqual(names.sort(), [
    'SOKETI_APP_MANAGER_DYNAMODB_REGION',
    'SOKETI_CLUSTER_HOST',
    'SOKETI_MODE',
    'SOKETI_QUEUE_DRIVER',
    'SOKETI_RATE_LIMITER_DRIVER',
    'cors.origin',
    'metrics.prometheus.prefix',
    'ssl.caPath',
  ]);
  for (const w of warnings) assert.match(w, /^[\w.]+: not supported; ripple /, w);
});

test('Soketi settings that pick something ripple cannot do stop the start, naming the setting', () => {
  rejects({ SOKETI_ADAPTER_DRIVER: 'nats' }, {}, /^SOKETI_ADAPTER_DRIVER: "nats" is not supported/);
  rejects({}, { adapter: { driver: 'cluster' } }, /^adapter.driver: "cluster" is not supported/);
  rejects({ SOKETI_APP_MANAGER_DRIVER: 'dynamodb' }, {}, /^SOKETI_APP_MANAGER_DRIVER: "dynamodb" is not supported; ripple reads apps from its config file, the environment, or a MySQL\/MariaDB or PostgreSQL table/);
  rejects({ SOKETI_ADAPTER_DRIVER: 'redis', SOKETI_ADAPTER_REDIS_CLUSTER_MODE: 'true' }, {}, /^SOKETI_ADAPTER_REDIS_CLUSTER_MODE: Redis Cluster needs its seed nodes/);
  rejects({ ADAPTER_DRIVER: 'redis-cluster' }, {}, /^ADAPTER_DRIVER: Redis Cluster needs its seed nodes/);
  rejects({ REDIS_CLUSTER_NODES: '[1]', APP_SECRET: 's' }, {}, /redisClusterNodes|REDIS_CLUSTER_NODES/);
  rejects({ REDIS_CLUSTER_NODES: 'h1:7000, bad host:1', APP_SECRET: 's' }, {}, /REDIS_CLUSTER_NODES.*must be host:port or a redis:\/\/ or rediss:\/\/ URL/);
});

test("Redis Cluster: ripple's REDIS_CLUSTER_NODES, Soketi's cluster mode and Sockudo's redis-cluster adapter; credentials go to every node", () => {
  const own = load({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7000', APP_SECRET: 's' }).config;
  assert.deepEqual(own.redisClusterNodes, ['10.0.0.1:7000', '10.0.0.2:7000']);
  const soketi = load({
    SOKETI_ADAPTER_DRIVER: 'redis',
    SOKETI_ADAPTER_REDIS_CLUSTER_MODE: 'true',
    SOKETI_DB_REDIS_CLUSTER_NODES: '[{"host":"10.0.0.1","port":7000},{"host":"10.0.0.2","port":7001}]',
    SOKETI_DB_REDIS_USERNAME: 'u',
    SOKETI_DB_REDIS_PASSWORD: 'p',
    APP_SECRET: 's',
  }).config;
  assert.deepEqual(soketi.redisClusterNodes, ['10.0.0.1:7000', '10.0.0.2:7001']);
  assert.deepEqual(soketi.redisOptions, { username: 'u', password: 'p' });
  const sockudo = load({ ADAPTER_DRIVER: 'redis-cluster', DATABASE_REDIS_CLUSTER_NODES: 'redis://10.0.0.1:7000,10.0.0.2:7000', APP_SECRET: 's' }).config;
  assert.deepEqual(sockudo.redisClusterNodes, ['redis://10.0.0.1:7000', '10.0.0.2:7000']);
  // without cluster mode the seed list is reported, not used
  const { config, warnings } = load({ SOKETI_ADAPTER_DRIVER: 'redis', SOKETI_DB_REDIS_CLUSTER_NODES: '10.0.0.1:7000', APP_SECRET: 's' });
  assert.equal(config.redisClusterNodes, undefined);
  assert.ok(warnings.some((w) => /^SOKETI_DB_REDIS_CLUSTER_NODES: ignored; Redis Cluster is used only with/.test(w)), warnings.join('\n'));
});

test("Soketi app fields: spellings, numbers and booleans written as strings, JSON webhooks, a host (ignored, said so), empty fields", () => {
  const { config, warnings } = load(
    {},
    {
      appManager: {
        array: {
          apps: [
            {
              AppId: 7,
              AppKey: 'k',
              AppSecret: 's',
              host: 'ws.example.com',
              max_backend_events_per_sec: '30',
              max_client_events_per_sec: '40',
              max_read_req_per_sec: 50,
              enable_client_messages: 'true',
              Enabled: 'true',
              MaxConnections: '',
              max_presence_members_per_channel: null,
              webhooks: '[{"url":"http://127.0.0.1:9/h","event_types":["member_added"]}]',
            },
          ],
        },
      },
    },
  );
  const a = config.apps[0];
  assert.deepEqual([a.id, a.key, a.secret], ['7', 'k', 's']);
  assert.deepEqual([a.maxBackendEventsPerSecond, a.maxClientEventsPerSecond, a.maxReadRequestsPerSecond], [30, 40, 50]);
  assert.equal(a.enableClientMessages, true);
  assert.equal(a.maxConnections, -1, 'an empty field keeps the default, as in Soketi');
  assert.equal(a.maxPresenceMembersPerChannel, 100);
  assert.equal(a.webhooks[0].event_types[0], 'member_added');
  assert.deepEqual(warnings, ['appManager.array.apps.0.host: ignored; an app has no host of its own here, every app is served on every address the node listens on']);
});

test('errors name the key as the user wrote it', () => {
  const apps = (app: object) => ({ 'appManager.array.apps': [{ id: 'a', key: 'b', secret: 'c', ...app }] });
  rejects({}, apps({ max_connections: 'lots' }), /^appManager\.array\.apps\.0\.max_connections: expected an integer, got "lots"/);
  rejects({}, apps({ max_conections: 5 }), /appManager\.array\.apps\.0\.max_conections: unknown setting \(did you mean maxConnections\?\)/);
  rejects({}, apps({ max_event_batch_size: 0 }), /appManager\.array\.apps\.0\.max_event_batch_size: /);
  rejects({}, { appManager: { array: { apps: [{ id: 'a', key: 'b', secret: 'c', webhooks: [{ url: 'nope', event_types: ['channel_occupied'] }] }] } } }, /appManager\.array\.apps\.0\.webhooks\.0\.url: /);
  rejects({ SOKETI_PORT: 'x' }, {}, /^SOKETI_PORT: expected an integer, got "x"/);
  rejects({ SOKETI_PORT: '70000' }, {}, /^invalid configuration[^\n]*\n {2}SOKETI_PORT: /);
  rejects({ SOKETI_EVENT_MAX_SIZE_IN_KB: '-5' }, {}, /\n {2}SOKETI_EVENT_MAX_SIZE_IN_KB: /);
  rejects({ SOKETI_DEFAULT_APP_MAX_CONNS: 'many' }, {}, /^SOKETI_DEFAULT_APP_MAX_CONNS: expected an integer/);
  rejects({}, { database: { redis: { port: 'six' } } }, /^database\.redis\.port: expected an integer, got "six"/);
  rejects({}, { redisURL: 'redis://x' }, /redisURL: unknown setting \(did you mean redisUrl\?\)/);
  rejects({}, { 'database.redis.hots': 'x' }, /database\.redis\.hots: unknown setting \(did you mean database\.redis\.host\?\)/);
  rejects({ REUSE_PORT: '1' }, {}, /^REUSE_PORT: sharing the port needs cluster mode/);
});

test("with apps in the file, SOKETI_DEFAULT_APP_* rewrite the file's first app as in Soketi; ripple's APP_* are ignored and named", () => {
  const soketiFile = { 'appManager.array.apps': [{ id: 'a', key: 'b', secret: 'c', enableClientMessages: true }, { id: 'a2', key: 'b2', secret: 'c2' }] };
  const { config, warnings, notices } = load(
    { SOKETI_DEFAULT_APP_KEY: 'env-key', SOKETI_DEFAULT_APP_SECRET: 'env-secret', SOKETI_DEFAULT_APP_MAX_CONNS: '7', APP_MAX_CONNECTIONS: '3', APP_ID: 'x' },
    soketiFile,
  );
  assert.deepEqual([config.apps[0].id, config.apps[0].key, config.apps[0].secret, config.apps[0].maxConnections], ['a', 'env-key', 'env-secret', 7]);
  assert.equal(config.apps[0].enableClientMessages, true, 'the fields the variables do not name stay as the file has them');
  assert.deepEqual([config.apps[1].key, config.apps[1].secret, config.apps[1].maxConnections], ['b2', 'c2', -1], 'the other apps are untouched');
  assert.deepEqual(warnings.sort(), [
    'APP_ID: ignored; the apps come from the config file (appManager.array.apps)',
    'APP_MAX_CONNECTIONS: ignored; the apps come from the config file (appManager.array.apps)',
  ]);
  assert.ok(notices.includes('SOKETI_DEFAULT_APP_KEY, SOKETI_DEFAULT_APP_SECRET, SOKETI_DEFAULT_APP_MAX_CONNS: set on the first app of appManager.array.apps, as Soketi does'), notices.join('\n'));
  // ripple's own list too, and over a file's own patch of that app
  const ripple = load({ SOKETI_DEFAULT_APP_KEY: 'env-key' }, { apps: [{ id: 'r', key: 'rk', secret: 'rs' }], 'appManager.array.apps.0.key': 'patched' }).config;
  assert.deepEqual([ripple.apps[0].id, ripple.apps[0].key], ['r', 'env-key']);
  rejects({ SOKETI_DEFAULT_APP_KEY: 'k' }, { apps: [] }, /^SOKETI_DEFAULT_APP_KEY: there is no app 0 in apps/);
});

test('SOKETI_PATH_PREFIX (or PATH_PREFIX, or the file\'s pathPrefix) is read as a path, with or without its slashes', () => {
  assert.equal(load({}).config.pathPrefix, '');
  assert.equal(load({ SOKETI_PATH_PREFIX: '/ws' }).config.pathPrefix, '/ws');
  assert.equal(load({ SOKETI_PATH_PREFIX: 'ws/' }).config.pathPrefix, '/ws');
  assert.equal(load({ SOKETI_PATH_PREFIX: '/ws', PATH_PREFIX: '/realtime/v1/' }).config.pathPrefix, '/realtime/v1');
  assert.equal(load({}, { pathPrefix: '/socket' }).config.pathPrefix, '/socket');
  assert.equal(load({ SOKETI_PATH_PREFIX: '/' }).config.pathPrefix, '');
  rejects({ PATH_PREFIX: '/a b' }, {}, /PATH_PREFIX: must be a URL path/);
  rejects({ SOKETI_PATH_PREFIX: '/ws?x=1' }, {}, /SOKETI_PATH_PREFIX: must be a URL path/);
});

test('a .env file in the working directory gives its SOKETI_* lines, under the environment, as Soketi reads it with dotenv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ripple-dotenv-'));
  writeFileSync(
    join(dir, '.env'),
    [
      '# a Laravel project\'s .env, with Soketi\'s settings in it',
      'APP_NAME=Laravel',
      'APP_KEY=base64:notForRipple=',
      'export SOKETI_PORT=7111',
      'SOKETI_DEFAULT_APP_ID="from-dotenv"',
      "SOKETI_DEFAULT_APP_KEY='dotenv-key' # a comment",
      'SOKETI_DEFAULT_APP_SECRET=dotenv-secret',
      'SOKETI_DEBUG=true',
      '',
    ].join('\n'),
  );
  const fromFile = loadConfigWithNotes([], {}, { dotEnvDir: dir });
  assert.equal(fromFile.config.port, 7111);
  assert.deepEqual([fromFile.config.apps[0].id, fromFile.config.apps[0].key, fromFile.config.apps[0].secret], ['from-dotenv', 'dotenv-key', 'dotenv-secret']);
  assert.equal(fromFile.config.logLevel, 'debug');
  assert.ok(fromFile.notices.some((n) => n.startsWith(`${join(dir, '.env')}: read SOKETI_PORT, SOKETI_DEFAULT_APP_ID`)), fromFile.notices.join('\n'));
  // the environment wins, even when it sets a variable to nothing; other names in the file are not read
  const env = loadConfigWithNotes([], { SOKETI_PORT: '7222', SOKETI_DEBUG: '' }, { dotEnvDir: dir });
  assert.equal(env.config.port, 7222);
  assert.equal(env.config.logLevel, 'info');
  assert.notEqual(env.config.apps[0].key, 'base64:notForRipple=');
  // no .env, or no directory given: nothing read
  assert.equal(loadConfigWithNotes([], {}, { dotEnvDir: mkdtempSync(join(tmpdir(), 'ripple-nodotenv-')) }).config.port, 6001);
  assert.equal(loadConfigWithNotes([], {}).config.port, 6001);
  // a typo in the file is reported like one in the environment
  writeFileSync(join(dir, '.env'), 'SOKETI_PROT=1\n');
  assert.ok(loadConfigWithNotes([], {}, { dotEnvDir: dir }).warnings.some((w) => w.startsWith('SOKETI_PROT is not a setting ripple reads; did you mean SOKETI_PORT?')));
});

test('the development app listens on loopback unless a host is given; a public host with it is a warning', () => {
  const dev = load({});
  assert.equal(dev.config.host, '127.0.0.1');
  assert.equal(dev.developmentSecret, true);
  assert.match(dev.notices.join('\n'), /development app .* on 127\.0\.0\.1 only/);
  const onlyId = load({ SOKETI_DEFAULT_APP_ID: 'sk-id' });
  assert.equal(onlyId.config.host, '127.0.0.1', 'an id without a secret still uses the public secret');
  for (const env of [{ HOST: '0.0.0.0' }, { SOKETI_HOST: '0.0.0.0' }] as Record<string, string>[]) {
    const exposed = load(env);
    assert.equal(exposed.config.host, '0.0.0.0');
    assert.match(exposed.warnings.join('\n'), /public secret "app-secret"\) on 0\.0\.0\.0 \((HOST|SOKETI_HOST)\): anyone who can reach this port/);
  }
  assert.equal(load({}, undefined, ['--host', '0.0.0.0']).config.host, '0.0.0.0');
  assert.equal(load({}, { host: '0.0.0.0' }).config.host, '0.0.0.0');
  assert.deepEqual(load({ HOST: '127.0.0.1' }).warnings, []);
  // a configured secret: every address, as before
  const real = load({ APP_ID: 'a', APP_KEY: 'b', APP_SECRET: 'c' });
  assert.equal(real.config.host, '0.0.0.0');
  assert.equal(real.developmentSecret, false);
  assert.equal(load({}, { apps: [{ id: 'a', key: 'b', secret: 'c' }] }).config.host, '0.0.0.0');
});

test("a Soketi file that spells out Soketi's defaults for settings ripple lacks starts without a warning", () => {
  const { warnings } = load(
    {},
    {
      mode: 'full',
      pathPrefix: '',
      cors: { credentials: true, origin: ['*'] },
      cluster: { port: 11002, hostname: '0.0.0.0', ignoreProcess: true },
      database: { mysql: { host: '127.0.0.1', port: 3306 }, postgres: { user: 'postgres' } },
      databasePooling: { enabled: false },
      queue: { driver: 'sync', redis: { concurrency: 1 } },
      rateLimiter: { driver: 'local' },
      cache: { driver: 'memory' },
      metrics: { driver: 'prometheus', prometheus: { prefix: 'soketi_' } },
      ssl: { certPath: '', keyPath: '', passphrase: '', caPath: '' },
      appManager: { driver: 'array', cache: { enabled: false }, array: { apps: [{ id: 'a', key: 'b', secret: 'c' }] } },
    },
  );
  assert.deepEqual(warnings, []);
});
