// The Fastify REST API (spec §9). Routes check the request signature first, then act through the
// Backbone and PresenceStore only.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AppRegistry } from '../apps/registry.js';
import type { Backbone } from '../backbone/backbone.js';
import { StoreUnavailableError, type PresenceStore } from '../presence/store.js';
import type { ChannelCache } from '../presence/cache.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Quotas, RateKind } from '../limits/quotas.js';
import { channelKind, isCacheChannel, isValidChannelName } from '../protocol/channels.js';
import * as frames from '../protocol/frames.js';
import { errorBody, HttpError } from './errors.js';
import { authenticate, authenticateParts, type SignedRequest } from './request-auth.js';
import { parseInfo, parseTrigger, type TriggerEvent } from './validate.js';

export interface ApiDeps {
  registry: AppRegistry;
  backbone: Backbone;
  store: PresenceStore;
  cache: ChannelCache;
  log: Logger;
  maxRequestBytes: number;
  /** false while the node drains or cannot serve (for /ready) */
  isReady: () => boolean;
  metrics: Metrics;
  quotas: Quotas;
  /** Dead-lettered webhooks: listed and replayed by the operator. */
  webhooks?: { listDead(appId: string): Promise<unknown[]>; replayDead(appId: string): Promise<number> };
}

type ChannelAttrs = { user_count?: number; subscription_count?: number };
type SetHeader = (name: string, value: string) => void;

/** POST /apps/<id>/events or batch_events, handled outside Fastify (see the uWS bridge). */
export type FastTrigger = (
  route: 'events' | 'batch_events',
  req: SignedRequest,
) => Promise<{ status: number; headers: Record<string, string>; body: string }>;

declare module 'fastify' {
  interface FastifyInstance {
    rippleTrigger: FastTrigger;
  }
}

