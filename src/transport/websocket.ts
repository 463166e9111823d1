// The WebSocket transport on uWebSockets.js: the upgrade (handshake outcome and connection quota),
// one Connection per socket, frames in as text, and broadcasts as native topic publishes.
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { OpenFiles } from '../limits/open-files.js';
import { overCapacity, overQuota, type HandshakeRefusal, type HandshakeRequest } from '../session/handshake.js';
import { refuseConnection, type Session } from '../session/session.js';
import type { Sessions } from '../session/sessions.js';
import type { Connection, Fanout } from './connection.js';

/** uWS user data of one socket. */
interface WsData {
  app?: App;
  /** Set when the handshake must fail (spec §1.2): sent as pusher:error, then close. */
  refusal?: HandshakeRefusal;
  remoteAddress: string;
  origin: string;
  session?: Session;
  conn?: WsConnection;
}

export class WsConnection implements Connection {
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

/** What decides whether there is room for one more connection. */
export interface Capacity {
  /** Undefined where the process's descriptors cannot be counted (no /proc). */
  openFiles?: OpenFiles;
}

/** Serves `/app/<key>` WebSockets on the uWS app; returns the transport's fanout for the hub. */
export function attachWebSockets(uws: TemplatedApp, sessions: Sessions, settings: WebSocketSettings, capacity: Capacity, log: Logger): WsFanout {
  const fanout = new WsFanout(uws);

  function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const url = req.getUrl();
    const m = url.startsWith(settings.pathPrefix) ? /^\/app\/([^/]+)\/?$/.exec(url.slice(settings.pathPrefix.length)) : null;
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
    const secKey = req.getHeader('sec-websocket-key');
    const secProtocol = req.getHeader('sec-websocket-protocol');
    const secExtensions = req.getHeader('sec-websocket-extensions');
    const data: WsData = {
      remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
      origin: req.getHeader('origin'),
    };
    const hs: HandshakeRequest = { key, protocol: req.getQuery('protocol') ?? '', origin: data.origin, remoteAddress: data.remoteAddress };
    const outcome = sessions.handshake(hs);
    // Refused clients still get a socket, so they can be told why (pusher:error + close).
    if (!outcome.ok) return res.upgrade({ ...data, refusal: outcome }, secKey, secProtocol, secExtensions, context);
    data.app = outcome.app;
    // Accepted already (it holds a descriptor), so it can be told to come back later rather than
    // leave the node spinning on accept at the limit (limits/open-files.ts).
    if (capacity.openFiles && !capacity.openFiles.admit()) {
      sessions.refused(hs, overCapacity, outcome.app);
      return res.upgrade({ ...data, refusal: overCapacity }, secKey, secProtocol, secExtensions, context);
    }
    if (outcome.app.maxConnections < 0) return res.upgrade(data, secKey, secProtocol, secExtensions, context);

    // A quota app: the cluster-wide count decides, asynchronously (uWS lets an upgrade wait).
    let aborted = false;
    res.onAborted(() => (aborted = true));
    sessions.admit(outcome.app, hs, () => aborted).then(
      (admitted) => {
        if (aborted) {
          if (admitted) sessions.release(outcome.app);
          return;
        }
        res.cork(() => res.upgrade(admitted ? data : { ...data, refusal: overQuota }, secKey, secProtocol, secExtensions, context));
      },
      (err) => {
        log.warn({ err }, 'connection admission failed');
        if (!aborted) res.cork(() => res.writeStatus('503 Service Unavailable').end('Try again'));
      },
    );
  }

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
        upgrade(res, req, context);
      } catch (err) {
        log.warn({ err }, 'upgrade failed');
        try {
          res.writeStatus('400 Bad Request').end('Bad request');
        } catch {
          // already answered or upgraded
        }
      }
    },
    open: (ws) => {
      const d = ws.getUserData();
      // Only ever after the session closed it, behind a send backlog.
      const closedEarly = (code: number) => {
        if (d.session) sessions.closed(d.session, code, 'server');
      };
      const conn = new WsConnection(ws, fanout, d.remoteAddress, d.origin, closedEarly, settings.pongTimeout * 1000);
      d.conn = conn;
      if (d.refusal) return refuseConnection(conn, d.refusal.code, d.refusal.message);
      d.session = sessions.open(conn, d.app!);
    },
    message: (ws, message) => {
      const d = ws.getUserData();
      // A session closed behind a backlog is over: what its client still sends is not read.
      if (!d.session || d.conn!.closed) return;
      let text: string;
      try {
        // Binary frames are read as UTF-8 JSON too, as Soketi does; invalid UTF-8 is an error.
        text = textDecoder.decode(message);
      } catch {
        sessions.receiveInvalid(d.session, message.byteLength);
        return;
      }
      sessions.receive(d.session, text, message.byteLength);
    },
    drain: (ws) => ws.getUserData().conn?.drained(),
    close: (ws, code) => {
      const d = ws.getUserData();
      // Closed for the session before uWS closed the socket: the server closed it.
      const by = d.conn?.closed ? 'server' : 'client';
      d.conn?.ended();
      if (d.session) sessions.closed(d.session, code, by);
    },
  });
  return fanout;
}
