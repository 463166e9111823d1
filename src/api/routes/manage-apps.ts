// The management API (README.md, "Managing apps"): list, read, create, update, disable, delete apps
// and rotate a secret, under `<prefix>/ripple/apps`, for the operator only (Authorization: Bearer
// <operatorToken>; without a token configured the routes do not exist). Writes go to the app table the
// apps are read from, and every node reads the app again at once (node command app-changed). Secrets
// are answered masked, except a new one, once, to whoever created or rotated it; nothing logs them.
import { randomBytes, randomInt } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AppWriteError, type AppWriter, type SourceRow } from '../../apps/source.js';
import { AppSchema, storedAppFields, type AppConfig } from '../../config/schema.js';
import { HttpError } from '../errors.js';
import { isOperator } from '../operator-auth.js';

export interface ManagedApps {
  /** Every app at its source, bad rows included (with why they are skipped). */
  list(): Promise<readonly SourceRow[]>;
  get(id: string): Promise<SourceRow | undefined>;
  /** Absent: the apps come from the config, which this API cannot change. */
  writer?: AppWriter;
  /** Values for fields a new app leaves out (appStore.defaults). */
  defaults: Readonly<Record<string, unknown>>;
  /** After a write: this node reads the app again now, and every other node through the backbone. */
  changed(appId: string): Promise<void>;
}

export interface ManageAppsDeps {
  token: string;
  apps: ManagedApps;
  log: Logger;
}

/** How long a rotated secret's predecessor stays valid unless the request says otherwise. */
export const DEFAULT_OVERLAP_S = 86_400;
const MAX_OVERLAP_S = 30 * 86_400;
const STORED = new Set<string>(storedAppFields);

export async function manageAppsRoutes(fastify: FastifyInstance, deps: ManageAppsDeps): Promise<void> {
  const { apps, log } = deps;
  fastify.addHook('onRequest', async (req, reply) => {
    if (isOperator(req.headers.authorization, deps.token)) return;
    reply.header('www-authenticate', 'Bearer');
    throw new HttpError(401, 'This needs the operator token (Authorization: Bearer <token>)');
  });

  fastify.get('/ripple/apps', async () => ({ apps: (await source(() => apps.list())).map(shown) }));

  fastify.get('/ripple/apps/:id', async (req) => {
    const row = await source(() => apps.get(idOf(req)));
    if (!row) throw notFound(idOf(req));
    return { app: shown(row) };
  });

  fastify.post('/ripple/apps', async (req, reply) => {
    const writer = writable(apps);
    const given = fieldsOf(req.body);
    given.id ??= String(randomInt(100_000, 1_000_000_000));
    given.key ??= randomBytes(10).toString('hex');
    given.secret ??= newSecret();
    const config = complete({ ...apps.defaults, ...given });
    await source(() => writer.create(config, pick(config, Object.keys(given))));
    await apps.changed(config.id);
    log.info({ app: config.id, fields: Object.keys(given).filter((f) => f !== 'secret') }, 'app created');
    // The secret in full, this once: whoever created the app needs it.
    return reply.status(201).send({ app: shown({ ok: true, id: config.id, config, notes: [] }), secret: config.secret });
  });

  fastify.patch('/ripple/apps/:id', async (req) => {
    const writer = writable(apps);
    const id = idOf(req);
    const given = fieldsOf(req.body);
    if (given.id !== undefined && given.id !== id) throw new HttpError(400, 'An app id cannot change');
    const current = await source(() => apps.get(id));
    if (!current) throw notFound(id);
    const config = complete({ ...apps.defaults, ...(current.ok ? current.config : {}), ...given, id });
    if (!(await source(() => writer.update(id, pick(config, Object.keys(given)))))) throw notFound(id);
    await apps.changed(id);
    log.info({ app: id, fields: Object.keys(given) }, 'app updated');
    return { app: shown({ ok: true, id, config, notes: [] }) };
  });

  fastify.delete('/ripple/apps/:id', async (req, reply) => {
    const writer = writable(apps);
    const id = idOf(req);
    if (!(await source(() => writer.remove(id)))) throw notFound(id);
    await apps.changed(id);
    log.info({ app: id }, 'app deleted');
    return reply.status(204).send();
  });

  fastify.post('/ripple/apps/:id/rotate-secret', async (req) => {
    const writer = writable(apps);
    const id = idOf(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const overlap = body.overlapSeconds ?? DEFAULT_OVERLAP_S;
    if (typeof overlap !== 'number' || !Number.isInteger(overlap) || overlap < 0 || overlap > MAX_OVERLAP_S) {
      throw new HttpError(400, `overlapSeconds must be a whole number of seconds from 0 to ${MAX_OVERLAP_S}`);
    }
    const secret = body.secret ?? newSecret();
    if (typeof secret !== 'string' || secret === '') throw new HttpError(400, 'secret must be a non-empty string');
    const until = Date.now() + overlap * 1000;
    const rotated = await source(() => writer.rotateSecret(id, secret, until));
    if (!rotated) throw notFound(id);
    await apps.changed(id);
    log.info({ app: id, overlapSeconds: overlap }, 'app secret rotated');
    return { id, secret, previousSecretValidUntil: new Date(until).toISOString() };
  });
}

/** 40 hex digits (160 bits). */
function newSecret(): string {
  return randomBytes(20).toString('hex');
}

function idOf(req: FastifyRequest): string {
  return (req.params as { id: string }).id;
}

function notFound(id: string): HttpError {
  return new HttpError(404, `App ${id} does not exist`);
}

function writable(apps: ManagedApps): AppWriter {
  if (!apps.writer) throw new HttpError(409, 'The apps come from the configuration (file or environment): changing them needs an app database (appStore)');
  return apps.writer;
}

/** A request body's app fields: only those a table can hold. */
function fieldsOf(body: unknown): Partial<AppConfig> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'The body must be a JSON object of app fields');
  const unknown = Object.keys(body).filter((k) => !STORED.has(k));
  if (unknown.length) throw new HttpError(400, `Not app fields that can be stored: ${unknown.join(', ')} (fields: ${storedAppFields.join(', ')})`);
  return { ...(body as Partial<AppConfig>) };
}

