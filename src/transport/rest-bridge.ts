// Serves the Fastify API on the uWS port: one host:port for WebSockets and REST, as Soketi users
// expect. Each HTTP request is read from uWS and handed to fastify.inject(), except the hot path:
// POST events / batch_events go straight to Trigger.handle (same checks, no inject).
import { STATUS_CODES } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { FastifyInstance } from 'fastify';
import { errorBody } from '../api/errors.js';
import type { RequestLog } from '../api/request-log.js';
import type { Trigger, TriggerRoute } from '../api/trigger.js';
import { readBody } from './request-body.js';

// uWS writes its own Date, Content-Length and connection headers.
const TRIGGER_RE = /^\/apps\/([^/]+)\/(events|batch_events)$/;
const SKIP_HEADERS = new Set(['content-length', 'connection', 'transfer-encoding', 'keep-alive', 'date']);

const statusLines = new Map<number, string>();
const statusLine = (status: number) => statusLines.get(status) ?? statusLines.set(status, `${status} ${STATUS_CODES[status] ?? ''}`).get(status)!;

function reply(res: HttpResponse, status: number, headers: Record<string, unknown>, body: Buffer | string): void {
  res.cork(() => {
    res.writeStatus(statusLine(status));
    for (const k in headers) {
      const v = headers[k];
      if (SKIP_HEADERS.has(k) || v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) res.writeHeader(k, String(one));
    }
    res.end(body);
  });
}

/** `pathPrefix`: the API's paths are under it (Fastify's routes are registered under it too, see api.ts). */
export function attachApi(uws: TemplatedApp, fastify: FastifyInstance, trigger: Trigger, maxRequestBytes: number, requests: RequestLog, pathPrefix: string): void {
  uws.any('/*', (res, req) => {
    const started = requests.started();
    const method = req.getCaseSensitiveMethod().toUpperCase();
    const query = req.getQuery();
    const path = req.getUrl();
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const fail = () => {
      if (!aborted) reply(res, 500, { 'content-type': 'application/json' }, JSON.stringify(errorBody(500, 'Internal server error')));
    };

    // The signature covers the path as sent, prefix included (as Soketi checks it): only the match drops it.
    const fast = method === 'POST' && path.startsWith(pathPrefix) ? TRIGGER_RE.exec(path.slice(pathPrefix.length)) : null;
    let fastAppId: string | undefined;
    if (fast) {
      try {
        fastAppId = decodeURIComponent(fast[1]);
      } catch {
        fastAppId = undefined; // let Fastify answer the odd path
      }
    }
    // Only Fastify's routes read the headers (uWS's request is gone once this handler returns).
    let headers: Record<string, string> | undefined;
    if (!fast || fastAppId === undefined) {
      headers = {};
      req.forEach((k, v) => (headers![k] = v));
    }
    const dispatch = (payload?: Buffer) => {
      if (fast && fastAppId !== undefined) {
        trigger
          .handle(fast[2] as TriggerRoute, { appId: fastAppId, method, path, query: parseQuery(query), rawBody: payload })
          .then((r) => {
            if (!aborted) reply(res, r.status, r.headers, r.body);
          }, fail);
        return;
      }
      fastify
        .inject({ method: method as 'GET', url: query ? `${path}?${query}` : path, headers, payload })
        .then((r) => {
          if (!aborted) reply(res, r.statusCode, r.headers, r.rawPayload);
        }, fail);
    };

    if (method === 'GET' || method === 'HEAD') return dispatch();
    readBody(res, maxRequestBytes, true, {
      done: dispatch,
      failed: fail,
      tooLarge: () => {
        const reason = 'Request body too large';
        // Answered here, before Fastify or the trigger path sees it: logged and counted here too.
        requests.answered(method, path, 413, requests.since(started), reason);
        if (!aborted) reply(res, 413, { 'content-type': 'application/json' }, JSON.stringify(errorBody(413, reason)));
      },
    });
  });
}
