// The environment (Soketi's SOKETI_* names, with a .env file under them as Soketi reads one, then
// ripple's own names) and the command line, read into the gathered settings.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseDotEnv } from 'dotenv';
import type { CliArgs } from './cli-args.js';
import { ConfigError } from './errors.js';
import { APP_ENV, SERVER_ENV, appFieldKind } from './env-names.js';
import { RANK, type Gathered } from './gathered.js';
import { SOKETI_ENV, appFieldOf, soketiKind } from './soketi.js';
import { SOCKUDO_ENV } from './peer-app-store.js';
import { coerce } from './values.js';

export type Env = Record<string, string | undefined>;

/**
 * The environment with the SOKETI_* lines of `<dir>/.env` under it. Soketi loads that file with dotenv,
 * which never replaces a variable the environment already has. Only SOKETI_* lines are taken: the
 * .env of the app next to it (Laravel's, say) holds APP_KEY, APP_NAME and the like, which are not
 * meant for this server.
 */
export function withDotEnv(dir: string | undefined, env: Env, g: Gathered): Env {
  if (dir === undefined) return env;
  const path = join(dir, '.env');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return env;
    throw new ConfigError(`${path}: ${(err as Error).message}`);
  }
  const taken: string[] = [];
  const merged: Env = { ...env };
  for (const [name, value] of Object.entries(parseDotEnv(text))) {
    if (!name.startsWith('SOKETI_') || env[name] !== undefined) continue;
    merged[name] = value;
    taken.push(name);
  }
  if (taken.length) g.notices.push(`${path}: read ${taken.join(', ')} (as Soketi does; the environment wins over the file)`);
  return merged;
}

export function readSoketiEnv(env: Env, g: Gathered): void {
  for (const [name, p] of Object.entries(SOKETI_ENV)) {
    const label = `SOKETI_${name}`;
    const raw = env[label];
    if (raw === undefined || raw === '') continue;
    const field = appFieldOf(p);
    if (field) {
      const value = coerce(label, appFieldKind(field.field), raw);
      g.devApp.set(field.field, value, label, RANK.soketiEnv);
      g.soketiDefaultApp.push({ index: field.index, key: field.field, value, label });
    } else {
      g.soketi.push({ path: p, value: coerce(label, soketiKind(p) ?? 'any', raw), label, rank: RANK.soketiEnv });
    }
  }
}

/** Sockudo's names for its app manager and database (they carry no prefix of their own). */
export function readSockudoEnv(env: Env, g: Gathered): void {
  for (const [name, p] of Object.entries(SOCKUDO_ENV)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') g.soketi.push({ path: p, value: coerce(name, soketiKind(p) ?? 'any', raw), label: name, rank: RANK.soketiEnv });
  }
}

export function readRippleEnv(env: Env, g: Gathered): void {
  for (const [name, { path: p, kind }] of Object.entries(SERVER_ENV)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') g.server.set(p, coerce(name, kind, raw), name, RANK.env);
  }
  for (const [name, field] of Object.entries(APP_ENV)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') g.devApp.set(field, coerce(name, appFieldKind(field), raw), name, RANK.env);
  }
}

export function readCommandLine(cli: CliArgs, g: Gathered): void {
  if (cli.port !== undefined) g.server.set('port', coerce('--port', 'int', cli.port), '--port', RANK.cli);
  if (cli.host !== undefined) g.server.set('host', cli.host, '--host', RANK.cli);
  if (cli.debug) g.server.set('logLevel', 'debug', '--debug', RANK.cli);
  if (cli.workers !== undefined) g.server.set('workers', coerce('--workers', 'int', cli.workers), '--workers', RANK.cli);
}