/** The app as the server would read it, or a 400 naming what is wrong. */
function complete(raw: Record<string, unknown>): AppConfig {
  const parsed = AppSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new HttpError(400, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
}

function pick(config: AppConfig, fields: readonly string[]): Partial<AppConfig> {
  return Object.fromEntries(fields.map((f) => [f, config[f as keyof AppConfig]]));
}

/** Runs a call to the app database: a refusal of the table is the caller's (4xx), an unreachable database a 503. */
async function source<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof AppWriteError) throw new HttpError(err.status, err.message);
    // A fault of ours stays a 500 (logged), not a database outage.
    if (err instanceof HttpError || err instanceof TypeError || err instanceof RangeError) throw err;
    throw new HttpError(503, `The app database cannot be reached: ${(err as Error).message}`);
  }
}

/** Only the last four characters of a secret. */
export function masked(secret: string): string {
  return secret.length > 8 ? `…${secret.slice(-4)}` : '…';
}

/** An app as the API shows it: secrets (and webhook header values, which may be credentials) masked. */
function shown(row: SourceRow): Record<string, unknown> {
  if (!row.ok) return { id: row.id, problem: row.problem };
  const { secret, webhooks, encryptionMasterKeyBase64, ...rest } = row.config;
  return {
    ...rest,
    secret: masked(secret),
    webhooks: webhooks.map((w) => ({ ...w, headers: Object.fromEntries(Object.entries(w.headers).map(([k, v]) => [k, masked(v)])) })),
    ...(encryptionMasterKeyBase64 !== undefined && { encryptionMasterKeyBase64: masked(encryptionMasterKeyBase64) }),
    ...(row.ok && 'previousSecret' in row && row.previousSecret && { previousSecret: { secret: masked(row.previousSecret.secret), validUntil: new Date(row.previousSecret.until).toISOString() } }),
  };
}
