// The WebSocket transport on uWebSockets.js: the upgrade (the admission step's outcome),
// one Connection per socket, frames in as text, and broadcasts as native topic publishes.
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AdmissionOutcome } from '../session/admission.js';
import type { HandshakeRefusal } from '../session/handshake.js';
import { Codes } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import { refuseConnection, type Session } from '../session/session.js';
import type { Sessions } from '../session/sessions.js';
import type { Connection, Fanout } from '../hub/connection.js';

/** uWS user data of one socket. */
interface WsData {
  app?: App;
  /** Set when the handshake must fail (spec §1.2): sent as pusher:error, then close. */
  refusal?: HandshakeRefusal;
  /** The admission step's answer when it had to wait (an app store asking its source, a quota). */
  admission?: Promise<AdmissionOutcome>;
  /** Frames the client sent before its admission was decided, read once it opens. */
  early?: { text: string; bytes: number }[];
  /** The socket closed (before its admission was decided, for a waiting one). */
  gone?: boolean;
  remoteAddress: string;
  origin: string;
  session?: Session;
  conn?: WsConnection;
}

/**
 * Frames kept for a client that sends before its admission is decided (pusher-js sends none before
 * connection_established); further ones are refused with a non-fatal pusher:error (spec §3.5).
 */
const MAX_EARLY_FRAMES = 16;

export class WsConnection implements Connection {
  get transport(): string {
    return 'ws';
  }
  /** Closed for the session: it closed the connection, or the socket went away. */
  closed = false;
  /** uWS closed the socket: it throws on any further access. */
  private gone = false;
  /** A close waiting for the socket's backlog to drain, so that its close frame reaches the client. */
  private pendingClose?: { code: number; reason: string; deadline: NodeJS.Timeout };

  constructor(
    private readonly ws: WebSocket<WsData>,
    readonly fanout: WsFanout,
    readonly remoteAddress: string,
    readonly origin: string,
    /** Tells the session layer the connection is closed, when that happens before uWS closes the socket. */
    private readonly closedEarly: (code: number) => void,
    /** How long a close waits for the backlog (the client's time to catch up, as for a ping). */
    private readonly closeWaitMs: number,
  ) {}

  // uWS throws on any access to a closed socket: every call checks first.
  send(frame: string): void {
    if (!this.closed) this.ws.send(frame, false, false);
  }

  /**
   * uWS writes a close frame behind the bytes already waiting, drops it when they are over
   * maxBackpressure, and cuts the connection a few seconds after end(): a client behind a backlog
   * (a slow consumer above all) would see 1006 instead of the code. So with a backlog the socket
   * leaves its topics (nothing more queues behind it), the session counts it closed now, and the
   * close frame goes out as soon as the backlog has drained, or at the deadline.
   */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ws.getBufferedAmount() === 0) return this.ws.end(code, reason);
    for (const topic of this.ws.getTopics()) this.ws.unsubscribe(topic);
    const deadline = setTimeout(() => this.endPending(), this.closeWaitMs);
    deadline.unref();
    this.pendingClose = { code, reason, deadline };
    this.closedEarly(code);
  }

  /** uWS sent part of the backlog. */
  drained(): void {
    if (this.pendingClose && this.ws.getBufferedAmount() === 0) this.endPending();
  }

  /** uWS closed the socket (either side, or after end()). */
  ended(): void {
    this.gone = true;
    this.closed = true;
    if (this.pendingClose) clearTimeout(this.pendingClose.deadline);
    this.pendingClose = undefined;
  }

  private endPending(): void {
    const p = this.pendingClose;
    if (!p || this.gone) return;
    clearTimeout(p.deadline);
    this.pendingClose = undefined;
    this.ws.end(p.code, p.reason);
  }

  join(topic: string): void {
    if (!this.closed) this.ws.subscribe(topic);
  }

  leave(topic: string): void {
    // A closed socket has left its topics already.
    if (!this.closed) this.ws.unsubscribe(topic);
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  /** Publishes to the topic's sockets but this one (uWS leaves the publishing socket out). */
  publishExceptSelf(topic: string, frame: string): void {
    if (this.closed) this.fanout.publish(topic, frame);
    else this.ws.publish(topic, frame, false, false);
  }
}

export class WsFanout implements Fanout {
  constructor(private readonly uws: TemplatedApp) {}

