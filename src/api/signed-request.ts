// Request signatures as Pusher signs them (spec §9.2): auth_key, auth_timestamp within 600 s,
// body_md5 of the raw bytes, sorted query without auth_signature, constant-time compare. As a
// Fastify plugin, the check is one hook of the scope that holds the signed routes.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { signedWithAcceptedSecret, type App } from '../apps/app.js';
import type { AppStore, Found } from '../apps/store.js';
import { hmacSha256Hex, md5Hex, restStringToSign, safeEqual } from '../protocol/signature.js';
import { HttpError } from './errors.js';
import type { ConsoleTap } from '../console/tap.js';

export const MAX_TIMESTAMP_SKEW_S = 600;

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
    pusherApp?: App;
    /** The query as signed: keys lower-cased, one value per key (the last). */
    pusherQuery?: Record<string, string>;
  }
}

export interface SignedRequest {
  appId: string;
  method: string;
  /** the request path as sent, without the query */
  path: string;
  /** the decoded query; a repeated key may hold an array */
  query: Record<string, unknown>;
  /** the query as signed (see signedQuery), when the caller read it so: then `query` is this object */
  signedQuery?: Record<string, string>;
  rawBody?: Buffer;
}

export interface Verified {
  app: App;
  /** The query as signed. */
  query: Record<string, string>;
}

/**
 * Checks a request's signature against the app it names: at once when the store answers at once,
 * else a promise. An app store that cannot answer is a 503 (try again), never a 404.
 */
export function verifySignedRequest(apps: AppStore, req: SignedRequest, nowMs = Date.now()): Verified | Promise<Verified> {
  const found = apps.findById(req.appId);
  if (!(found instanceof Promise)) return verifyFor(found, req, nowMs);
  return found.then(
    (app) => verifyFor(app, req, nowMs),
    () => {
      throw new HttpError(503, 'Apps cannot be looked up right now, try again');
    },
  );
}

/** The query as signed: keys lower-cased, one value per key (the last). */
export function asSigned(decoded: Record<string, unknown>): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(decoded)) {
    query[k.toLowerCase()] = Array.isArray(v) ? String(v[v.length - 1]) : String(v);
  }
  return query;
}

/**
 * A raw query string read at once as signed: what asSigned(querystring.parse(raw)) gives, for the
 * common query (nothing to decode, lower-case keys, each once, at most 1000); undefined for any other,
 * which takes that way. (The REST fast path: querystring's object and the copy cost more than the rest
 * of the check.)
 */
export function signedQuery(raw: string): Record<string, string> | undefined {
  const query: Record<string, string> = {};
  let pieces = 0;
  let start = 0;
  let eq = -1;
  for (let i = 0; i <= raw.length; i++) {
    const c = i < raw.length ? raw.charCodeAt(i) : 38;
    if (c === 38) {
      // '&': one key=value piece; empty pieces are skipped, as querystring does
      if (i > start) {
        if (++pieces > 1000) return undefined;
        const key = raw.slice(start, eq < 0 ? i : eq);
        // a repeated key, or one the object has already (__proto__, toString...): the general way
        if (query[key] !== undefined) return undefined;
        query[key] = eq < 0 ? '' : raw.slice(eq + 1, i);
      }
      start = i + 1;
      eq = -1;
    } else if (c === 37 || c === 43) {
      return undefined; // '%', '+': to be decoded
    } else if (eq < 0) {
      if (c === 61) eq = i;
      else if ((c >= 65 && c <= 90) || c > 127) return undefined; // a key to lower-case
    }
  }
  return query;
}

function verifyFor(app: Found, req: SignedRequest, nowMs: number): Verified {
  if (!app) throw new HttpError(404, `App ${req.appId} does not exist`);
  const query = req.signedQuery ?? asSigned(req.query);
  const { auth_key: key, auth_timestamp: ts, auth_signature: signature } = query;
  if (!key || !ts || !signature) throw new HttpError(401, 'Missing auth_key, auth_timestamp or auth_signature');
  if (!safeEqual(key, app.key)) throw new HttpError(401, 'Unknown auth_key');
  const seconds = Number(ts);
  if (!Number.isFinite(seconds) || Math.abs(nowMs / 1000 - seconds) > MAX_TIMESTAMP_SKEW_S) {
    throw new HttpError(401, `Timestamp expired: given timestamp ${ts} not within ${MAX_TIMESTAMP_SKEW_S}s of server time ${Math.floor(nowMs / 1000)}`);
  }
  const body = req.rawBody;
  if (body && body.length > 0) {
    if (!query.body_md5 || !safeEqual(query.body_md5, md5Hex(body))) throw new HttpError(401, 'body_md5 does not match the body');
  }
  const signed = restStringToSign(req.method, req.path, query);
  if (!signedWithAcceptedSecret(app, (secret) => safeEqual(signature, hmacSha256Hex(secret, signed)), nowMs)) throw new HttpError(401, 'Invalid signature');
  if (!app.enabled) throw new HttpError(403, 'The app is disabled');
  return { app, query };
}

/** The app a signed route serves (set by the plugin's hook before the handler runs). */
export function appOf(req: FastifyRequest): App {
  return req.pusherApp!;
}

/**
 * Registers the signature check as a hook of `scope`: every route registered in it is signed.
 * `refused`: told of each request the check refuses, while the debug console watches its app.
 */
export function signedRequests(scope: FastifyInstance, apps: AppStore, tap: ConsoleTap, refused: (req: SignedRequest, status: number, error: string) => Promise<void>): void {
  scope.addHook('preHandler', async (req) => {
    const signed: SignedRequest = {
      appId: (req.params as { appId?: string }).appId ?? '',
      method: req.method,
      path: req.url.split('?', 1)[0],
      query: req.query as Record<string, unknown>,
      rawBody: req.rawBody,
    };
    try {
      const { app, query } = await verifySignedRequest(apps, signed);
      req.pusherApp = app;
      req.pusherQuery = query;
    } catch (err) {
      if (err instanceof HttpError && tap.on && tap.watches(signed.appId)) void refused(signed, err.status, err.message);
      throw err;
    }
  });
}
