// Soketi's settings (its SOKETI_* environment variables and its JSON config keys, as of Soketi 1.6.1)
// read into ripple's configuration. A setting with an equivalent here is mapped; one without is
// reported at start by its own name, saying what ripple does instead; a setting that selects
// something ripple cannot do at all (a NATS adapter, apps from MySQL, Redis Cluster) stops the start.
import { ConfigError } from './errors.js';
import { appFields, upperSnake, type Kind } from './env-names.js';
import { PEER_APP_STORE_PATHS, applyPeerAppStore } from './peer-app-store.js';

/** One Soketi setting as the user wrote it: dotted Soketi path, value, and the name to report it by. */
export interface SoketiEntry {
  path: string;
  value: unknown;
  /** What the user wrote: `SOKETI_PORT`, or the file key path `database.redis.port`. */
  label: string;
  /** Precedence of its source (higher wins); see load.ts. */
  rank: number;
}

/** Where the mapped values go (load.ts's builders). */
export interface SoketiSink {
  /** A ripple config path (`port`, `tls.certFile`, `webhooks.batchMs`). */
  set(path: string, value: unknown, label: string, rank: number): void;
  /** A default for every app's field, under the app's own value (Soketi's server-wide limits). */
  appDefault(field: string, value: unknown, label: string, rank: number): void;
  warn(message: string): void;
  notice(message: string): void;
}

/** Soketi's Redis connection (`adapter.driver: "redis"` and `database.redis.*`), for load.ts to weigh against ripple's own. */
export interface SoketiRedis {
  /** ioredis options (on Redis Cluster: those of every node) */
  options: Record<string, unknown>;
  /** Redis Cluster's seed nodes ("host:port"), when the peer's settings select Redis Cluster */
  clusterNodes?: string[];
  /** The settings it came from (for messages). */
  labels: string[];
  rank: number;
}

type Apply = (v: unknown, e: SoketiEntry, sink: SoketiSink) => void;
interface Spec {
  kind: Kind | 'any';
  apply?: Apply;
  /** Not supported: Soketi's default (reported only when set to something else) and what ripple does instead. */
  unsupported?: { def: unknown; instead: string };
}

const to =
  (path: string, f: (v: never) => unknown = (v) => v): Apply =>
  (v, e, s) =>
    s.set(path, f(v as never), e.label, e.rank);
const appDefault =
  (field: string): Apply =>
  (v, e, s) =>
    s.appDefault(field, v, e.label, e.rank);
const ifSet =
  (apply: Apply): Apply =>
  (v, e, s) => {
    if (v !== '' && v !== null && v !== undefined) apply(v, e, s);
  };
const no = (def: unknown, instead: string): Spec => ({ kind: 'any', unsupported: { def, instead } });

const CLUSTER = 'ripple nodes find each other through Redis (adapter.driver "redis"), with no UDP discovery';
const DYNAMODB = 'ripple reads apps from its config, the environment, or a MySQL/MariaDB or PostgreSQL table';
const QUEUE = 'ripple queues webhooks itself: in memory on a single node, in Redis streams in cluster mode';
const RATE = 'ripple counts rate limits in memory on a single node, in Redis in cluster mode';
const CACHE = 'ripple keeps cache channels in memory on a single node, in Redis in cluster mode';
const NATS = 'ripple clusters through Redis only';
const CORS = 'ripple sends no CORS headers (the HTTP API is called by server SDKs); add them in a reverse proxy if browsers call it';
const REDIS_OPTIONS = 'ripple uses database.redis.* for all its Redis connections';

/** Redis connection options Soketi passes to ioredis, under `database.redis.`. */
const REDIS_CONNECTION: Record<string, Kind | 'any'> = {
  host: 'string',
  port: 'int',
  db: 'int',
  username: 'string',
  password: 'string',
  sentinels: 'json',
  sentinelPassword: 'string',
  name: 'string',
};

