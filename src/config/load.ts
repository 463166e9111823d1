// Reads the configuration once at start: the command line, the environment (ripple's names and
// Soketi's SOKETI_* ones) and a JSON file (ripple's shape or Soketi's), validates it and freezes it.
//
// Precedence, highest first: command-line flags; ripple's environment names; SOKETI_* variables;
// the file's ripple keys; the file's Soketi keys; defaults. (So the environment wins over the file,
// and ripple's own name wins where both spell the same setting.) Apps come from the file when it
// lists any; otherwise the environment describes one app, the development app.
import { AppSchema, ConfigSchema, type Config } from './schema.js';
import { ConfigError } from './errors.js';
import { parseCliArgs, type CliArgs } from './cli-args.js';
import { CONFIG_FILE_ENV, appFields, closest, misspelledEnv, rippleEnvNames } from './env-names.js';
import { applySoketi, soketiEnvNames } from './soketi.js';
import { SOCKUDO_ENV } from './peer-app-store.js';
import { DEV_APP, assembleApps } from './app-list.js';
import { readCommandLine, readRippleEnv, readSockudoEnv, readSoketiEnv, withDotEnv, type Env } from './env-source.js';
import { readConfigFile, type FileApps } from './file-source.js';
import { RANK, gathered, isObject, type Gathered } from './gathered.js';

export { ConfigError } from './errors.js';

export interface LoadedConfig {
  config: Readonly<Config>;
  /** Logged at warn at start: settings not supported or ignored, misspelt names, exposed development credentials. */
  warnings: string[];
  /** Logged at info at start. */
  notices: string[];
  /** The built-in development app's public secret is in use (printed at start; loopback unless a host is set). */
  developmentSecret: boolean;
}

export interface LoadOptions {
  /** Where a `.env` file with SOKETI_* lines is looked for (the working directory, as Soketi does); none when unset. */
  dotEnvDir?: string;
}

export function loadConfig(argv: readonly string[] | CliArgs, env: Env, options: LoadOptions = {}): Readonly<Config> {
  return loadConfigWithNotes(argv, env, options).config;
}

export function loadConfigWithNotes(argv: readonly string[] | CliArgs, processEnv: Env, options: LoadOptions = {}): LoadedConfig {
  const cli = Array.isArray(argv) ? parseCliArgs(argv) : (argv as CliArgs);
  const g = gathered();
  const env = withDotEnv(options.dotEnvDir, processEnv, g);
  const path = cli.configFile ?? (env[CONFIG_FILE_ENV] || undefined);
  const fileApps = readConfigFile(path, g);
  readSoketiEnv(env, g);
  readSockudoEnv(env, g);
  readRippleEnv(env, g);
  readCommandLine(cli, g);
  mapSoketiSettings(g);
  const fromDatabase = appsFromDatabase(fileApps, g);
  const { apps, developmentSecret } = fromDatabase ? { apps: [], developmentSecret: false } : assembleApps(fileApps, g);
  if (developmentSecret) chooseDevelopmentHost((apps as Record<string, unknown>[])[0], g);
  const cfg = validate({ ...g.server.values, apps }, path, g);
  if (!fromDatabase) g.notices.push(clientEventsNotice(cfg.apps));
  g.warnings.unshift(...misspelledEnv(env, new Set([...rippleEnvNames, ...soketiEnvNames, ...Object.keys(SOCKUDO_ENV)])));
  return { config: deepFreeze(cfg), warnings: g.warnings, notices: g.notices, developmentSecret };
}

/** Soketi's settings, mapped once every source is read; its Redis connection is weighed against ripple's own. */
function mapSoketiSettings(g: Gathered): void {
  const { server, warnings } = g;
  const soketiRedis = applySoketi(g.soketi, {
    set: (p, v, label, rank) => server.set(p, v, label, rank),
    appDefault: (f, v, label, rank) => g.appDefaults.set(f, v, label, rank),
    warn: (m) => warnings.push(m),
    notice: (m) => g.notices.push(m),
  });
  if (!soketiRedis) return;
  const rippleRank = Math.max(server.rank('redisUrl') ?? -1, server.rank('redisOptions') ?? -1, server.rank('redisClusterNodes') ?? -1);
  const rippleLabels = ['redisUrl', 'redisOptions', 'redisClusterNodes'].filter((k) => server.has(k)).map((k) => server.origins.get(k)!);
  if (soketiRedis.rank > rippleRank) {
    if (rippleLabels.length) warnings.push(`${rippleLabels.join(', ')}: ignored; ${soketiRedis.labels.join(', ')} set the Redis connection`);
    server.delete('redisUrl');
    server.delete('redisClusterNodes');
    server.set('redisOptions', soketiRedis.options, soketiRedis.labels[0], RANK.cli + 1);
    if (soketiRedis.clusterNodes) server.set('redisClusterNodes', soketiRedis.clusterNodes, soketiRedis.labels[0], RANK.cli + 1);
  } else {
    warnings.push(`${soketiRedis.labels.join(', ')}: ignored; ${rippleLabels.join(', ')} sets the Redis connection`);
  }
}

/**
 * With an app database (appStore.driver) the apps come from its table: the config's own app list and
 * the development app's variables are not used (said so), and Soketi's server-wide app limits become
 * the defaults of the table's empty columns. True when the apps come from a database.
 */
