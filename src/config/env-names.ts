// The environment variables ripple reads under its own names, and the "did you mean" check for a
// variable that looks like one of ours (or one of Soketi's) but is not.
import { AppSchema } from './schema.js';

/** How a setting's text (env value, or a string in a file) is read. */
export type Kind = 'int' | 'num' | 'bool' | 'string' | 'list' | 'json';

/** Server settings: environment name → dotted config path and type. */
export const SERVER_ENV: Readonly<Record<string, { path: string; kind: Kind }>> = {
  PORT: { path: 'port', kind: 'int' },
  HOST: { path: 'host', kind: 'string' },
  LOG_LEVEL: { path: 'logLevel', kind: 'string' },
  REDIS_URL: { path: 'redisUrl', kind: 'string' },
  REDIS_PREFIX: { path: 'redisPrefix', kind: 'string' },
  REDIS_CLUSTER_NODES: { path: 'redisClusterNodes', kind: 'list' },
  NODE_ID: { path: 'nodeId', kind: 'string' },
  NODE_LEASE_MS: { path: 'nodeLeaseMs', kind: 'int' },
  ACTIVITY_TIMEOUT: { path: 'activityTimeout', kind: 'int' },
  PONG_TIMEOUT: { path: 'pongTimeout', kind: 'int' },
  ALLOW_UWS_FALLBACK: { path: 'allowUwsFallback', kind: 'bool' },
  SHUTDOWN_TIMEOUT_MS: { path: 'shutdownTimeoutMs', kind: 'int' },
  CACHE_TTL: { path: 'cacheTtl', kind: 'int' },
  MAX_BACKPRESSURE_BYTES: { path: 'maxBackpressureBytes', kind: 'int' },
  HTTP_SESSION_GRACE_MS: { path: 'httpSessionGraceMs', kind: 'int' },
  HTTP_HEARTBEAT_MS: { path: 'httpHeartbeatMs', kind: 'int' },
  REUSE_PORT: { path: 'reusePort', kind: 'bool' },
  WORKERS: { path: 'workers', kind: 'int' },
  PATH_PREFIX: { path: 'pathPrefix', kind: 'string' },
  METRICS_PORT: { path: 'metricsPort', kind: 'int' },
  METRICS_HOST: { path: 'metricsHost', kind: 'string' },
  OPERATOR_TOKEN: { path: 'operatorToken', kind: 'string' },
  TLS_CERT_FILE: { path: 'tls.certFile', kind: 'string' },
  TLS_KEY_FILE: { path: 'tls.keyFile', kind: 'string' },
  TLS_PASSPHRASE: { path: 'tls.passphrase', kind: 'string' },
  WEBHOOK_BATCH_MS: { path: 'webhooks.batchMs', kind: 'int' },
  WEBHOOK_TIMEOUT_MS: { path: 'webhooks.timeoutMs', kind: 'int' },
  WEBHOOK_MAX_RETRY_MS: { path: 'webhooks.maxRetryMs', kind: 'int' },
  WEBHOOK_CLAIM_IDLE_MS: { path: 'webhooks.claimIdleMs', kind: 'int' },
  BACKBONE_BUFFER_EVENTS: { path: 'backboneBuffer.events', kind: 'int' },
  BACKBONE_BUFFER_BYTES: { path: 'backboneBuffer.bytes', kind: 'int' },
  BACKBONE_BUFFER_MAX_AGE_MS: { path: 'backboneBuffer.maxAgeMs', kind: 'int' },
  APP_STORE_DRIVER: { path: 'appStore.driver', kind: 'string' },
  APP_STORE_HOST: { path: 'appStore.host', kind: 'string' },
  APP_STORE_PORT: { path: 'appStore.port', kind: 'int' },
  APP_STORE_USER: { path: 'appStore.user', kind: 'string' },
  APP_STORE_PASSWORD: { path: 'appStore.password', kind: 'string' },
  APP_STORE_DATABASE: { path: 'appStore.database', kind: 'string' },
  APP_STORE_SSL: { path: 'appStore.ssl', kind: 'json' },
  APP_STORE_POOL_SIZE: { path: 'appStore.poolSize', kind: 'int' },
  APP_STORE_TABLE: { path: 'appStore.table', kind: 'string' },
  APP_STORE_SECRETS_TABLE: { path: 'appStore.secretsTable', kind: 'string' },
  APP_STORE_REFRESH_MS: { path: 'appStore.refreshMs', kind: 'int' },
};