/** Every Soketi option leaf ripple knows, by Soketi's dotted path. */
const SPECS: Record<string, Spec> = {
  port: { kind: 'int', apply: to('port') },
  host: { kind: 'string', apply: to('host') },
  debug: { kind: 'bool', apply: (v, e, s) => v === true && s.set('logLevel', 'debug', e.label, e.rank) },
  shutdownGracePeriod: { kind: 'int', apply: to('shutdownTimeoutMs') },
  userAuthenticationTimeout: { kind: 'int', apply: appDefault('userAuthenticationTimeout') },
  'channelLimits.maxNameLength': { kind: 'int', apply: appDefault('maxChannelNameLength') },
  'channelLimits.cacheTtl': { kind: 'int', apply: to('cacheTtl') },
  'eventLimits.maxChannelsAtOnce': { kind: 'int', apply: appDefault('maxEventChannelsAtOnce') },
  'eventLimits.maxNameLength': { kind: 'int', apply: appDefault('maxEventNameLength') },
  'eventLimits.maxPayloadInKb': { kind: 'num', apply: appDefault('maxEventPayloadInKb') },
  'eventLimits.maxBatchSize': { kind: 'int', apply: appDefault('maxEventBatchSize') },
  'presence.maxMembersPerChannel': { kind: 'int', apply: appDefault('maxPresenceMembersPerChannel') },
  'presence.maxMemberSizeInKb': { kind: 'num', apply: appDefault('maxPresenceMemberSizeInKb') },
  'httpApi.requestLimitInMb': { kind: 'num', apply: to('maxRequestBytes', (mb: number) => Math.round(mb * 1024 * 1024)) },
  'ssl.certPath': { kind: 'string', apply: ifSet(to('tls.certFile')) },
  'ssl.keyPath': { kind: 'string', apply: ifSet(to('tls.keyFile')) },
  'ssl.passphrase': { kind: 'string', apply: ifSet(to('tls.passphrase')) },
  'ssl.caPath': { kind: 'string', unsupported: { def: '', instead: 'ripple loads no separate CA file; put the chain in the certificate file' } },
  'instance.process_id': { kind: 'string', apply: to('nodeId') },
  pathPrefix: { kind: 'string', apply: to('pathPrefix') },
  // resolved together below
  'metrics.enabled': { kind: 'bool' },
  'metrics.port': { kind: 'int' },
  'metrics.host': { kind: 'string' },
  'webhooks.batching.enabled': { kind: 'bool' },
  'webhooks.batching.duration': { kind: 'int' },
  'adapter.driver': { kind: 'string' },
  'adapter.redis.prefix': { kind: 'string' },
  // Redis Cluster (Soketi: adapter.redis.clusterMode with database.redis.clusterNodes; Sockudo:
  // ADAPTER_DRIVER=redis-cluster with DATABASE_REDIS_CLUSTER_NODES): resolved with the connection below
  'adapter.redis.clusterMode': { kind: 'bool' },
  'database.redis.clusterNodes': { kind: 'list' },
  ...Object.fromEntries(Object.entries(REDIS_CONNECTION).map(([k, kind]) => [`database.redis.${k}`, { kind }])),
  'database.redis.keyPrefix': { kind: 'string' },
  // the app manager (and Sockudo's names for it): resolved together in peer-app-store.ts
  ...Object.fromEntries(Object.entries(PEER_APP_STORE_PATHS).map(([p, kind]) => [p, { kind }])),
  'metrics.driver': { kind: 'string', unsupported: { def: 'prometheus', instead: 'ripple serves Prometheus metrics only' } },
  'metrics.prometheus.prefix': no('soketi_', 'ripple names its metrics ripple_* (not configurable)'),
  mode: { kind: 'string', unsupported: { def: 'full', instead: 'ripple always runs in full mode (WebSocket, HTTP API and webhook sending in one process)' } },
  'adapter.redis.requestsTimeout': no(5000, 'ripple reads cluster state from Redis directly, with no requests between nodes'),
  'adapter.redis.redisPubOptions': no({}, REDIS_OPTIONS),
  'adapter.redis.redisSubOptions': no({}, REDIS_OPTIONS),
  'adapter.cluster.requestsTimeout': no(5000, CLUSTER),
  'adapter.nats.requestsTimeout': no(5000, NATS),
  'adapter.nats.prefix': no('', NATS),
  'adapter.nats.servers': no(['127.0.0.1:4222'], NATS),
  'adapter.nats.user': no(null, NATS),
  'adapter.nats.pass': no(null, NATS),
  'adapter.nats.token': no(null, NATS),
  'adapter.nats.timeout': no(10000, NATS),
  'adapter.nats.nodesNumber': no(null, NATS),
  'appManager.dynamodb.table': no('apps', DYNAMODB),
  'appManager.dynamodb.region': no('us-east-1', DYNAMODB),
  'appManager.dynamodb.endpoint': no(null, DYNAMODB),
  'cache.driver': no('memory', CACHE),
  'cache.redis.redisOptions': no({}, CACHE),
  'cache.redis.clusterMode': no(false, CACHE),
  'cluster.hostname': no('0.0.0.0', CLUSTER),
  'cluster.helloInterval': no(500, CLUSTER),
  'cluster.checkInterval': no(500, CLUSTER),
  'cluster.nodeTimeout': no(2000, CLUSTER),
  'cluster.masterTimeout': no(2000, CLUSTER),
  'cluster.port': no(11002, CLUSTER),
  'cluster.prefix': no('', CLUSTER),
  'cluster.ignoreProcess': no(true, CLUSTER),
  'cluster.broadcast': no('255.255.255.255', CLUSTER),
  'cluster.unicast': no(null, CLUSTER),
  'cluster.multicast': no(null, CLUSTER),
  'cors.credentials': no(true, CORS),
  'cors.origin': no(['*'], CORS),
  'cors.methods': no(['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'], CORS),
  'cors.allowedHeaders': no(
    ['Origin', 'Content-Type', 'X-Auth-Token', 'X-Requested-With', 'Accept', 'Authorization', 'X-CSRF-TOKEN', 'XSRF-TOKEN', 'X-Socket-Id'],
    CORS,
  ),
  'httpApi.acceptTraffic.memoryThreshold': no(85, 'ripple has no /accept-traffic check; load balancers use /ready'),
  'queue.driver': no('sync', QUEUE),
  'queue.redis.concurrency': no(1, QUEUE),
  'queue.redis.redisOptions': no({}, QUEUE),
  'queue.redis.clusterMode': no(false, QUEUE),
  'queue.sqs.region': no('us-east-1', QUEUE),
  'queue.sqs.endpoint': no(null, QUEUE),
  'queue.sqs.clientOptions': no({}, QUEUE),
  'queue.sqs.consumerOptions': no({}, QUEUE),
  'queue.sqs.queueUrl': no('', QUEUE),
  'queue.sqs.processBatch': no(false, QUEUE),
  'queue.sqs.batchSize': no(1, QUEUE),
  'queue.sqs.pollingWaitTimeMs': no(0, QUEUE),
  'rateLimiter.driver': no('local', RATE),
  'rateLimiter.redis.redisOptions': no({}, RATE),
  'rateLimiter.redis.clusterMode': no(false, RATE),
};

