// pusher-js's HTTP fallback (spec §13) on the uWS port: xhr_streaming and xhr (polling) receive
// requests, xhr_send, and their CORS preflights, under /pusher/app/<key>/<server>/<session>/. A new
// session passes the same admission step as a WebSocket and is then a session like
// any other; its frames go through HttpConnection, broadcasts through HttpFanout.
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { HTTP_PATH_PREFIX, HttpRequestKind, parseSendBody } from '../protocol/http-frames.js';
import type { AdmissionOutcome } from '../session/admission.js';
import type { HandshakeRequest } from '../session/handshake.js';
import { closeSlowConsumer } from '../session/liveness.js';
import { LinkedSession, refuseConnection } from '../session/session.js';
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
export function attachHttpTransport(uws: TemplatedApp, sessions: Sessions, settings: HttpTransportSettings, log: Logger): HttpFanout {
  const transport = new HttpTransport(sessions, settings, log);
  const base = `${settings.pathPrefix}${HTTP_PATH_PREFIX}/app/:key/:server/:session/`;
  const routes: [string, (res: HttpResponse, req: HttpRequest) => void][] = [
    [HttpRequestKind.streaming, (res, req) => transport.receive(res, req, true)],
    [HttpRequestKind.polling, (res, req) => transport.receive(res, req, false)],
    [HttpRequestKind.send, (res, req) => transport.send(res, req)],
  ];
  for (const [kind, handler] of routes) {
    uws.post(base + kind, guarded(handler, log));
    uws.options(base + kind, guarded(preflight, log));
  }
  transport.startHeartbeats();
  return transport.fanout;
}

/** The node's HTTP sessions by path: receive and send requests, a new session's admission, heartbeats. */
class HttpTransport {
  readonly fanout = new HttpFanout();
  private readonly table = new Map<string, HttpConnection>();
  private readonly owner: HttpConnectionOwner;
  private readonly connectionSettings: { graceMs: number; maxBufferedBytes: number };
  private readonly failed = (err: unknown) => this.log.warn({ err }, 'http transport request failed');

  constructor(
    private readonly sessions: Sessions,
    private readonly settings: HttpTransportSettings,
    private readonly log: Logger,
  ) {
    this.owner = {
      closed: (conn, code, by, reason) => sessions.closed(conn.session!, code, by, reason),
      forget: (conn) => {
        if (this.table.get(conn.id) === conn) this.table.delete(conn.id);
      },
      overflowed: (conn) => closeSlowConsumer(conn, conn.session?.app.id, log),
      failed: (err) => log.warn({ err }, 'http session write failed'),
    };
    this.connectionSettings = { graceMs: settings.httpSessionGraceMs, maxBufferedBytes: settings.maxBackpressureBytes };
  }

  /** A streaming or polling receive request: the session's next response, or a new session. */
  receive(res: HttpResponse, req: HttpRequest, streaming: boolean): void {
    const origin = req.getHeader('origin');
    const path = sessionPath(req);
    if (!path) return answer(res, '404 Not Found', corsHeaders(origin), 'Unknown session path');
    const protocol = req.getQuery('protocol') ?? '';
    const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    const receiver = new Receiver(res, streaming, receiveHeaders(origin), Date.now());
    // pusher-js sends no body with a receive request; one is read (and dropped) within the limit.
    readBody(res, this.settings.maxFrameBytes, false, {
      failed: this.failed,
      tooLarge: () => receiver.reject('413 Payload Too Large', 'Request body too large'),
      done: () => {
        if (receiver.done) return;
        const existing = this.table.get(path.id);
        if (existing) return existing.attach(receiver);
        const conn = new HttpConnection(path.id, this.fanout, remoteAddress, origin, this.owner, this.connectionSettings);
        this.table.set(path.id, conn);
        conn.attach(receiver);
        this.admit(conn, { key: decodeKey(path.rawKey), protocol, origin, remoteAddress });
      },
    });
  }

  /**
   * A new session passes the admission step as a WebSocket does (session/admission.ts). Refused clients
   * get the open frame too, so they can be told why (pusher:error and a close frame).
   */
  private admit(conn: HttpConnection, hs: HandshakeRequest): void {
    // Gone: the session's grace period ended while the step waited.
    const outcome = this.sessions.connect(hs, () => conn.forgotten);
    const finish = (o: AdmissionOutcome) => {
      if (o.ok) conn.session = this.sessions.open(new LinkedSession(conn), o.app);
      else refuseConnection(conn, o.code, o.message);
    };
    if (!(outcome instanceof Promise)) return finish(outcome);
    outcome.then(
      (o) => {
        if (conn.forgotten) return void (o.ok && this.sessions.abandon(o.app));
        finish(o);
      },
      (err) => {
        this.log.warn({ err }, 'connection admission failed');
        conn.abandon('503 Service Unavailable', 'Try again');
      },
    );
  }

  /** xhr_send: the client's frames, a JSON array of strings. */
  send(res: HttpResponse, req: HttpRequest): void {
    const headers = corsHeaders(req.getHeader('origin'));
    const path = sessionPath(req);
    const conn = path && this.table.get(path.id);
    if (!conn?.session || conn.closed) return answer(res, '404 Not Found', headers, 'Unknown session');
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const reply = (status: string, text: string) => {
      if (!aborted) res.cork(() => answer(res, status, headers, text));
    };
    readBody(res, this.settings.maxFrameBytes, true, {
      failed: this.failed,
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
          this.sessions.receive(session, f, Buffer.byteLength(f));
        }
        reply('204 No Content', '');
      },
    });
  }

  /** Streams get a heartbeat and waiting polls an answer after a quiet spell; sessions past their grace end. */
  startHeartbeats(): void {
    const heartbeatMs = this.settings.httpHeartbeatMs;
    const sweepMs = Math.min(Math.max(heartbeatMs / 4, 50), 1000);
    const sweep = setInterval(() => {
      const now = Date.now();
      for (const conn of this.table.values()) {
        try {
          conn.heartbeat(now, heartbeatMs);
        } catch (err) {
          this.log.warn({ err }, 'http heartbeat failed');
        }
      }
    }, sweepMs);
    sweep.unref();
  }
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