  publish(topic: string, frame: string, except?: Connection): void {
    if (except instanceof WsConnection) except.publishExceptSelf(topic, frame);
    else this.uws.publish(topic, frame, false, false);
  }
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

export interface WebSocketSettings {
  maxFrameBytes: number;
  maxBackpressureBytes: number;
  /** seconds a client has to answer a ping; a close behind a backlog waits as long for it to drain */
  pongTimeout: number;
  /** every path is under this ('' or `/ws`: config pathPrefix) */
  pathPrefix: string;
}

/** Serves `/app/<key>` WebSockets on the uWS app; returns the transport's fanout for the hub. */
export function attachWebSockets(uws: TemplatedApp, sessions: Sessions, settings: WebSocketSettings, log: Logger): WsFanout {
  const fanout = new WsFanout(uws);
  uws.ws<WsData>('/*', {
    // Liveness is ours (pusher:ping, close 4201), not uWS's idle timer (spec §1.6).
    idleTimeout: 0,
    sendPingsAutomatically: false,
    maxPayloadLength: settings.maxFrameBytes,
    // Over this, uWS skips the socket in broadcasts and sends; liveness then closes it (slow consumer).
    maxBackpressure: settings.maxBackpressureBytes,
    upgrade: (res, req, context) => {
      // An exception escaping a uWS handler aborts the process: contain it here.
      try {
        upgrade(res, req, context, sessions, settings.pathPrefix);
      } catch (err) {
        log.warn({ err }, 'upgrade failed');
        try {
          res.writeStatus('400 Bad Request').end('Bad request');
        } catch {
          // already answered or upgraded
        }
      }
    },
    open: (ws) => opened(ws, sessions, fanout, settings, log),
    message: (ws, message) => received(ws, message, sessions),
    drain: (ws) => ws.getUserData().conn?.drained(),
    close: (ws, code, message) => {
      const d = ws.getUserData();
      d.gone = true;
      // Closed for the session before uWS closed the socket: the server closed it.
      const by = d.conn?.closed ? 'server' : 'client';
      d.conn?.ended();
      if (d.session) sessions.closed(d.session, code, by, message);
    },
  });
  return fanout;
}

/**
 * The HTTP upgrade: the admission step decides (session/admission.ts). Refused clients still get a
 * socket, so they can be told why (pusher:error, then close). The upgrade itself never waits: when
 * the step must (an app store asking its database, a quota counted cluster-wide), the socket opens at
 * once and learns its outcome when the step answers. (An upgrade deferred to a promise callback goes
 * through uWS's cork-then-upgrade path, which in uWS 20.30 can read the finished HTTP response's
 * state from the new WebSocket's memory and shut the socket down right after the 101.)
 */
function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t, sessions: Sessions, pathPrefix: string): void {
  const url = req.getUrl();
  const m = url.startsWith(pathPrefix) ? /^\/app\/([^/]+)\/?$/.exec(url.slice(pathPrefix.length)) : null;
  if (!m) {
    res.writeStatus('404 Not Found').end('Not found');
    return;
  }
  let key: string;
  try {
    key = decodeURIComponent(m[1]);
  } catch {
    key = m[1]; // a malformed escape: no app has that key, so the client is told 4001
  }
  const data: WsData = { remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(), origin: req.getHeader('origin') };
  const outcome = sessions.connect({ key, protocol: req.getQuery('protocol') ?? '', origin: data.origin, remoteAddress: data.remoteAddress }, () => data.gone === true);
  if (outcome instanceof Promise) data.admission = outcome;
  else if (outcome.ok) data.app = outcome.app;
  else data.refusal = outcome;
  res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
}

function opened(ws: WebSocket<WsData>, sessions: Sessions, fanout: WsFanout, settings: WebSocketSettings, log: Logger): void {
  const d = ws.getUserData();
  // Only ever after the session closed it, behind a send backlog.
  const closedEarly = (code: number) => {
    if (d.session) sessions.closed(d.session, code, 'server');
  };
  const conn = new WsConnection(ws, fanout, d.remoteAddress, d.origin, closedEarly, settings.pongTimeout * 1000);
  d.conn = conn;
  if (d.refusal) return refuseConnection(conn, d.refusal.code, d.refusal.message);
  if (d.app) return void (d.session = sessions.open(conn, d.app));
  d.admission!.then(
    (o) => {
      // The client went away while the step waited: its place (if it got one) goes back.
      if (d.gone) return void (o.ok && sessions.abandon(o.app));
      if (!o.ok) return refuseConnection(conn, o.code, o.message);
      const session = (d.session = sessions.open(conn, o.app));
      for (const f of d.early ?? []) if (!conn.closed) sessions.receive(session, f.text, f.bytes);
      d.early = undefined;
    },
    (err) => {
      log.warn({ err }, 'connection admission failed');
      if (!d.gone) refuseConnection(conn, Codes.overCapacity, 'Try again');
    },
  );
}

function received(ws: WebSocket<WsData>, message: ArrayBuffer, sessions: Sessions): void {
  const d = ws.getUserData();
  // A session closed behind a backlog is over: what its client still sends is not read.
  if (d.conn!.closed) return;
  let text: string;
  try {
    // Binary frames are read as UTF-8 JSON too, as Soketi does; invalid UTF-8 is an error.
    text = textDecoder.decode(message);
  } catch {
    if (d.session) sessions.receiveInvalid(d.session, message.byteLength);
    return;
  }
  if (d.session) return sessions.receive(d.session, text, message.byteLength);
  // Still waiting for its admission: kept, in order, for when it opens.
  if (!d.admission) return;
  d.early ??= [];
  if (d.early.length >= MAX_EARLY_FRAMES) return d.conn!.send(frames.errorFrame(null, 'Frame dropped: sent before pusher:connection_established'));
  d.early.push({ text, bytes: message.byteLength });
}
