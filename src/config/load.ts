// Reads the configuration once at start: the command line, the environment (ripple's names and
// Soketi's SOKETI_* ones) and a JSON file (ripple's shape or Soketi's), validates it and freezes it.
//
// Precedence, highest first: command-line flags; ripple's environment names; SOKETI_* variables;
// the file's ripple keys; the file's Soketi keys; defaults. (So the environment wins over the file,
// and ripple's own name wins where both spell the same setting.) Apps come from the file when it
// lists any; otherwise the environment describes one app, the development app.
import { readFileSync } from 'node:fs';
import { ConfigSchema, type Config } from './schema.js';
import { ConfigError } from './errors.js';
import { parseCliArgs, type CliArgs } from './cli-args.js';
import { APP_ENV, CONFIG_FILE_ENV, SERVER_ENV, appFieldKind, appFields, closest, misspelledEnv, rippleEnvNames, schemaKind } from './env-names.js';
import {
  SOKETI_APPS_PATH,
  SOKETI_APP_ALIASES,
  SOKETI_ENV,
  appFieldOf,
  applySoketi,
  soketiEnvNames,
  soketiKind,
  soketiLeaves,
  soketiPaths,
  type SoketiEntry,
} from './soketi.js';
import { coerce } from './values.js';

export { ConfigError } from './errors.js';

type Env = Record<string, string | undefined>;

export interface LoadedConfig {
  config: Readonly<Config>;
  /** Logged at warn at start: settings not supported or ignored, misspelt names, exposed development credentials. */
  warnings: string[];
  /** Logged at info at start. */
  notices: string[];
  /** The built-in development app's public secret is in use (printed at start; loopback unless a host is set). */
  developmentSecret: boolean;
}

/** The built-in development app: Soketi's default credentials, so Soketi client configs work unchanged. */
const DEV_APP = { id: 'app-id', key: 'app-key', secret: 'app-secret' } as const;

const RANK = { soketiFile: 0, file: 1, soketiEnv: 2, env: 3, cli: 4 } as const;

/** Values by dotted path, each kept from the highest-ranked source that set it, with the name it was set by. */
class Layered {
  readonly values: Record<string, unknown> = {};
  private readonly ranks = new Map<string, number>();
  constructor(private readonly origins: Map<string, string>) {}

  set(path: string, value: unknown, label: string, rank: number): void {
    if (value === undefined) return;
    const prev = this.ranks.get(path);
    if (prev !== undefined && prev > rank) return;
    this.ranks.set(path, rank);
    this.origins.set(path, label);
    const parts = path.split('.');
    let obj = this.values;
    for (const p of parts.slice(0, -1)) {
      const next = obj[p];
      obj = obj[p] = next && typeof next === 'object' && !Array.isArray(next) ? { ...next } : {};
    }
    obj[parts.at(-1)!] = value;
  }
  rank(path: string): number | undefined {
    return this.ranks.get(path);
  }
  has(path: string): boolean {
    return this.ranks.has(path);
  }
  delete(path: string): void {
    this.ranks.delete(path);
    delete this.values[path];
  }
}

const RIPPLE_KEYS = new Set(Object.keys(ConfigSchema.shape));

/** Soketi spells app fields in camelCase, snake_case or PascalCase (spec §11.2), and some differently. */
function appKey(key: string): string {
  const alias = SOKETI_APP_ALIASES[key];
  if (alias) return alias;
  const fromSnake = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return fromSnake.charAt(0).toLowerCase() + fromSnake.slice(1);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function isLoopback(host: string): boolean {
  return /^127\./.test(host) || host === '::1' || host === 'localhost' || host === '[::1]';
}

function readFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path}: not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(file)) throw new ConfigError(`config file ${path}: must hold a JSON object`);
  return file;
}

export function loadConfig(argv: readonly string[] | CliArgs, env: Env): Readonly<Config> {
  return loadConfigWithNotes(argv, env).config;
}