export const CONFIG_FILE_ENV = 'CONFIG_FILE';

/** maxEventPayloadInKb → MAX_EVENT_PAYLOAD_IN_KB */
export function upperSnake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

export const appFields: readonly string[] = Object.keys(AppSchema.shape);

/** How a field of a zod object schema is read from text: its scalar type, or undefined for objects and arrays. */
export function schemaKind(shape: Record<string, unknown>, field: string): Kind | undefined {
  let t = shape[field] as { def: { type: string; innerType?: unknown } } | undefined;
  if (!t) return undefined;
  while (t.def.type === 'default' || t.def.type === 'optional') t = t.def.innerType as typeof t;
  if (t.def.type === 'number') return (t as unknown as { isInt: boolean }).isInt ? 'int' : 'num';
  if (t.def.type === 'boolean') return 'bool';
  if (t.def.type === 'string' || t.def.type === 'enum') return 'string';
  return undefined;
}

/** How a per-app field is read from text. */
export function appFieldKind(field: string): Kind | undefined {
  if (field === 'webhooks' || field === 'recovery') return 'json';
  if (field === 'allowedOrigins') return 'list';
  return schemaKind(AppSchema.shape, field);
}

/** The development app's fields: APP_ + the field in upper snake case (APP_ID, APP_MAX_CONNECTIONS, ...). */
export const APP_ENV: Readonly<Record<string, string>> = Object.fromEntries(appFields.map((f) => [`APP_${upperSnake(f)}`, f]));

/** Every environment name ripple reads under its own spelling. */
export const rippleEnvNames: readonly string[] = [...Object.keys(SERVER_ENV), CONFIG_FILE_ENV, ...Object.keys(APP_ENV)];

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The candidate nearest to `name` within `max` edits (ties: the first listed). */
export function closest(name: string, candidates: Iterable<string>, max: number): string | undefined {
  let best: string | undefined;
  let bestD = max + 1;
  for (const c of candidates) {
    const dist = editDistance(name, c);
    if (dist < bestD) {
      best = c;
      bestD = dist;
    }
  }
  return best;
}

// Prefixes other software commonly uses for its own variables next to ours (NODE_ENV, NODE_OPTIONS,
// a Kubernetes NODE_IP): a variable is not taken for a misspelling of ours just for sharing them.
const NOT_OURS_PREFIXES = new Set(['NODE_']);

/**
 * Warnings for environment variables that look like a setting ripple reads but are not one:
 * "APP_SECERT is not a setting ripple reads; did you mean APP_SECRET?". Names that share one of our
 * prefixes (APP_, REDIS_, SOKETI_, ...) may be 1 edit away (2 for names of 12 characters or more);
 * other names only when they are 8 characters or longer and 1 edit away (SOCKETI_PORT), so unrelated
 * variables such as PATH or HOME never warn. A SOKETI_ variable with no near match is reported as
 * unknown.
 */
export function misspelledEnv(env: Record<string, string | undefined>, known: ReadonlySet<string>): string[] {
  const prefixes = new Set<string>();
  for (const k of known) {
    const i = k.indexOf('_');
    if (i > 0 && !NOT_OURS_PREFIXES.has(k.slice(0, i + 1))) prefixes.add(k.slice(0, i + 1));
  }
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (known.has(name) || !/^[A-Z][A-Z0-9_]*$/.test(name)) continue;
    const prefix = [...prefixes].find((p) => name.startsWith(p));
    // without a shared prefix only a long name one edit away counts (SOKETY_PORT, SOCKETI_PORT)
    const max = prefix ? (name.length >= 12 ? 2 : 1) : name.length >= 8 ? 1 : 0;
    const near = max > 0 ? closest(name, known, max) : undefined;
    if (near) out.push(`${name} is not a setting ripple reads; did you mean ${near}?`);
    else if (prefix === 'SOKETI_') out.push(`${name} is not a Soketi setting ripple knows; it is ignored`);
  }
  return out;
}
