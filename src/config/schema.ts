// Every configurable value, validated once at start (style.md: validate at the edges).
import { z } from 'zod';

export const webhookEventNames = [
  'channel_occupied',
  'channel_vacated',
  'member_added',
  'member_removed',
  'client_event',
  'cache_miss',
  'subscription_count',
] as const;

export const WebhookSchema = z
  .object({
    url: z.string().url(),
    event_types: z.array(z.enum(webhookEventNames)).min(1),
    headers: z.record(z.string(), z.string()).default({}),
    filter: z
      .object({
        channel_name_starts_with: z.string().optional(),
        channel_name_ends_with: z.string().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

/** Per-channel history for message recovery (docs/recovery.md). */
export const RecoverySchema = z
  .object({
    /** Events kept per channel. */
    historySize: z.number().int().min(1).max(10_000).default(100),
    /** Seconds an event is kept. */
    historyTtl: z.number().int().min(1).max(86_400).default(300),
    /** Overrides by channel-name prefix (the longest match wins); historySize 0 turns recovery off there. */
    channels: z
      .array(
        z
          .object({
            prefix: z.string().min(1),
            historySize: z.number().int().min(0).max(10_000).optional(),
            historyTtl: z.number().int().min(1).max(86_400).optional(),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

const limit = (def: number) => z.number().int().min(-1).default(def);
const positive = (def: number) => z.number().int().positive().default(def);

/**
 * The longest channel name or user id any app may allow: the REST router sizes its path parameters
 * from it once, so apps added or changed at run time need no new router.
 */
export const MAX_NAME_LENGTH = 1000;
const nameLength = (def: number) => z.number().int().positive().max(MAX_NAME_LENGTH).default(def);

/** Per-app settings. Defaults are hosted Pusher's numbers (spec §11.1). */
export const AppSchema = z
  .object({
    id: z.string().min(1),
    key: z.string().min(1),
    secret: z.string().min(1),
    enabled: z.boolean().default(true),
    enableClientMessages: z.boolean().default(false),
    enableUserAuthentication: z.boolean().default(false),
    userAuthenticationTimeout: positive(30_000),
    enableSubscriptionCount: z.boolean().default(false),
    /** -1 = unlimited */
    maxConnections: limit(-1),
    maxClientEventsPerSecond: limit(10),
    maxBackendEventsPerSecond: limit(-1),
    maxReadRequestsPerSecond: limit(-1),
    maxEventPayloadInKb: z.number().positive().default(10),
    maxChannelNameLength: nameLength(200),
    maxEventNameLength: positive(200),
    maxEventChannelsAtOnce: positive(100),
    maxEventBatchSize: positive(10),
    maxPresenceMembersPerChannel: positive(100),
    maxPresenceMemberSizeInKb: z.number().positive().default(1),
    maxUserIdLength: nameLength(128),
    /** Channels one connection may be subscribed to at once, presence included (not a Pusher or Soketi field). */
    maxChannelsPerConnection: positive(1000),
    /** Origins allowed to open sockets (exact match, or '*'); empty allows every origin. */
    allowedOrigins: z.array(z.string().min(1)).default([]),
    webhooks: z.array(WebhookSchema).default([]),
    /**
     * The 32-byte key (base64) the app's SDKs use for private-encrypted- channels. Set: the server
     * encrypts plain data triggered to those channels as the SDKs do (it then sees the plaintext).
     */
    encryptionMasterKeyBase64: z
      .string()
      .refine((v) => /^[A-Za-z0-9+/]+={0,2}$/.test(v) && Buffer.from(v, 'base64').length === 32, 'must be base64 of exactly 32 bytes')
      .optional(),
    /** Message recovery (docs/recovery.md): absent = off for the app. */
    recovery: RecoverySchema.optional(),
  })
  .strict();

/** A table or column name: letters, digits, _ and $ (a table may name its schema: `realtime.apps`). */
const sqlName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'must be a plain SQL name (letters, digits, _ and $)');
const sqlTable = z.string().regex(/^([A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$/, 'must be a plain SQL table name, optionally schema.table');

/** App fields a database column can hold (the rest, such as recovery, keep their defaults). */
export const storedAppFields = [
  'id', 'key', 'secret', 'enabled', 'enableClientMessages', 'enableUserAuthentication', 'maxConnections',
  'maxBackendEventsPerSecond', 'maxClientEventsPerSecond', 'maxReadRequestsPerSecond', 'maxPresenceMembersPerChannel',
  'maxPresenceMemberSizeInKb', 'maxChannelNameLength', 'maxEventChannelsAtOnce', 'maxEventNameLength',
  'maxEventPayloadInKb', 'maxEventBatchSize', 'webhooks', 'allowedOrigins',
] as const;
export type StoredAppField = (typeof storedAppFields)[number];

/**
 * Apps read from a database table (Soketi's or Sockudo's layout, or one mapped with `columns`)
 * instead of the config's list; see README.md, "Apps in a database".
 */
export const AppStoreSchema = z
  .object({
    driver: z.enum(['postgres', 'mysql']),
    host: z.string().min(1).default('127.0.0.1'),
    /** Unset: 5432 for postgres, 3306 for mysql. */
    port: z.number().int().min(1).max(65535).optional(),
    user: z.string().optional(),
    password: z.string().optional(),
    database: z.string().min(1),
    /** TLS to the database: true, or the driver's TLS options (ca, cert, key, rejectUnauthorized, servername), passed through. */
    ssl: z.union([z.boolean(), z.record(z.string(), z.unknown())]).optional(),
    /** Connections the node keeps open to the database at most. */
    poolSize: z.number().int().min(1).max(100).default(10),
    table: sqlTable.default('apps'),
    /** Column names by app field, where the table spells one differently from Soketi's and Sockudo's names. */
    columns: z.partialRecord(z.enum(storedAppFields), sqlName).default({}),
    /** Where a rotated secret's previous value waits out its overlap (created if missing). */
    secretsTable: sqlTable.default('ripple_app_secrets'),
    /** Milliseconds between two checks of the table for changes (one aggregate query). */
    refreshMs: z.number().int().min(100).max(3_600_000).default(1000),
    /** Values for every app's empty (NULL) columns; unset fields take the server's defaults. Checked against the app schema at start. */
    defaults: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();
export type AppStoreConfig = z.infer<typeof AppStoreSchema>;

export const ConfigSchema = z
  .object({
    port: z.number().int().min(0).max(65535).default(6001),
    /** The loader picks 127.0.0.1 instead when nothing sets it and the built-in development app is in use. */
    host: z.string().default('0.0.0.0'),
    /**
     * Share the port with other processes (SO_REUSEPORT), for one process per core in cluster mode.
     * Unset: shared in cluster mode, owned exclusively by a single-node server (a second node on the
     * port fails to start instead of silently taking part of the clients). The loader rejects true
     * without cluster mode. Read by node.ts's listen call.
     */
    reusePort: z.boolean().optional(),
    /**
     * Node processes on this machine, one per core: a primary process starts this many nodes sharing
     * the port (SO_REUSEPORT), restarts one that dies, and answers /metrics with all of their figures
     * (on the metrics port, or through any of them on the main port). 1: this process is the node.
     * More than one needs cluster mode (the nodes share their state through Redis).
     */
    workers: z.number().int().min(1).max(256).default(1),
    /**
     * Serve GET /metrics on this separate port instead of the main one (Soketi's metrics server,
     * SOKETI_METRICS_SERVER_PORT). Unset: the main port serves it.
     */
    metricsPort: z.number().int().min(0).max(65535).optional(),
    /** Listen address of the metrics port; unset: the same as `host`. */
    metricsHost: z.string().min(1).optional(),
    /**
     * The operator's credential (sent as `Authorization: Bearer <token>`) for what only an operator
     * may do: managing apps and watching every app's debug log. Unset: those paths are off.
     */
    operatorToken: z.string().min(16, 'must be at least 16 characters').optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    redisUrl: z.string().optional(),
    /** ioredis options (e.g. Sentinel: sentinels, name) merged over redisUrl. */
    redisOptions: z.record(z.string(), z.unknown()).optional(),
    /**
     * Redis Cluster: seed nodes ("host:port" or redis:// / rediss:// URLs); the rest of the cluster is
     * found from them. Set, it is cluster mode on Redis Cluster (redisUrl is then not used);
     * redisOptions (username, password, tls, ...) go to every cluster node. See docs/redis-cluster.md.
     */
    redisClusterNodes: z
      .array(z.string().regex(/^(rediss?:\/\/\S+|(\[[0-9a-fA-F:]+\]|[^\s:[\]]+)(:\d{1,5})?)$/, 'must be host:port or a redis:// or rediss:// URL'))
      .min(1)
      .optional(),
    redisPrefix: z.string().default('ripple'),
    nodeId: z.string().min(1).optional(),
    /**
     * Milliseconds a node's liveness lease lasts in Redis. A node that stops renewing it (crash,
     * SIGKILL) has its subscriptions and presence members removed by a survivor within about this time.
     */
    nodeLeaseMs: z.number().int().min(500).max(60_000).default(10_000),
    /** Seconds; sent as activity_timeout (spec §1.6). */
    activityTimeout: positive(120),
    /** Seconds to wait for any frame after a server ping before closing 4201. */
    pongTimeout: positive(30),
    allowUwsFallback: z.boolean().default(false),
    shutdownTimeoutMs: positive(10_000),
    /** Largest WebSocket frame accepted before the socket is closed (bytes). */
    maxFrameBytes: positive(2 * 1024 * 1024),
    /** Seconds a cache channel keeps its last event (spec §7; hosted Pusher: up to 30 minutes). */
    cacheTtl: positive(1800),
    /**
     * Bytes a socket may have waiting to be sent before it counts as a slow consumer: it is then
     * skipped by broadcasts and closed with 4100, instead of growing the server's memory.
     */
    maxBackpressureBytes: positive(4 * 1024 * 1024),
    /**
     * Milliseconds an HTTP-fallback session (pusher-js xhr_streaming / xhr_polling) is kept while no
     * receive request is open: pusher-js replaces its stream and polls again within a round trip, so
     * a longer gap means the client is gone and the session closes like a dropped socket.
     */
    httpSessionGraceMs: z.number().int().min(100).max(60_000).default(5000),
    /**
     * Milliseconds of quiet after which an HTTP-fallback stream gets a heartbeat and a waiting poll is
     * answered with one (SockJS's 25 s), so that proxies with idle timeouts keep the request open.
     */
    httpHeartbeatMs: z.number().int().min(100).max(120_000).default(25_000),
    /** TLS on the gateway and API port: PEM certificate and key paths. */
    tls: z.object({ certFile: z.string().min(1), keyFile: z.string().min(1), passphrase: z.string().optional() }).strict().optional(),
    webhooks: z
      .object({
        /** Events of one app and endpoint collected this long go out in one request. */
        batchMs: z.number().int().min(0).default(50),
        /** A receiver that has not answered in this time counts as failed (then retried). */
        timeoutMs: positive(5000),
        /** Retries stop this long after the first attempt; the batch then goes to the dead-letter list. */
        maxRetryMs: positive(300_000),
        /**
         * Deprecated name: a webhook queue now moves to another node when its owner's node lease runs
         * out, so this is read as nodeLeaseMs when that is not set (and otherwise ignored).
         */
        claimIdleMs: z.number().int().min(500).max(60_000).optional(),
      })
      .strict()
      .prefault({}),
    /**
     * Cluster mode: while Redis cannot take cross-node events (it is unreachable, or just came back and
     * the other nodes are still resubscribing), a node keeps them in order in this bounded buffer and
     * publishes them when Redis returns. Full (or its oldest event older than maxAgeMs), new REST
     * triggers get HTTP 503 and client events pusher:error 4301, so nothing accepted is lost. The
     * defaults cover a Redis restart of a few seconds under heavy traffic.
     */
    backboneBuffer: z
      .object({
        /** Events (one per channel of a trigger) waiting at most. */
        events: positive(10_000),
        /** UTF-8 bytes of their frames at most. */
        bytes: positive(16 * 1024 * 1024),
        /** Milliseconds the oldest waiting event may be old before new ones are refused. */
        maxAgeMs: positive(30_000),
      })
      .strict()
      .prefault({}),
    /** Largest REST request body accepted (bytes). */
    maxRequestBytes: positive(1024 * 1024),
    /**
     * Serve everything under this path (Soketi's pathPrefix): WebSockets at `<prefix>/app/<key>`, the
     * HTTP fallback at `<prefix>/pusher/...`, the REST API at `<prefix>/apps/...`, and the operator
     * paths. Written with or without the leading or a trailing slash; empty: the root.
     */
    pathPrefix: z
      .string()
      .default('')
      .transform((p) => p.trim().replace(/^\/*/, '/').replace(/\/+$/, ''))
      // Letters, digits and -._~ only: the prefix becomes part of uWS route patterns, where : and * mean something.
      .refine((p) => p === '' || /^(\/[A-Za-z0-9._~-]+)+$/.test(p), 'must be a URL path such as /ws (segments of letters, digits and -._~)'),
    /** Apps from a database instead of `apps` (absent: the config's own list). */
    appStore: AppStoreSchema.optional(),
    /** The config's apps; at least one unless `appStore` names a database. */
    apps: z.array(AppSchema).default([]),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type AppConfig = z.infer<typeof AppSchema>;
export type WebhookConfig = z.infer<typeof WebhookSchema>;