export function loadConfigWithNotes(argv: readonly string[] | CliArgs, env: Env): LoadedConfig {
  const cli = Array.isArray(argv) ? parseCliArgs(argv) : (argv as CliArgs);
  const warnings: string[] = [];
  const notices: string[] = [];
  /** Internal config path (`apps.0.maxConnections`) → the name the user wrote it by. */
  const origins = new Map<string, string>();
  const server = new Layered(origins);
  const appDefaultOrigins = new Map<string, string>();
  const appDefaults = new Layered(appDefaultOrigins);
  const devOrigins = new Map<string, string>();
  const devApp = new Layered(devOrigins);
  const soketi: SoketiEntry[] = [];

  // --- the file -----------------------------------------------------------------------------------
  const path = cli.configFile ?? (env[CONFIG_FILE_ENV] || undefined);
  const file = path ? readFile(path) : {};
  let fileApps: { list: unknown; label: string } | undefined;
  let soketiApps: { list: unknown; label: string } | undefined;
  const appPatches: { index: number; key: string; value: unknown; label: string }[] = [];
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(file)) {
    // ripple's own keys; Soketi's `webhooks: {batching}` shares a name with ours
    if (RIPPLE_KEYS.has(k) && !(k === 'webhooks' && isObject(v) && 'batching' in v)) {
      if (k === 'apps') fileApps = { list: v, label: 'apps' };
      else server.set(k, coerce(k, schemaKind(ConfigSchema.shape, k), v), k, RANK.file);
      continue;
    }
    const found = soketiLeaves(k, v);
    unknown.push(...found.unknown);
    for (const [p, value] of found.leaves) {
      const field = appFieldOf(p);
      if (p === SOKETI_APPS_PATH) soketiApps = { list: value, label: p };
      else if (field) appPatches.push({ index: field.index, key: field.field, value, label: p });
      else soketi.push({ path: p, value: coerce(p, soketiKind(p), value), label: p, rank: RANK.soketiFile });
    }
  }
  if (unknown.length) {
    const lines = unknown.map((u) => {
      const near = closest(u, [...RIPPLE_KEYS, ...soketiPathsFor(u)], 3);
      return `  ${u}: unknown setting${near ? ` (did you mean ${near}?)` : ''}`;
    });
    throw new ConfigError(`invalid configuration in ${path}:\n${lines.join('\n')}`);
  }
  if (fileApps && soketiApps) warnings.push(`${soketiApps.label}: ignored; the file's "apps" list is used`);
  const apps0 = fileApps ?? soketiApps;

  // --- Soketi's environment ---------------------------------------------------------------------
  for (const [name, p] of Object.entries(SOKETI_ENV)) {
    const label = `SOKETI_${name}`;
    const raw = env[label];
    if (raw === undefined || raw === '') continue;
    const field = appFieldOf(p);
    if (field) devApp.set(field.field, coerce(label, appFieldKind(field.field), raw), label, RANK.soketiEnv);
    else soketi.push({ path: p, value: coerce(label, soketiKind(p) ?? 'any', raw), label, rank: RANK.soketiEnv });
  }

  // --- ripple's environment and the command line --------------------------------------------------
  for (const [name, { path: p, kind }] of Object.entries(SERVER_ENV)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') server.set(p, coerce(name, kind, raw), name, RANK.env);
  }
  for (const [name, field] of Object.entries(APP_ENV)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') devApp.set(field, coerce(name, appFieldKind(field), raw), name, RANK.env);
  }
  if (cli.port !== undefined) server.set('port', coerce('--port', 'int', cli.port), '--port', RANK.cli);
  if (cli.host !== undefined) server.set('host', cli.host, '--host', RANK.cli);
  if (cli.debug) server.set('logLevel', 'debug', '--debug', RANK.cli);

  // --- Soketi's settings, mapped ------------------------------------------------------------------
  const soketiRedis = applySoketi(soketi, {
    set: (p, v, label, rank) => server.set(p, v, label, rank),
    appDefault: (f, v, label, rank) => appDefaults.set(f, v, label, rank),
    warn: (m) => warnings.push(m),
  });
  if (soketiRedis) {
    const rippleRank = Math.max(server.rank('redisUrl') ?? -1, server.rank('redisOptions') ?? -1);
    const rippleLabels = ['redisUrl', 'redisOptions'].filter((k) => server.has(k)).map((k) => origins.get(k)!);
    if (soketiRedis.rank > rippleRank) {
      if (rippleLabels.length) warnings.push(`${rippleLabels.join(', ')}: ignored; ${soketiRedis.labels.join(', ')} set the Redis connection`);
      server.delete('redisUrl');
      server.set('redisOptions', soketiRedis.options, soketiRedis.labels[0], RANK.cli + 1);
    } else {
      warnings.push(`${soketiRedis.labels.join(', ')}: ignored; ${rippleLabels.join(', ')} sets the Redis connection`);
    }
  }

  // --- apps ---------------------------------------------------------------------------------------
  const appFromFile = (raw: unknown, i: number, listLabel: string): unknown => {
    if (!isObject(raw)) return raw;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) patchApp(out, i, k, v, `${listLabel}.${i}.${k}`);
    return out;
  };
  const patchApp = (app: Record<string, unknown>, i: number, k: string, v: unknown, label: string) => {
    // Soketi reads an empty or null field as "use the default"
    if (v === null || v === '') return;
    if (k === 'host') {
      warnings.push(`${label}: ignored; an app has no host of its own here, every app is served on every address the node listens on`);
      return;
    }
    const f = appKey(k);
    app[f] = coerce(label, appFieldKind(f), v);
    origins.set(`apps.${i}.${f}`, label);
  };

  let apps: unknown;
  let developmentSecret = false;
  if (apps0) {
    apps = Array.isArray(apps0.list) ? apps0.list.map((a, i) => appFromFile(a, i, apps0.label)) : apps0.list;
    if (!Array.isArray(apps0.list)) origins.set('apps', apps0.label);
    for (const p of appPatches) {
      const target = Array.isArray(apps) ? apps[p.index] : undefined;
      if (!isObject(target)) throw new ConfigError(`${p.label}: there is no app ${p.index} in ${apps0.label}`);
      patchApp(target, p.index, p.key, p.value, p.label);
    }
    for (const label of devOrigins.values()) warnings.push(`${label}: ignored; the apps come from the config file (${apps0.label})`);
  } else {
    for (const p of appPatches) {
      if (p.index !== 0) throw new ConfigError(`${p.label}: there is no app ${p.index} (the file lists no apps)`);
      // the same rules as for a listed app (empty means the default, a host is ignored)
      const patch: Record<string, unknown> = {};
      patchApp(patch, 0, p.key, p.value, p.label);
      for (const [f, v] of Object.entries(patch)) devApp.set(f, v, p.label, RANK.soketiFile);
    }
    const app: Record<string, unknown> = { ...DEV_APP, enableClientMessages: true, ...devApp.values };
    apps = [app];
    for (const [f, label] of devOrigins) origins.set(`apps.0.${f}`, label);
    developmentSecret = !devApp.has('secret');
  }
  if (Array.isArray(apps)) {
    for (const [i, app] of apps.entries()) {
      if (!isObject(app)) continue;
      for (const [f, v] of Object.entries(appDefaults.values)) {
        if (app[f] !== undefined) continue;
        app[f] = v;
        origins.set(`apps.${i}.${f}`, appDefaultOrigins.get(f)!);
      }
    }
  }

  // --- the listen address -------------------------------------------------------------------------
  if (developmentSecret) {
    const app = (apps as Record<string, unknown>[])[0];
    const why = devApp.has('id') || devApp.has('key')
      ? `no app secret is set (APP_SECRET, SOKETI_DEFAULT_APP_SECRET): app ${String(app.id)} uses the public development secret "${DEV_APP.secret}"`
      : `no app is configured: serving the development app (app id ${DEV_APP.id}, key ${DEV_APP.key}, public secret "${DEV_APP.secret}")`;
    if (!server.has('host')) {
      server.set('host', '127.0.0.1', 'host', -1);
      notices.push(`${why} on 127.0.0.1 only; configure an app for real use, or set HOST (or --host) to listen on other addresses`);
    } else if (!isLoopback(String(server.values.host))) {
      warnings.push(
        `${why} on ${String(server.values.host)} (${origins.get('host')}): anyone who can reach this port can publish events ` +
          'and sign channel subscriptions; configure an app (APP_ID, APP_KEY, APP_SECRET, or a config file) for real use',
      );
    }
  }

  // --- validate -----------------------------------------------------------------------------------
  const parsed = ConfigSchema.safeParse({ ...server.values, apps });
  if (!parsed.success) {
    const lines = parsed.error.issues.flatMap((i) => {
      const at = i.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (i.code === 'unrecognized_keys') {
        return i.keys.map((k) => {
          const near = at[0] === 'apps' && at.length === 2 ? closest(k, appFields, 3) : undefined;
          return `  ${labelFor(origins, [...at, k])}: unknown setting${near ? ` (did you mean ${near}?)` : ''}`;
        });
      }
      return [`  ${labelFor(origins, at)}: ${i.message}`];
    });
    throw new ConfigError(`invalid configuration${path ? ` in ${path}` : ''}:\n${lines.join('\n')}`);
  }
  const cfg = parsed.data;
  if (cfg.webhooks.claimIdleMs !== undefined) {
    // The old name of a lease length; one node lease now does that job (and moves webhook queues).
    const old = origins.get('webhooks.claimIdleMs') ?? origins.get('webhooks') ?? 'webhooks.claimIdleMs';
    if (server.has('nodeLeaseMs')) {
      warnings.push(`${old}: ignored; ${origins.get('nodeLeaseMs')} sets the node lease, which also moves webhook queues`);
    } else {
      cfg.nodeLeaseMs = cfg.webhooks.claimIdleMs;
      notices.push(`${old}: read as NODE_LEASE_MS (${cfg.nodeLeaseMs} ms): webhook queues move with the node lease now`);
    }
    delete cfg.webhooks.claimIdleMs;
  }
  const seen = new Set<string>();
  for (const [i, app] of cfg.apps.entries()) {
    for (const k of [`id:${app.id}`, `key:${app.key}`]) {
      if (seen.has(k)) throw new ConfigError(`${labelFor(origins, ['apps', i])}: duplicate app ${k.replace(':', ' ')}`);
      seen.add(k);
    }
  }
  const clustered = !!(cfg.redisUrl || cfg.redisOptions);
  if (cfg.reusePort && !clustered) {
    throw new ConfigError(
      `${origins.get('reusePort')}: sharing the port needs cluster mode (REDIS_URL, or SOKETI_ADAPTER_DRIVER=redis); ` +
        'single-node servers sharing a port would each serve part of the clients, with separate state',
    );
  }

  warnings.unshift(...misspelledEnv(env, new Set([...rippleEnvNames, ...soketiEnvNames])));
  return { config: deepFreeze(cfg), warnings, notices, developmentSecret };
}

/** Soketi paths to suggest for an unknown one: those sharing its first segment, or top-level names. */
function soketiPathsFor(unknownPath: string): string[] {
  const first = unknownPath.split('.')[0];
  const all = soketiPaths.filter((p) => !p.startsWith(`${SOKETI_APPS_PATH}.`));
  const same = all.filter((p) => p.split('.')[0] === first);
  return same.length ? same : [...new Set(all.map((p) => p.split('.')[0]))];
}

/** The user's name for an internal path: the longest recorded prefix, then the rest as is. */
function labelFor(origins: ReadonlyMap<string, string>, path: readonly (string | number)[]): string {
  for (let n = path.length; n > 0; n--) {
    const label = origins.get(path.slice(0, n).join('.'));
    if (label) return [label, ...path.slice(n)].join('.');
  }
  return path.join('.') || '(root)';
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