function appsFromDatabase(file: FileApps, g: Gathered): boolean {
  const store = g.server.values.appStore;
  if (!isObject(store) || store.driver === undefined) return false;
  const from = `apps come from the ${String(store.driver)} table (${g.server.origins.get('appStore.driver') ?? g.server.origins.get('appStore')})`;
  if (file.listed) g.warnings.push(`${file.listed.label}: ignored; ${from}`);
  for (const label of new Set([...g.devApp.origins.values(), ...file.patches.map((p) => p.label)])) g.warnings.push(`${label}: ignored; ${from}`);
  for (const [f, v] of Object.entries(g.appDefaults.values)) {
    g.server.set(`appStore.defaults.${f}`, v, g.appDefaults.origins.get(f)!, g.appDefaults.rank(f) ?? RANK.soketiFile);
  }
  return true;
}

/** The development app's secret is public: loopback only unless a host is set, and a warning if that host is not loopback. */
function chooseDevelopmentHost(app: Record<string, unknown>, g: Gathered): void {
  const { server } = g;
  const why = g.devApp.has('id') || g.devApp.has('key')
    ? `no app secret is set (APP_SECRET, SOKETI_DEFAULT_APP_SECRET): app ${String(app.id)} uses the public development secret "${DEV_APP.secret}"`
    : `no app is configured: serving the development app (app id ${DEV_APP.id}, key ${DEV_APP.key}, public secret "${DEV_APP.secret}")`;
  if (!server.has('host')) {
    server.set('host', '127.0.0.1', 'host', -1);
    g.notices.push(`${why} on 127.0.0.1 only; configure an app for real use, or set HOST (or --host) to listen on other addresses`);
  } else if (!isLoopback(String(server.values.host))) {
    g.warnings.push(
      `${why} on ${String(server.values.host)} (${server.origins.get('host')}): anyone who can reach this port can publish events ` +
        'and sign channel subscriptions; configure an app (APP_ID, APP_KEY, APP_SECRET, or a config file) for real use',
    );
  }
}

/** Which apps take client events: off unless an app says so (as in Soketi), so an operator should see it. */
function clientEventsNotice(apps: Config['apps']): string {
  const allowed = apps.filter((a) => a.enableClientMessages).map((a) => a.id);
  const how = 'enableClientMessages; APP_ENABLE_CLIENT_MESSAGES or SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES for an app from the environment';
  if (!allowed.length) return `client events (client-*) are off for every app (${how})`;
  if (allowed.length === apps.length) return `client events (client-*) are allowed for every app: ${allowed.join(', ')}`;
  return `client events (client-*) are allowed for ${allowed.join(', ')}; off for the other ${apps.length - allowed.length} app(s) (${how})`;
}

function isLoopback(host: string): boolean {
  return /^127\./.test(host) || host === '::1' || host === 'localhost' || host === '[::1]';
}

/** The schema's verdict, in the user's names; then the checks that span several settings. */
function validate(raw: Record<string, unknown>, path: string | undefined, g: Gathered): Config {
  const origins = g.server.origins;
  const parsed = ConfigSchema.safeParse(raw);
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
  if (!cfg.appStore && cfg.apps.length === 0) throw new ConfigError(`${labelFor(origins, ['apps'])}: at least one app is needed (or an app database: appStore)`);
  if (cfg.appStore) checkAppDefaults(cfg.appStore.defaults, origins);
  if (cfg.webhooks.claimIdleMs !== undefined) {
    // The old name of a lease length; one node lease now does that job (and moves webhook queues).
    const old = origins.get('webhooks.claimIdleMs') ?? origins.get('webhooks') ?? 'webhooks.claimIdleMs';
    if (g.server.has('nodeLeaseMs')) {
      g.warnings.push(`${old}: ignored; ${origins.get('nodeLeaseMs')} sets the node lease, which also moves webhook queues`);
    } else {
      cfg.nodeLeaseMs = cfg.webhooks.claimIdleMs;
      g.notices.push(`${old}: read as NODE_LEASE_MS (${cfg.nodeLeaseMs} ms): webhook queues move with the node lease now`);
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
  const clustered = !!(cfg.redisUrl || cfg.redisOptions || cfg.redisClusterNodes);
  if (cfg.workers > 1 && !clustered) {
    throw new ConfigError(
      `${origins.get('workers')}: several node processes need cluster mode (REDIS_URL, or SOKETI_ADAPTER_DRIVER=redis) ` +
        'to serve the same channels; on their own each would serve part of the clients, with separate state',
    );
  }
  if (cfg.workers > 1 && cfg.reusePort === false) {
    throw new ConfigError(`${origins.get('reusePort')}: off, but ${origins.get('workers')} starts ${cfg.workers} processes on the port, which they must share`);
  }
  if (cfg.reusePort && !clustered) {
    throw new ConfigError(
      `${origins.get('reusePort')}: sharing the port needs cluster mode (REDIS_URL, or SOKETI_ADAPTER_DRIVER=redis); ` +
        'single-node servers sharing a port would each serve part of the clients, with separate state',
    );
  }
  return cfg;
}

/** The defaults of a table's empty columns must make valid apps: checked once here, not per row. */
function checkAppDefaults(defaults: Record<string, unknown>, origins: ReadonlyMap<string, string>): void {
  const parsed = AppSchema.safeParse({ id: 'x', key: 'x', secret: 'x', ...defaults });
  if (parsed.success) return;
  const lines = parsed.error.issues.map((i) => `  ${labelFor(origins, ['appStore', 'defaults', ...i.path.filter((p): p is string | number => typeof p !== 'symbol')])}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
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
