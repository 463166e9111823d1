// Serves the Fastify API on the uWS port: one host:port for WebSockets and REST, as Soketi users
// expect. Each HTTP request is read from uWS and handed to fastify.inject(), except the hot path:
// POST events / batch_events go straight to Trigger.handle (same checks, no inject).
import { STATUS_CODES } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { FastifyInstance } from 'fastify';
import { errorBody } from '../api/errors.js';
import type { RequestLog } from '../api/request-log.js';
import { signedQuery } from '../api/signed-request.js';
import { OK_HEADERS, type Trigger, type TriggerResponse, type TriggerRoute } from '../api/trigger.js';
import { readBody, type BodyHandlers } from './request-body.js';

// uWS writes its own Date, Content-Length and connection headers.
const TRIGGER_RE = /^\/apps\/([^/]+)\/(events|batch_events)$/;
const SKIP_HEADERS = new Set(['content-length', 'connection', 'transfer-encoding', 'keep-alive', 'date']);

const statusLines = new Map<number, string>();
const statusLine = (status: number) => statusLines.get(status) ?? statusLines.set(status, `${status} ${STATUS_CODES[status] ?? ''}`).get(status)!;

/** An answer from outside uWS's callbacks (a promise's): corked, so it goes out in one write. */
function reply(res: HttpResponse, status: number, headers: Readonly<Record<string, unknown>>, body: Buffer | string): void {
  res.cork(() => write(res, status, headers, body));
}

/** Inside a uWS callback (the socket is corked until it returns), or within res.cork. */
function write(res: HttpResponse, status: number, headers: Readonly<Record<string, unknown>>, body: Buffer | string): void {
  res.writeStatus(statusLine(status));
  for (const k in headers) {
    const v = headers[k];
    if (SKIP_HEADERS.has(k) || v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) res.writeHeader(k, String(one));
  }
  res.end(body);
}

/**
 * One POST events / batch_events on the fast path: its body read (BodyHandlers), handed to
 * Trigger.handle, answered. The common trigger is answered in the body's last onData call (no promise,
 * no closure but uWS's two callbacks); its local fan-out runs after that call returns, when uWS has
 * sent the corked answer (Trigger.handle).
 */
class TriggerRequest implements BodyHandlers {
  private aborted = false;

  constructor(
    private readonly res: HttpResponse,
    private readonly b: Bridge,
    private readonly route: TriggerRoute,
    private readonly appId: string,
    private readonly path: string,
    private readonly query: string,
    private readonly started: number,
  ) {
    res.onAborted(() => {
      this.aborted = true;
    });
    readBody(res, b.maxRequestBytes, true, this);
  }

  done(body: Buffer): void {
    const signed = signedQuery(this.query);
    const r = this.b.trigger.handle(this.route, { appId: this.appId, method: 'POST', path: this.path, query: signed ?? parseQuery(this.query), signedQuery: signed, rawBody: body });
    // Answered in this call (the body's last onData): written here, sent when uWS uncorks the socket
    // on return, before the events' local fan-out (Trigger.handle).
    if (!(r instanceof Promise)) {
      if (this.aborted) return;
      if (r.headers === OK_HEADERS) this.res.writeStatus(statusLine(r.status)).writeHeader('content-type', OK_HEADERS['content-type']).end(r.body);
      else write(this.res, r.status, r.headers, r.body);
      return;
    }
    r.then(
      (answer) => this.send(answer),
      (err: unknown) => this.failed(err),
    );
  }

  private send(r: TriggerResponse): void {
    if (!this.aborted) reply(this.res, r.status, r.headers, r.body);
  }

  failed(_err?: unknown): void {
    if (!this.aborted) reply(this.res, 500, JSON_HEADERS, internalError());
  }

  tooLarge(): void {
    tooLarge(this.res, this.b.requests, 'POST', this.path, this.started, this.aborted);
  }
}

interface Bridge {
  trigger: Trigger;
  requests: RequestLog;
  maxRequestBytes: number;
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const internalError = () => JSON.stringify(errorBody(500, 'Internal server error'));

/** A body over the cap, answered here before Fastify or the trigger path sees it: logged and counted here too. */
function tooLarge(res: HttpResponse, requests: RequestLog, method: string, path: string, started: number, aborted: boolean): void {
  const reason = 'Request body too large';
  requests.answered(method, path, 413, requests.since(started), reason);
  if (!aborted) reply(res, 413, JSON_HEADERS, JSON.stringify(errorBody(413, reason)));
}

/** `pathPrefix`: the API's paths are under it (Fastify's routes are registered under it too, see api.ts). */
export function attachApi(uws: TemplatedApp, fastify: FastifyInstance, trigger: Trigger, maxRequestBytes: number, requests: RequestLog, pathPrefix: string): void {
  const bridge: Bridge = { trigger, requests, maxRequestBytes };
  uws.any('/*', (res, req) => {
    const started = requests.started();
    const method = req.getCaseSensitiveMethod().toUpperCase();
    const query = req.getQuery();
    const path = req.getUrl();

    // The signature covers the path as sent, prefix included (as Soketi checks it): only the match drops it.
    const fast = method === 'POST' && path.startsWith(pathPrefix) ? TRIGGER_RE.exec(path.slice(pathPrefix.length)) : null;
    if (fast) {
      let appId: string | undefined;
      try {
        appId = decodeURIComponent(fast[1]);
      } catch {
        appId = undefined; // let Fastify answer the odd path
      }
      if (appId !== undefined) {
        new TriggerRequest(res, bridge, fast[2] as TriggerRoute, appId, path, query, started);
        return;
      }
    }

    let aborted = false;
    res.onAborted(() => (aborted = true));
    const fail = () => {
      if (!aborted) reply(res, 500, JSON_HEADERS, internalError());
    };
    // Only Fastify's routes read the headers (uWS's request is gone once this handler returns).
    const headers: Record<string, string> = {};
    req.forEach((k, v) => (headers[k] = v));
    const dispatch = (payload?: Buffer) => {
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
      tooLarge: () => tooLarge(res, requests, method, path, started, aborted),
    });
  });
}
