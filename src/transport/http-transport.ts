// pusher-js's HTTP fallback (spec §13) on the uWS port: xhr_streaming and xhr (polling) receive
// requests, xhr_send, and their CORS preflights, under /pusher/app/<key>/<server>/<session>/. A new
// session passes the same handshake and connection quota as a WebSocket and is then a session like
// any other; its frames go through HttpConnection, broadcasts through HttpFanout.
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { OpenFiles } from '../limits/open-files.js';
import { HTTP_PATH_PREFIX, HttpRequestKind, parseSendBody } from '../protocol/http-frames.js';
import { overCapacity, overQuota, type HandshakeRequest } from '../session/handshake.js';
import { closeSlowConsumer } from '../session/liveness.js';
import { refuseConnection } from '../session/session.js';
import type { Sessions } from '../session/sessions.js';
import { HttpConnection, HttpFanout, type HttpConnectionOwner } from './http-connection.js';
import { Receiver, type Headers } from './http-receiver.js';
import { readBody } from './request-body.js';

export interface HttpTransportSettings {
  /** ms a session without a receive request is kept (rotation, the gap between two polls) */
  httpSessionGraceMs: number;
  /** ms of quiet after which a stream gets a heartbeat and a waiting poll is answered with one */
  httpHeartbeatMs: number;
  /** bytes a session may have waiting; the same limit as a WebSocket's */
  maxBackpressureBytes: number;
  /** largest xhr_send body, the same limit as a WebSocket frame's */
  maxFrameBytes: number;
  /** every path is under this ('' or `/ws`: config pathPrefix) */
  pathPrefix: string;
}

/** pusher-js's `<server>` (0-999) and `<session>` (8 base-32 characters) path segments, with room to spare. */
const SESSION_SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
const textDecoder = new TextDecoder('utf-8', { fatal: true });

interface SessionPath {
  /** The app key as sent (percent-encoded). */
  rawKey: string;
  id: string;
}

/** Serves the HTTP transports on the uWS app; returns their fanout for the hub. Register before any catch-all route. */
export function attachHttpTransport(uws: TemplatedApp, sessions: Sessions, settings: HttpTransportSettings, capacity: { openFiles?: OpenFiles }, log: Logger): HttpFanout {
  const fanout = new HttpFanout();
  const table = new Map<string, HttpConnection>();
  const owner: HttpConnectionOwner = {
    closed: (conn, code, by) => sessions.closed(conn.session!, code, by),
    forget: (conn) => {
      if (table.get(conn.id) === conn) table.delete(conn.id);
    },
    overflowed: (conn) => closeSlowConsumer(conn, conn.session?.app.id, log),
    failed: (err) => log.warn({ err }, 'http session write failed'),
  };
  const connectionSettings = { graceMs: settings.httpSessionGraceMs, maxBufferedBytes: settings.maxBackpressureBytes };
  const failed = (err: unknown) => log.warn({ err }, 'http transport request failed');

  function receive(res: HttpResponse, req: HttpRequest, streaming: boolean): void {
    const origin = req.getHeader('origin');
    const path = sessionPath(req);
    if (!path) return answer(res, '404 Not Found', corsHeaders(origin), 'Unknown session path');
    const protocol = req.getQuery('protocol') ?? '';
    const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    const receiver = new Receiver(res, streaming, receiveHeaders(origin), Date.now());
    // pusher-js sends no body with a receive request; one is read (and dropped) within the limit.
    readBody(res, settings.maxFrameBytes, false, {
      failed,
      tooLarge: () => receiver.reject('413 Payload Too Large', 'Request body too large'),
      done: () => {
        if (receiver.done) return;
        const existing = table.get(path.id);
        if (existing) return existing.attach(receiver);
        const conn = new HttpConnection(path.id, fanout, remoteAddress, origin, owner, connectionSettings);
        table.set(path.id, conn);
        conn.attach(receiver);
        handshake(conn, { key: decodeKey(path.rawKey), protocol, origin, remoteAddress });
      },
    });
  }

  function handshake(conn: HttpConnection, hs: HandshakeRequest): void {
    const outcome = sessions.handshake(hs);
    // Refused clients get the open frame too, so they can be told why (pusher:error + close frame).
    if (!outcome.ok) return refuseConnection(conn, outcome.code, outcome.message);
    const app = outcome.app;
    // As for a WebSocket: the open-file reserve stays free (limits/open-files.ts).
    if (capacity.openFiles && !capacity.openFiles.admit()) {
      sessions.refused(hs, overCapacity, app);
      return refuseConnection(conn, overCapacity.code, overCapacity.message);
    }
    if (app.maxConnections < 0) return open(conn, app);
    // Gone: the session's grace period ended while the quota was counted.
    sessions.admit(app, hs, () => conn.forgotten).then(
      (admitted) => {
        if (conn.forgotten) {
          if (admitted) sessions.release(app);
        } else if (admitted) open(conn, app);
        else refuseConnection(conn, overQuota.code, overQuota.message);
      },
      (err) => {
        log.warn({ err }, 'connection admission failed');
        conn.abandon('503 Service Unavailable', 'Try again');
      },
    );
  }

  function open(conn: HttpConnection, app: App): void {
    conn.session = sessions.open(conn, app);
  }

  function send(res: HttpResponse, req: HttpRequest): void {
    const headers = corsHeaders(req.getHeader('origin'));
    const path = sessionPath(req);
    const conn = path && table.get(path.id);
    if (!conn?.session || conn.closed) return answer(res, '404 Not Found', headers, 'Unknown session');
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const reply = (status: string, text: string) => {
      if (!aborted) res.cork(() => answer(res, status, headers, text));
    };
    readBody(res, settings.maxFrameBytes, true, {
      failed,
      tooLarge: () => reply('413 Payload Too Large', 'Request body too large'),
      done: (body) => {
        let frames: string[] | undefined;
        try {
          frames = parseSendBody(textDecoder.decode(body));
        } catch {
          frames = undefined; // not UTF-8
        }
        if (!frames) return reply('400 Bad Request', 'xhr_send takes a JSON array of strings (Pusher frames)');
        const session = conn.session;
        if (!session || conn.closed) return reply('404 Not Found', 'Unknown session');
        if (frames.length === 0) conn.clientHeartbeat(Date.now());
        for (const f of frames) {
          if (conn.closed) break;
          sessions.receive(session, f, Buffer.byteLength(f));
        }
        reply('204 No Content', '');
      },
    });
  }

  const base = `${settings.pathPrefix}${HTTP_PATH_PREFIX}/app/:key/:server/:session/`;
  const routes: [string, (res: HttpResponse, req: HttpRequest) => void][] = [
    [HttpRequestKind.streaming, (res, req) => receive(res, req, true)],
    [HttpRequestKind.polling, (res, req) => receive(res, req, false)],
    [HttpRequestKind.send, send],
  ];
  for (const [kind, handler] of routes) {
    uws.post(base + kind, guarded(handler, log));
    uws.options(base + kind, guarded(preflight, log));
  }

  const sweepMs = Math.min(Math.max(settings.httpHeartbeatMs / 4, 50), 1000);
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const conn of table.values()) {
      try {
        conn.heartbeat(now, settings.httpHeartbeatMs);
      } catch (err) {
        log.warn({ err }, 'http heartbeat failed');
      }
    }
  }, sweepMs);
  sweep.unref();
  return fanout;
}