/** Soketi's apps: the whole list, and one app's field (`appManager.array.apps.0.max_connections`). */
export const SOKETI_APPS_PATH = 'appManager.array.apps';
const APP_FIELD_PATH = /^appManager\.array\.apps\.(\d+)\.(.+)$/;

/** Every Soketi file path ripple knows, app fields aside (for "did you mean"). */
export const soketiPaths: readonly string[] = Object.keys(SPECS);

export function isSoketiPath(path: string): boolean {
  return path in SPECS || path === SOKETI_APPS_PATH || APP_FIELD_PATH.test(path);
}

/** True when some known Soketi path lies under `path` (so a nested object there is walked into). */
function isSoketiSection(path: string): boolean {
  const p = `${path}.`;
  return p === 'appManager.array.apps.'.slice(0, p.length) || Object.keys(SPECS).some((k) => k.startsWith(p));
}

/** Soketi app field spellings that are not just another casing of ours. */
export const SOKETI_APP_ALIASES: Readonly<Record<string, string>> = {
  AppId: 'id',
  AppKey: 'key',
  AppSecret: 'secret',
  max_backend_events_per_sec: 'maxBackendEventsPerSecond',
  max_client_events_per_sec: 'maxClientEventsPerSecond',
  max_read_req_per_sec: 'maxReadRequestsPerSecond',
};

/**
 * SOKETI_<NAME> → Soketi path, as Soketi 1.6.1 reads them; plus SOKETI_DEFAULT_APP_<FIELD> for every
 * app field ripple has (Soketi itself reads only some of those, under the irregular names listed here).
 */
