// Reads the config file (flag or CONFIG_FILE) and the environment once, validates, freezes.
import { readFileSync } from 'node:fs';
import { ConfigSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/** Soketi spells app fields in camelCase, snake_case or PascalCase (spec §11.2); we accept all three. */
function camelKey(key: string): string {
  const fromSnake = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return fromSnake.charAt(0).toLowerCase() + fromSnake.slice(1);
}

function normaliseApp(raw: unknown): unknown {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    // webhook objects keep Pusher/Soketi's own snake_case field names
    out[k === 'webhooks' ? k : camelKey(k)] = v;
  }
  // ids are strings on the wire; Soketi files often hold numbers
  for (const f of ['id', 'key', 'secret']) if (typeof out[f] === 'number') out[f] = String(out[f]);
  return out;
}

function bool(name: string, v: string | undefined): boolean | undefined {
  if (v === undefined || v === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new ConfigError(`${name}: expected true or false, got "${v}"`);
}

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new ConfigError(`${name}: expected an integer, got "${v}"`);
  return n;
}

function json(name: string, v: string | undefined): unknown {
  if (v === undefined || v === '') return undefined;
  try {
    return JSON.parse(v);
  } catch {
    throw new ConfigError(`${name}: not valid JSON`);
  }
}

function defined(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

export function configFilePath(argv: string[], env: Env): string | undefined {
  const i = argv.indexOf('--config');
  if (i >= 0) {
    const p = argv[i + 1];
    if (!p) throw new ConfigError('--config: missing file path');
    return p;
  }
  return env.CONFIG_FILE || undefined;
}

/**
 * A Soketi config file keeps its apps under `appManager.array.apps` (dotted key or nested objects)
 * next to many settings of its own. We take its apps and port, and report what we ignore.
 */
function fromSoketiFile(file: Record<string, unknown>, ignored: string[]): Record<string, unknown> | undefined {
  const nested = (file.appManager as { array?: { apps?: unknown } } | undefined)?.array?.apps;
  const apps = file['appManager.array.apps'] ?? nested;
  if (apps === undefined) return undefined;
  const out: Record<string, unknown> = { apps };
  if (file.port !== undefined) out.port = file.port;
  for (const k of Object.keys(file)) if (!['appManager.array.apps', 'appManager', 'port'].includes(k)) ignored.push(k);
  return out;
}

export interface LoadedConfig {
  config: Readonly<Config>;
  /** Settings of a Soketi file that have no meaning here and were skipped. */
  ignored: string[];
}

export function loadConfig(argv: string[], env: Env): Readonly<Config> {
  return loadConfigWithNotes(argv, env).config;
}

export function loadConfigWithNotes(argv: string[], env: Env): LoadedConfig {
  const path = configFilePath(argv, env);
  let file: Record<string, unknown> = {};
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
    }
    try {
      file = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`config file ${path}: not valid JSON (${(err as Error).message})`);
    }
    if (!file || typeof file !== 'object' || Array.isArray(file)) throw new ConfigError(`config file ${path}: must hold a JSON object`);
  }
  const ignored: string[] = [];
  file = fromSoketiFile(file, ignored) ?? file;

  const fromEnv = defined({
    port: int('PORT', env.PORT),
    host: env.HOST || undefined,
    logLevel: env.LOG_LEVEL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    nodeId: env.NODE_ID || undefined,
    nodeLeaseMs: int('NODE_LEASE_MS', env.NODE_LEASE_MS),
    activityTimeout: int('ACTIVITY_TIMEOUT', env.ACTIVITY_TIMEOUT),
    pongTimeout: int('PONG_TIMEOUT', env.PONG_TIMEOUT),
    allowUwsFallback: bool('ALLOW_UWS_FALLBACK', env.ALLOW_UWS_FALLBACK),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', env.SHUTDOWN_TIMEOUT_MS),
    cacheTtl: int('CACHE_TTL', env.CACHE_TTL),
    maxBackpressureBytes: int('MAX_BACKPRESSURE_BYTES', env.MAX_BACKPRESSURE_BYTES),
    tls: env.TLS_CERT_FILE || env.TLS_KEY_FILE ? defined({ certFile: env.TLS_CERT_FILE, keyFile: env.TLS_KEY_FILE, passphrase: env.TLS_PASSPHRASE }) : undefined,
  });

  const webhookEnv = defined({
    batchMs: int('WEBHOOK_BATCH_MS', env.WEBHOOK_BATCH_MS),
    timeoutMs: int('WEBHOOK_TIMEOUT_MS', env.WEBHOOK_TIMEOUT_MS),
    maxRetryMs: int('WEBHOOK_MAX_RETRY_MS', env.WEBHOOK_MAX_RETRY_MS),
    claimIdleMs: int('WEBHOOK_CLAIM_IDLE_MS', env.WEBHOOK_CLAIM_IDLE_MS),
  });
  if (Object.keys(webhookEnv).length) {
    fromEnv.webhooks = { ...((file.webhooks as object | undefined) ?? {}), ...webhookEnv };
  }

  let apps = Array.isArray(file.apps) ? file.apps.map(normaliseApp) : file.apps;
  if (apps === undefined) {
    // The development app: Soketi's default credentials, so Soketi client configs work unchanged.
    apps = [
      defined({
        id: env.APP_ID || 'app-id',
        key: env.APP_KEY || 'app-key',
        secret: env.APP_SECRET || 'app-secret',
        enableClientMessages: bool('APP_ENABLE_CLIENT_MESSAGES', env.APP_ENABLE_CLIENT_MESSAGES) ?? true,
        enableUserAuthentication: bool('APP_ENABLE_USER_AUTHENTICATION', env.APP_ENABLE_USER_AUTHENTICATION),
        userAuthenticationTimeout: int('APP_USER_AUTHENTICATION_TIMEOUT', env.APP_USER_AUTHENTICATION_TIMEOUT),
        enableSubscriptionCount: bool('APP_ENABLE_SUBSCRIPTION_COUNT', env.APP_ENABLE_SUBSCRIPTION_COUNT),
        maxConnections: int('APP_MAX_CONNECTIONS', env.APP_MAX_CONNECTIONS),
        allowedOrigins: env.APP_ALLOWED_ORIGINS ? env.APP_ALLOWED_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean) : undefined,
        webhooks: json('APP_WEBHOOKS', env.APP_WEBHOOKS),
      }),
    ];
  }

  const parsed = ConfigSchema.safeParse({ ...file, ...fromEnv, apps });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration${path ? ` in ${path}` : ''}:\n${lines.join('\n')}`);
  }
  const cfg = parsed.data;
  const seen = new Set<string>();
  for (const [i, app] of cfg.apps.entries()) {
    for (const k of [`id:${app.id}`, `key:${app.key}`]) {
      if (seen.has(k)) throw new ConfigError(`apps.${i}: duplicate app ${k.replace(':', ' ')}`);
      seen.add(k);
    }
  }
  return { config: deepFreeze(cfg), ignored };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
