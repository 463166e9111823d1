// The Fastify REST API (spec §9), as plugins by concern: unsigned health routes, and one signed scope
// whose single hook checks the request signature before any of its routes (events, channel queries,
// users, webhook dead letters, usage) runs. Every app API request is counted and logged once it is
// answered (request-log.ts).
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { AppStore } from '../apps/store.js';
import type { Backbone } from '../backbone/backbone.js';
import { MAX_NAME_LENGTH } from '../config/schema.js';
import type { ChannelCache } from '../cache/channel-cache.js';
import type { ChannelHistory } from '../history/history.js';
import type { RateWindows } from '../limits/rate-windows.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PresenceStore } from '../presence/store.js';
import { errorBody, errorResponse, parseBody } from './errors.js';
import type { RequestLog } from './request-log.js';
import { channelRoutes } from './routes/channels.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { manageAppsRoutes, type ManagedApps } from './routes/manage-apps.js';
import { usageRoutes, type UsageDeps } from './routes/usage.js';
import { userRoutes } from './routes/users.js';
import { webhookRoutes, type DeadLetters } from './routes/webhooks.js';
import { signedRequests } from './signed-request.js';
import { refusedRequest } from './trigger.js';
import type { ConsoleTap } from '../console/tap.js';
import type { Trigger } from './trigger.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Why the request was refused, as its error body says (for the request log). */
    failure?: string;
  }
}

export interface ApiDeps {
  apps: AppStore;
  backbone: Backbone;
  store: PresenceStore;
  cache: ChannelCache;
  history: ChannelHistory;
  rates: RateWindows;
  trigger: Trigger;
  deadLetters: DeadLetters;
  /** what GET usage reads besides the presence store */
  usage: Omit<UsageDeps, 'store' | 'rates'>;
  requests: RequestLog;
  metrics: Metrics;
  /** false when a separate metrics port serves /metrics instead */
  metricsOnMainPort: boolean;
  log: Logger;
  maxRequestBytes: number;
  /** false while the node drains or cannot serve (for /ready) */
  isReady: () => boolean;
  /** Whether the app database answers (for /ready; absent for apps from the config). */
  appStoreUp?: () => boolean;
  /** every route is under this ('' or `/ws`: config pathPrefix) */
  pathPrefix: string;
  /** The operator's credential (config.operatorToken): without one, the operator's routes do not exist. */
  operatorToken?: string;
  /** What the management API changes (under `/ripple/apps`). */
  managedApps: ManagedApps;
  /** the debug console (issue 21): refused signed requests */
  tap: ConsoleTap;
}

// A character outside ASCII percent-encodes to up to 9 bytes per UTF-16 unit (%E2%82%AC), and the
// router measures parameters as sent.
const ENCODED_BYTES_PER_CHAR = 9;

export function buildApi(deps: ApiDeps): FastifyInstance {
  // Every channel name and user id any app may accept must reach the routes, whose own checks then
  // answer the app's limits (Fastify's default of 100 refused valid 101-200 character names).
  const longestName = MAX_NAME_LENGTH;
  // Fastify's own request logging stays off: nothing per request at info level (style.md).
  const fastify = Fastify({
    logger: false,
    bodyLimit: deps.maxRequestBytes,
    routerOptions: { maxParamLength: longestName * ENCODED_BYTES_PER_CHAR },
    // Longer still, or not a URL at all: the same 400 with a JSON body as any other bad request.
    frameworkErrors: (err, req, reply) => {
      const message = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? `A path parameter is longer than ${longestName} characters` : 'Malformed URL';
      // Fastify runs no onResponse hook for these: counted and logged here.
      deps.requests.answered(req.method, req.url.split('?', 1)[0], 400, 0, message);
      void (reply as FastifyReply).status(400).send(errorBody(400, message));
    },
  });

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
  fastify.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const { status, body } = errorResponse(err, deps.log);
    req.failure = body.error;
    return reply.status(status).send(body);
  });
  fastify.setNotFoundHandler((req, reply) => {
    req.failure = 'Not found';
    return reply.status(404).send(errorBody(404, req.failure));
  });
  fastify.addHook('onResponse', async (req, reply) => {
    deps.requests.answered(req.method, req.url.split('?', 1)[0], reply.statusCode, reply.elapsedTime, req.failure);
  });

  fastify.register(
    async (routes) => {
      await routes.register(healthRoutes, { metrics: deps.metricsOnMainPort ? deps.metrics : undefined, isReady: deps.isReady, appStoreUp: deps.appStoreUp });
      if (deps.operatorToken) await routes.register(manageAppsRoutes, { token: deps.operatorToken, apps: deps.managedApps, log: deps.log.child({ module: 'manage-apps' }) });
      await routes.register(async (signed) => {
        signedRequests(signed, deps.apps, deps.tap, (req, status, error) => refusedRequest(deps.tap, deps.apps, req, status, error));
        await signed.register(eventRoutes, { trigger: deps.trigger });
        await signed.register(channelRoutes, { store: deps.store, cache: deps.cache, history: deps.history, rates: deps.rates });
        await signed.register(userRoutes, { backbone: deps.backbone });
        await signed.register(webhookRoutes, { deadLetters: deps.deadLetters, log: deps.log });
        await signed.register(usageRoutes, { ...deps.usage, store: deps.store, rates: deps.rates });
      });
    },
    { prefix: deps.pathPrefix },
  );
  return fastify;
}