/** A REST body as JSON: empty is {}; anything unparsable is a 400. */
function parseBody(buf: Buffer | undefined): unknown {
  if (!buf || buf.length === 0) return {};
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new HttpError(400, 'Request body is not valid JSON');
  }
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const { registry, backbone, store, cache } = deps;
  // Fastify's own request logging stays off: nothing per request at info level (style.md).
  const fastify = Fastify({ logger: false, bodyLimit: deps.maxRequestBytes });

  // Keep the raw bytes: body_md5 is computed over them, never over a re-serialised object (spec §12.12).
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    try {
      done(null, parseBody(req.rawBody));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  /** Status and JSON body for any error a handler throws (shared by Fastify and the trigger fast path). */
  const errorResponse = (err: Error & { statusCode?: number }): { status: number; body: object } => {
    if (err instanceof HttpError) return { status: err.status, body: errorBody(err.status, err.message) };
    if (err instanceof StoreUnavailableError) return { status: 503, body: errorBody(503, err.message) };
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) deps.log.error({ err }, 'REST handler failed');
    return { status, body: errorBody(status, status >= 500 ? 'Internal server error' : err.message) };
  };
  fastify.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const { status, body } = errorResponse(err);
    return reply.status(status).send(body);
  });
  fastify.setNotFoundHandler((_req, reply) => reply.status(404).send(errorBody(404, 'Not found')));

  const auth = async (req: FastifyRequest) => {
    req.pusherApp = authenticate(registry, req);
  };

  /** Per-app REST budgets (Soketi's maxBackendEventsPerSecond / maxReadRequestsPerSecond): 429 over them. */
  async function spend(app: App, header: SetHeader, kind: RateKind, points: number): Promise<void> {
    const limit = kind === 'backend' ? app.maxBackendEventsPerSecond : app.maxReadRequestsPerSecond;
    if (limit < 0) return;
    const d = await deps.quotas.consume(app.id, kind, points, limit);
    header('X-RateLimit-Limit', String(limit));
    header('X-RateLimit-Remaining', String(d.remaining));
    if (!d.allowed) {
      header('Retry-After', String(d.retryAfter));
      throw new HttpError(429, `Too many ${kind === 'backend' ? 'events' : 'read requests'}: the app's limit is ${limit} per second`);
    }
  }
  const headerOf = (reply: FastifyReply): SetHeader => (name, value) => void reply.header(name, value);
  const read = async (req: FastifyRequest, reply: FastifyReply) => spend(appOf(req), headerOf(reply), 'read', 1);
  const appOf = (req: FastifyRequest): App => req.pusherApp!;

  fastify.addHook('onResponse', async (req, reply) => {
    // The app API only: health checks and scrapes are not REST traffic.
    if (req.url.startsWith('/apps/')) deps.metrics.restRequests.inc({ status: String(reply.statusCode) });
  });

  fastify.get('/health', async () => ({ ok: true }));
  fastify.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
  fastify.get('/ready', async (_req, reply) => {
    const ready = deps.isReady();
    return reply.status(ready ? 200 : 503).send({ ready });
  });

  async function publish(app: App, ev: TriggerEvent): Promise<Record<string, ChannelAttrs> | undefined> {
    const cached: Promise<void>[] = [];
    for (const channel of ev.channels) {
      backbone.publish(app.id, channel, frames.channelEvent(ev.name, channel, ev.data), ev.socketId);
      // Cache channels keep the last event published through the API (spec §7).
      if (isCacheChannel(channel)) cached.push(cache.set(app.id, channel, { event: ev.name, data: ev.data }));
    }
    await Promise.all(cached);
    if (!ev.info) return undefined;
    const out: Record<string, ChannelAttrs> = {};
    await Promise.all(ev.channels.map(async (channel) => (out[channel] = await attrs(app, channel, ev.info!))));
    return out;
  }

  async function attrs(app: App, channel: string, info: string[]): Promise<ChannelAttrs> {
    const presence = channelKind(channel) === 'presence';
    const a: ChannelAttrs = {};
    if (presence && info.includes('user_count')) a.user_count = await store.userCount(app.id, channel);
    if (!presence && app.enableSubscriptionCount && info.includes('subscription_count')) a.subscription_count = await store.subscriptionCount(app.id, channel);
    return a;
  }

  async function triggerEvents(app: App, body: unknown, header: SetHeader): Promise<object> {
    const ev = parseTrigger(app, body);
    await spend(app, header, 'backend', ev.channels.length);
    const channels = await publish(app, ev);
    return channels ? { channels } : {};
  }

  async function triggerBatch(app: App, raw: unknown, header: SetHeader): Promise<object> {
    const body = raw as { batch?: unknown };
    if (!body || !Array.isArray(body.batch)) throw new HttpError(400, '"batch" must be an array of events');
    if (body.batch.length > app.maxEventBatchSize) throw new HttpError(400, `A batch holds at most ${app.maxEventBatchSize} events`);
    // Validate the whole batch before publishing any of it.
    const events = body.batch.map((e, i) => parseTrigger(app, e, `batch[${i}]`, true));
    await spend(app, header, 'backend', events.length);
    const results = await Promise.all(events.map((ev) => publish(app, ev)));
    if (!events.some((e) => e.info)) return {};
    return { batch: results.map((r, i) => (r ? r[events[i].channels[0]] : {})) };
  }

  fastify.post('/apps/:appId/events', { preHandler: auth }, async (req, reply) => triggerEvents(appOf(req), req.body, headerOf(reply)));
  fastify.post('/apps/:appId/batch_events', { preHandler: auth }, async (req, reply) => triggerBatch(appOf(req), req.body, headerOf(reply)));

  // The same two routes without Fastify's per-request machinery, for the uWS bridge: triggers are the
  // hot REST path. Same signature check, validation, quotas, errors and metrics as the routes above.
  const trigger: FastTrigger = async (route, req) => {
    const headers: Record<string, string> = {};
    const header: SetHeader = (name, value) => void (headers[name.toLowerCase()] = value);
    let status = 200;
    let body: object;
    try {
      const { app } = authenticateParts(registry, req);
      const parsed = parseBody(req.rawBody);
      body = route === 'events' ? await triggerEvents(app, parsed, header) : await triggerBatch(app, parsed, header);
    } catch (err) {
      ({ status, body } = errorResponse(err as Error));
    }
    deps.metrics.restRequests.inc({ status: String(status) });
    headers['content-type'] = 'application/json; charset=utf-8';
    return { status, headers, body: JSON.stringify(body) };
  };
  fastify.decorate('rippleTrigger', trigger);

  fastify.get('/apps/:appId/channels', { preHandler: [auth, read] }, async (req) => {
    const app = appOf(req);
    const q = (req.pusherQuery ?? {}) as { filter_by_prefix?: string; info?: string };
    const prefix = q.filter_by_prefix || undefined;
    const info = q.info ? parseInfo(q.info, ['user_count', 'subscription_count']) : [];
    if (info.includes('user_count') && !prefix?.startsWith('presence-')) {
      throw new HttpError(400, 'info=user_count needs filter_by_prefix=presence-');
    }
    const channels: Record<string, ChannelAttrs> = {};
    for (const [name, c] of await store.channels(app.id, prefix)) {
      if (name.startsWith('#')) continue; // internal channels are not the app's
      const a: ChannelAttrs = {};
      if (info.includes('user_count')) a.user_count = c.userCount;
      if (info.includes('subscription_count') && app.enableSubscriptionCount && !name.startsWith('presence-')) a.subscription_count = c.subscriptionCount;
      channels[name] = a;
    }
    return { channels };
  });

  const channelParam = (req: FastifyRequest): string => {
    const name = (req.params as { channelName: string }).channelName;
    if (!isValidChannelName(name)) throw new HttpError(400, `Invalid channel name ${JSON.stringify(name)}`);
    return name;
  };

  fastify.get('/apps/:appId/channels/:channelName', { preHandler: [auth, read] }, async (req) => {
    const app = appOf(req);
    const channel = channelParam(req);
    const q = (req.pusherQuery ?? {}) as { info?: string };
    const info = q.info ? parseInfo(q.info, ['user_count', 'subscription_count', 'cache']) : [];
    const presence = channelKind(channel) === 'presence';
    if (info.includes('user_count') && !presence) throw new HttpError(400, 'user_count is only available for presence channels');
    if (info.includes('subscription_count') && presence) throw new HttpError(400, 'subscription_count is not available for presence channels');
    if (info.includes('cache') && !isCacheChannel(channel)) throw new HttpError(400, 'cache is only available for cache channels');
    const count = await store.subscriptionCount(app.id, channel);
    const out: Record<string, unknown> = { occupied: count > 0 };
    // Counts only for occupied channels (an empty one is {"occupied":false}), and subscription_count
    // only where the app has the feature on (spec §9.3).
    if (count > 0 && info.includes('user_count')) out.user_count = await store.userCount(app.id, channel);
    if (count > 0 && info.includes('subscription_count') && app.enableSubscriptionCount) out.subscription_count = count;
    if (info.includes('cache')) {
      const hit = await cache.get(app.id, channel);
      out.cache = hit ? { data: hit.ev.data, ttl: Math.ceil(hit.ttlMs / 1000) } : null;
    }
    return out;
  });

  fastify.get('/apps/:appId/channels/:channelName/users', { preHandler: [auth, read] }, async (req) => {
    const app = appOf(req);
    const channel = channelParam(req);
    if (channelKind(channel) !== 'presence') throw new HttpError(400, 'Users are only available for presence channels');
    const members = await store.members(app.id, channel);
    return { users: [...members.keys()].map((id) => ({ id })) };
  });

  fastify.post('/apps/:appId/users/:userId/terminate_connections', { preHandler: auth }, async (req) => {
    const app = appOf(req);
    const userId = (req.params as { userId: string }).userId;
    backbone.broadcastCommand({ type: 'terminate-user', appId: app.id, userId });
    return {};
  });

  // Operator routes (not part of Pusher's API), signed like every other call: webhooks that failed
  // for good, and putting them back on their endpoint's queue.
  const webhookStore = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      deps.log.warn({ err }, 'dead-letter store unavailable');
      throw new HttpError(503, 'Webhook state is unavailable, try again');
    }
  };
  fastify.get('/apps/:appId/webhooks/dead_letters', { preHandler: auth }, async (req) => {
    const app = appOf(req);
    const dead = deps.webhooks ? await webhookStore(() => deps.webhooks!.listDead(app.id)) : [];
    return { dead_letters: dead };
  });
  fastify.post('/apps/:appId/webhooks/dead_letters/replay', { preHandler: auth }, async (req) => {
    const app = appOf(req);
    const events = deps.webhooks ? await webhookStore(() => deps.webhooks!.replayDead(app.id)) : 0;
    return { replayed_events: events };
  });

  return fastify;
}