export const SOKETI_ENV: Readonly<Record<string, string>> = {
  ADAPTER_DRIVER: 'adapter.driver',
  ADAPTER_CLUSTER_REQUESTS_TIMEOUT: 'adapter.cluster.requestsTimeout',
  ADAPTER_REDIS_PREFIX: 'adapter.redis.prefix',
  ADAPTER_REDIS_CLUSTER_MODE: 'adapter.redis.clusterMode',
  ADAPTER_REDIS_REQUESTS_TIMEOUT: 'adapter.redis.requestsTimeout',
  ADAPTER_REDIS_SUB_OPTIONS: 'adapter.redis.redisSubOptions',
  ADAPTER_REDIS_PUB_OPTIONS: 'adapter.redis.redisPubOptions',
  ADAPTER_NATS_PREFIX: 'adapter.nats.prefix',
  ADAPTER_NATS_SERVERS: 'adapter.nats.servers',
  ADAPTER_NATS_USER: 'adapter.nats.user',
  ADAPTER_NATS_PASSWORD: 'adapter.nats.pass',
  ADAPTER_NATS_TOKEN: 'adapter.nats.token',
  ADAPTER_NATS_TIMEOUT: 'adapter.nats.timeout',
  ADAPTER_NATS_REQUESTS_TIMEOUT: 'adapter.nats.requestsTimeout',
  ADAPTER_NATS_NODES_NUMBER: 'adapter.nats.nodesNumber',
  APP_MANAGER_DRIVER: 'appManager.driver',
  APP_MANAGER_CACHE_ENABLED: 'appManager.cache.enabled',
  APP_MANAGER_CACHE_TTL: 'appManager.cache.ttl',
  APP_MANAGER_DYNAMODB_TABLE: 'appManager.dynamodb.table',
  APP_MANAGER_DYNAMODB_REGION: 'appManager.dynamodb.region',
  APP_MANAGER_DYNAMODB_ENDPOINT: 'appManager.dynamodb.endpoint',
  APP_MANAGER_MYSQL_TABLE: 'appManager.mysql.table',
  APP_MANAGER_MYSQL_VERSION: 'appManager.mysql.version',
  APP_MANAGER_POSTGRES_TABLE: 'appManager.postgres.table',
  APP_MANAGER_POSTGRES_VERSION: 'appManager.postgres.version',
  APP_MANAGER_MYSQL_USE_V2: 'appManager.mysql.useMysql2',
  CHANNEL_LIMITS_MAX_NAME_LENGTH: 'channelLimits.maxNameLength',
  CHANNEL_CACHE_TTL: 'channelLimits.cacheTtl',
  CACHE_DRIVER: 'cache.driver',
  CACHE_REDIS_CLUSTER_MODE: 'cache.redis.clusterMode',
  CACHE_REDIS_OPTIONS: 'cache.redis.redisOptions',
  CLUSTER_CHECK_INTERVAL: 'cluster.checkInterval',
  CLUSTER_HOST: 'cluster.hostname',
  CLUSTER_IGNORE_PROCESS: 'cluster.ignoreProcess',
  CLUSTER_BROADCAST_ADDRESS: 'cluster.broadcast',
  CLUSTER_KEEPALIVE_INTERVAL: 'cluster.helloInterval',
  CLUSTER_MASTER_TIMEOUT: 'cluster.masterTimeout',
  CLUSTER_MULTICAST_ADDRESS: 'cluster.multicast',
  CLUSTER_NODE_TIMEOUT: 'cluster.nodeTimeout',
  CLUSTER_PORT: 'cluster.port',
  CLUSTER_PREFIX: 'cluster.prefix',
  CLUSTER_UNICAST_ADDRESSES: 'cluster.unicast',
  DEBUG: 'debug',
  DB_POOLING_ENABLED: 'databasePooling.enabled',
  DB_POOLING_MIN: 'databasePooling.min',
  DB_POOLING_MAX: 'databasePooling.max',
  DB_MYSQL_HOST: 'database.mysql.host',
  DB_MYSQL_PORT: 'database.mysql.port',
  DB_MYSQL_USERNAME: 'database.mysql.user',
  DB_MYSQL_PASSWORD: 'database.mysql.password',
  DB_MYSQL_DATABASE: 'database.mysql.database',
  DB_POSTGRES_HOST: 'database.postgres.host',
  DB_POSTGRES_PORT: 'database.postgres.port',
  DB_POSTGRES_USERNAME: 'database.postgres.user',
  DB_POSTGRES_PASSWORD: 'database.postgres.password',
  DB_POSTGRES_DATABASE: 'database.postgres.database',
  DB_REDIS_HOST: 'database.redis.host',
  DB_REDIS_PORT: 'database.redis.port',
  DB_REDIS_DB: 'database.redis.db',
  DB_REDIS_USERNAME: 'database.redis.username',
  DB_REDIS_PASSWORD: 'database.redis.password',
  DB_REDIS_KEY_PREFIX: 'database.redis.keyPrefix',
  DB_REDIS_SENTINELS: 'database.redis.sentinels',
  DB_REDIS_SENTINEL_PASSWORD: 'database.redis.sentinelPassword',
  DB_REDIS_CLUSTER_NODES: 'database.redis.clusterNodes',
  DB_REDIS_INSTANCE_NAME: 'database.redis.name',
  EVENT_MAX_BATCH_SIZE: 'eventLimits.maxBatchSize',
  EVENT_MAX_CHANNELS_AT_ONCE: 'eventLimits.maxChannelsAtOnce',
  EVENT_MAX_NAME_LENGTH: 'eventLimits.maxNameLength',
  EVENT_MAX_SIZE_IN_KB: 'eventLimits.maxPayloadInKb',
  HOST: 'host',
  HTTP_ACCEPT_TRAFFIC_MEMORY_THRESHOLD: 'httpApi.acceptTraffic.memoryThreshold',
  METRICS_ENABLED: 'metrics.enabled',
  METRICS_DRIVER: 'metrics.driver',
  METRICS_HOST: 'metrics.host',
  METRICS_PROMETHEUS_PREFIX: 'metrics.prometheus.prefix',
  METRICS_SERVER_PORT: 'metrics.port',
  MODE: 'mode',
  PORT: 'port',
  PATH_PREFIX: 'pathPrefix',
  PRESENCE_MAX_MEMBER_SIZE: 'presence.maxMemberSizeInKb',
  PRESENCE_MAX_MEMBERS: 'presence.maxMembersPerChannel',
  QUEUE_DRIVER: 'queue.driver',
  QUEUE_REDIS_CONCURRENCY: 'queue.redis.concurrency',
  QUEUE_REDIS_OPTIONS: 'queue.redis.redisOptions',
  QUEUE_REDIS_CLUSTER_MODE: 'queue.redis.clusterMode',
  QUEUE_SQS_REGION: 'queue.sqs.region',
  QUEUE_SQS_CLIENT_OPTIONS: 'queue.sqs.clientOptions',
  QUEUE_SQS_URL: 'queue.sqs.queueUrl',
  QUEUE_SQS_ENDPOINT: 'queue.sqs.endpoint',
  QUEUE_SQS_PROCESS_BATCH: 'queue.sqs.processBatch',
  QUEUE_SQS_BATCH_SIZE: 'queue.sqs.batchSize',
  QUEUE_SQS_POLLING_WAIT_TIME_MS: 'queue.sqs.pollingWaitTimeMs',
  RATE_LIMITER_DRIVER: 'rateLimiter.driver',
  RATE_LIMITER_REDIS_OPTIONS: 'rateLimiter.redis.redisOptions',
  RATE_LIMITER_REDIS_CLUSTER_MODE: 'rateLimiter.redis.clusterMode',
  SHUTDOWN_GRACE_PERIOD: 'shutdownGracePeriod',
  SSL_CERT: 'ssl.certPath',
  SSL_KEY: 'ssl.keyPath',
  SSL_PASS: 'ssl.passphrase',
  SSL_CA: 'ssl.caPath',
  USER_AUTHENTICATION_TIMEOUT: 'userAuthenticationTimeout',
  WEBHOOKS_BATCHING: 'webhooks.batching.enabled',
  WEBHOOKS_BATCHING_DURATION: 'webhooks.batching.duration',
  // the default app: every field of ours, then Soketi's own irregular names
  ...Object.fromEntries(appFields.map((f) => [`DEFAULT_APP_${upperSnake(f)}`, `${SOKETI_APPS_PATH}.0.${f}`])),
  DEFAULT_APP_MAX_CONNS: `${SOKETI_APPS_PATH}.0.maxConnections`,
  DEFAULT_APP_USER_AUTHENTICATION: `${SOKETI_APPS_PATH}.0.enableUserAuthentication`,
  DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SEC: `${SOKETI_APPS_PATH}.0.maxBackendEventsPerSecond`,
  DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SEC: `${SOKETI_APPS_PATH}.0.maxClientEventsPerSecond`,
  DEFAULT_APP_MAX_READ_REQ_PER_SEC: `${SOKETI_APPS_PATH}.0.maxReadRequestsPerSecond`,
};