function sessionPath(req: HttpRequest): SessionPath | undefined {
  const rawKey = req.getParameter(0);
  const server = req.getParameter(1);
  const session = req.getParameter(2);
  if (!rawKey || !SESSION_SEGMENT.test(server) || !SESSION_SEGMENT.test(session)) return undefined;
  return { rawKey, id: `${rawKey}/${server}/${session}` };
}

function decodeKey(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // a malformed escape: no app has that key, so the client is told 4001
  }
}

/** pusher-js's requests are cross-origin POSTs with Content-Type: application/json, so CORS applies. */
function corsHeaders(origin: string): Headers {
  if (!origin) return [['access-control-allow-origin', '*']];
  return [
    ['access-control-allow-origin', origin],
    ['access-control-allow-credentials', 'true'],
    ['vary', 'Origin'],
  ];
}

function receiveHeaders(origin: string): Headers {
  return [['content-type', 'application/javascript; charset=UTF-8'], ['cache-control', 'no-store'], ...corsHeaders(origin)];
}

/**
 * Every origin may ask: an origin the app does not allow is refused by the handshake (4009 in a close
 * frame), which pusher-js can only read when the browser lets it see the answer.
 */
function preflight(res: HttpResponse, req: HttpRequest): void {
  const headers: Headers = [
    ...corsHeaders(req.getHeader('origin')),
    ['access-control-allow-methods', 'OPTIONS, POST'],
    ['access-control-allow-headers', req.getHeader('access-control-request-headers') || 'Content-Type'],
    ['access-control-max-age', '7200'],
  ];
  answer(res, '204 No Content', headers, '');
}

function answer(res: HttpResponse, status: string, headers: Headers, text: string): void {
  res.writeStatus(status);
  for (const [k, v] of headers) res.writeHeader(k, v);
  res.end(text);
}

/** An exception escaping a uWS handler aborts the process: contain it and answer 500 when still possible. */
function guarded(handler: (res: HttpResponse, req: HttpRequest) => void, log: Logger): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    try {
      handler(res, req);
    } catch (err) {
      log.warn({ err }, 'http transport request failed');
      try {
        answer(res, '500 Internal Server Error', [], 'Internal error');
      } catch {
        // already answered, or waiting with an abort handler
      }
    }
  };
}
