// The environment (Soketi's SOKETI_* names, then ripple's own) and the command line, read into the
// gathered settings.
import type { CliArgs } from './cli-args.js';
import { APP_ENV, SERVER_ENV, appFieldKind } from './env-names.js';
import { RANK, type Gathered } from './gathered.js';
import { SOKETI_ENV, appFieldOf, soketiKind } from './soketi.js';
import { coerce } from './values.js';

export type Env = Record<string, string | undefined>;

export function readSoketiEnv(env: Env, g: Gathered): void {
  for (const [name, p] of Object.entries(SOKETI_ENV)) {
    const label = `SOKETI_${name}`;
    const raw = env[label];
    if (raw === undefined || raw === '') continue;
    const field = appFieldOf(p);
    if (field) g.devApp.set(field.field, coerce(label, appFieldKind(field.field), raw), label, RANK.soketiEnv);
    else g.soketi.push({ path: p, value: coerce(label, soketiKind(p) ?? 'any', raw), label, rank: RANK.soketiEnv });
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
}