export const soketiEnvNames: readonly string[] = Object.keys(SOKETI_ENV).map((k) => `SOKETI_${k}`);

/** The default app's field an env path sets (`appManager.array.apps.0.maxConnections` → maxConnections). */
export function appFieldOf(path: string): { index: number; field: string } | undefined {
  const m = APP_FIELD_PATH.exec(path);
  return m ? { index: Number(m[1]), field: m[2] } : undefined;
}

export function soketiKind(path: string): Kind | 'any' | undefined {
  return SPECS[path]?.kind;
}

/**
 * Soketi leaves of a (part of a) config file: nested objects are walked as Soketi's dotted paths
 * (`{"database": {"redis": {"host": ...}}}` is `database.redis.host`). Returns the leaves and the
 * paths that are no Soketi setting ripple knows.
 */
export function soketiLeaves(key: string, value: unknown): { leaves: [string, unknown][]; unknown: string[] } {
  const leaves: [string, unknown][] = [];
  const unknown: string[] = [];
  const walk = (path: string, v: unknown) => {
    if (isSoketiPath(path)) leaves.push([path, v]);
    else if (v && typeof v === 'object' && !Array.isArray(v) && isSoketiSection(path)) {
      for (const [k, inner] of Object.entries(v)) walk(`${path}.${k}`, inner);
    } else unknown.push(path);
  };
  walk(key, value);
  return { leaves, unknown };
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Maps Soketi entries (already read to their kinds; a later entry of the same path with a rank at
 * least as high replaces an earlier one) into the sink. Returns Soketi's Redis connection when
 * `adapter.driver` is "redis".
 */
export function applySoketi(entries: readonly SoketiEntry[], sink: SoketiSink): SoketiRedis | undefined {
  const byPath = new Map<string, SoketiEntry>();
  for (const e of entries) {
    const prev = byPath.get(e.path);
    if (!prev || e.rank >= prev.rank) byPath.set(e.path, e);
  }
  const get = (p: string) => byPath.get(p);

  for (const e of byPath.values()) {
    const spec = SPECS[e.path];
    if (!spec) continue;
    if (spec.apply) spec.apply(e.value, e, sink);
    else if (spec.unsupported && (spec.unsupported.def === undefined || !same(e.value, spec.unsupported.def))) {
      sink.warn(`${e.label}: not supported; ${spec.unsupported.instead}`);
    }
  }

  // metrics: Soketi opens its metrics server (port 9601 by default) only when metrics.enabled is true
  const enabled = get('metrics.enabled');
  const mPort = get('metrics.port');
  const mHost = get('metrics.host');
  if (enabled?.value === true) {
    const rank = Math.max(enabled.rank, mPort?.rank ?? 0);
    sink.set('metricsPort', mPort?.value ?? 9601, mPort?.label ?? enabled.label, rank);
    if (mHost) sink.set('metricsHost', mHost.value, mHost.label, mHost.rank);
  } else {
    for (const e of [mPort, mHost]) {
      if (e) sink.warn(`${e.label}: ignored, as in Soketi, because metrics.enabled (SOKETI_METRICS_ENABLED) is not true; /metrics is served on the main port`);
    }
  }

  // webhook batching: Soketi sends each webhook at once unless batching is enabled
  const batching = get('webhooks.batching.enabled');
  const duration = get('webhooks.batching.duration');
  if (batching) {
    const rank = Math.max(batching.rank, duration?.rank ?? 0);
    sink.set('webhooks.batchMs', batching.value === true ? (duration?.value ?? 50) : 0, batching.value === true && duration ? duration.label : batching.label, rank);
  } else if (duration) {
    sink.warn(`${duration.label}: ignored, as in Soketi, because webhooks.batching.enabled (SOKETI_WEBHOOKS_BATCHING) is not set`);
  }

  applyPeerAppStore(get, sink);

  // Redis: `adapter.driver: "redis"` is cluster mode, connected with database.redis.*
  const driver = get('adapter.driver');
  if (driver && driver.value !== 'local' && driver.value !== 'redis' && driver.value !== 'redis-cluster') {
    throw new ConfigError(`${driver.label}: "${String(driver.value)}" is not supported; ${NATS} (adapter.driver "redis", or REDIS_URL)`);
  }
  const redisEntries = [...Object.keys(REDIS_CONNECTION), 'keyPrefix'].map((k) => get(`database.redis.${k}`)).filter((e) => e !== undefined);
  const adapterPrefix = get('adapter.redis.prefix');
  const clusterMode = get('adapter.redis.clusterMode');
  const clusterNodes = get('database.redis.clusterNodes');
  const cluster = driver?.value === 'redis-cluster' || (driver?.value === 'redis' && clusterMode?.value === true);
  if (driver?.value !== 'redis' && driver?.value !== 'redis-cluster') {
    for (const e of [clusterMode, clusterNodes]) if (e && e.value !== false && !same(e.value, [])) redisEntries.push(e);
    for (const e of [...redisEntries, ...(adapterPrefix ? [adapterPrefix] : [])]) {
      sink.warn(`${e.label}: ignored; as in Soketi, Redis is used only with adapter.driver "redis" (SOKETI_ADAPTER_DRIVER=redis): this node runs on its own, in memory`);
    }
    return undefined;
  }
  // Soketi's defaults: 127.0.0.1:6379, database 0
  const options: Record<string, unknown> = { host: '127.0.0.1', port: 6379 };
  for (const e of redisEntries) {
    const k = e.path.slice('database.redis.'.length);
    if (k === 'keyPrefix') continue;
    if (e.value !== null && e.value !== '') options[k] = e.value;
  }
  if (!options.sentinels) {
    delete options.name; // ioredis reads `name` as the Sentinel group only
    delete options.sentinelPassword;
  }
  // one prefix for every key and channel here; Soketi's keyPrefix wins over its pub/sub prefix
  const keyPrefix = get('database.redis.keyPrefix');
  for (const e of [adapterPrefix, keyPrefix]) {
    if (e && typeof e.value === 'string' && e.value.replace(/:+$/, '') !== '') sink.set('redisPrefix', e.value.replace(/:+$/, ''), e.label, e.rank);
  }
  let nodes: string[] | undefined;
  if (cluster) {
    nodes = seedNodes(clusterNodes);
    if (!nodes.length) {
      throw new ConfigError(`${(clusterMode?.value === true ? clusterMode : driver).label}: Redis Cluster needs its seed nodes (SOKETI_DB_REDIS_CLUSTER_NODES, DATABASE_REDIS_CLUSTER_NODES or REDIS_CLUSTER_NODES: "host:port,host:port")`);
    }
    // The seeds name the nodes; username, password (and TLS) go to every one of them.
    delete options.host;
    delete options.port;
    delete options.db;
    redisEntries.push(...[clusterMode, clusterNodes].filter((e) => e !== undefined));
  } else if (clusterNodes && !same(clusterNodes.value, [])) {
    sink.warn(`${clusterNodes.label}: ignored; Redis Cluster is used only with adapter.redis.clusterMode true (SOKETI_ADAPTER_REDIS_CLUSTER_MODE) or ADAPTER_DRIVER=redis-cluster`);
  }
  return {
    options,
    ...(nodes ? { clusterNodes: nodes } : {}),
    labels: [driver.label, ...redisEntries.map((e) => e.label)],
    rank: Math.max(driver.rank, ...redisEntries.map((e) => e.rank)),
  };
}

/** Seed nodes as Soketi ([{host, port}] JSON) or Sockudo ("host:port,redis://host:port") write them, as "host:port" or URLs. */
function seedNodes(e: SoketiEntry | undefined): string[] {
  if (!e) return [];
  const list = Array.isArray(e.value) ? e.value : [e.value];
  return list.map((n) => {
    if (typeof n === 'string' && n.trim()) return n.trim();
    if (n && typeof n === 'object' && typeof (n as { host?: unknown }).host === 'string') {
      const { host, port } = n as { host: string; port?: unknown };
      return `${host}:${port ?? 6379}`;
    }
    throw new ConfigError(`${e.label}: a seed node must be "host:port" or {"host": ..., "port": ...}, got ${JSON.stringify(n)}`);
  });
}
