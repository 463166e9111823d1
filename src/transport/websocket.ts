// The WebSocket transport on uWebSockets.js: the upgrade (the admission step's outcome),
// one session per socket (the session is the socket's Connection: one object per connection),
// frames in as text, and broadcasts as native topic publishes.
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AdmissionOutcome } from '../session/admission.js';
import type { HandshakeRefusal } from '../session/handshake.js';
import { Codes } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import { refuseConnection, Session } from '../session/session.js';
import type { Sessions } from '../session/sessions.js';
import type { Connection, Fanout } from '../hub/connection.js';

/**
 * uWS user data of one socket: only its session (uWS keeps user data as properties of the socket's
 * own object, one slot each). Everything else of the socket is the session's.
 */
interface WsData {
  session: WsSession;
}

/** An admission step that had to wait (an app store asking its source, a quota), and what the client sent meanwhile. */
interface Waiting {
  admission: Promise<AdmissionOutcome>;
  /** Frames the client sent before its admission was decided, read once it opens. */
  early: { text: string; bytes: number }[];
}

/**
 * Frames kept for a client that sends before its admission is decided (pusher-js sends none before
 * connection_established); further ones are refused with a non-fatal pusher:error (spec §3.5).
 */
const MAX_EARLY_FRAMES = 16;

/** A close waiting for the socket's backlog to drain, so that its close frame reaches the client. */
class PendingClose {
  constructor(
    readonly code: number,
    readonly reason: string,
    readonly deadline: NodeJS.Timeout,
  ) {}
}

/** What every socket of the transport shares (on its session class's prototype: see sessionClass). */
interface WsShared {
  fanout: WsFanout;
  sessions: Sessions;
  /** How long a close waits for the backlog (the client's time to catch up, as for a ping). */
  closeWaitMs: number;
}

/** A connection's state: open; closed for the session (by it, or behind a backlog); uWS closed the socket. */
const OPEN = 0;
const CLOSED = 1;
const GONE = 2;

/**
 * One socket's session, from its upgrade on: its admission's outcome until it opens, then the Pusher
 * session (session/session.ts) whose Connection it is itself. Kept small, as it lives as long as the
 * socket: one object per connection, no closure per socket, one state number.
 */
export abstract class WsSession extends Session implements Connection {
  get transport(): string {
    return 'ws';
  }
  get conn(): Connection {
    return this;
  }
  /** set when uWS opens the socket */
  private ws!: WebSocket<WsData>;
  private state = OPEN;
  /**
   * One field for what waits, as the two never overlap: before the session opens, the admission's
   * outcome (or, when it had to wait, the wait); after a close behind a backlog, that close.
   */
  private pending?: App | HandshakeRefusal | Waiting | PendingClose;

  /** What the transport's sockets share: a getter of the transport's own subclass (sessionClass), no field. */
  protected abstract get shared(): WsShared;

  constructor(
    readonly remoteAddress: string,
    readonly origin: string,
  ) {
    super();
  }

  /** Closed for the session: it closed the connection, or the socket went away. */
  override get closed(): boolean {
    return this.state !== OPEN;
  }

  // uWS throws on any access to a closed socket: every call checks first.
  override send(frame: string): void {
    if (this.state === OPEN) this.ws.send(frame, false, false);
  }

  /**
   * uWS writes a close frame behind the bytes already waiting, drops it when they are over
   * maxBackpressure, and cuts the connection a few seconds after end(): a client behind a backlog
   * (a slow consumer above all) would see 1006 instead of the code. So with a backlog the socket
   * leaves its topics (nothing more queues behind it), the session counts it closed now, and the
   * close frame goes out as soon as the backlog has drained, or at the deadline.
   */
  close(code: number, reason: string): void {
    if (this.state !== OPEN) return;
    this.state = CLOSED;
    if (this.ws.getBufferedAmount() === 0) return this.ws.end(code, reason);
    for (const topic of this.ws.getTopics()) this.ws.unsubscribe(topic);
    const deadline = setTimeout(() => this.endPending(), this.shared.closeWaitMs);
    deadline.unref();
    this.pending = new PendingClose(code, reason, deadline);
    // Closed for the session before uWS closes the socket: the server closed it.
    if (this.isEstablished) this.shared.sessions.closed(this, code, 'server');
  }

  /** uWS sent part of the backlog. */
  drained(): void {
    if (this.pending instanceof PendingClose && this.ws.getBufferedAmount() === 0) this.endPending();
  }

  /** uWS closed the socket (either side, or after end()); tells the session, once. */
  ended(code: number, message: ArrayBuffer): void {
    // Closed for the session before uWS closed the socket: the server closed it.
    const by = this.state === CLOSED ? 'server' : 'client';
    this.state = GONE;
    if (this.pending instanceof PendingClose) clearTimeout(this.pending.deadline);
    this.pending = undefined;
    if (this.isEstablished) this.shared.sessions.closed(this, code, by, message);
  }

  private endPending(): void {
    const p = this.pending;
    if (!(p instanceof PendingClose) || this.state === GONE) return;
    clearTimeout(p.deadline);
    this.pending = undefined;
    this.ws.end(p.code, p.reason);
  }

  join(topic: string): void {
    if (this.state === OPEN) this.ws.subscribe(topic);
  }

  leave(topic: string): void {
    // A closed socket has left its topics already.
    if (this.state === OPEN) this.ws.unsubscribe(topic);
  }

  bufferedAmount(): number {
    return this.state === OPEN ? this.ws.getBufferedAmount() : 0;
  }

  /** Publishes to the topic's sockets but this one (uWS leaves the publishing socket out). */
  publishExceptSelf(topic: string, frame: string): void {
    if (this.state !== OPEN) this.shared.fanout.publish(topic, frame);
    else this.ws.publish(topic, frame, false, false);
  }

  /** The upgrade's admission outcome: at once, or a promise when the step had to wait. */
  admitted(outcome: AdmissionOutcome | Promise<AdmissionOutcome>): void {
    if (outcome instanceof Promise) this.pending = { admission: outcome, early: [] };
    else this.pending = outcome.ok ? outcome.app : outcome;
  }

  /** The socket went away before uWS opened it, or while its admission waited. */
  get gone(): boolean {
    return this.state === GONE;
  }

  /** uWS opened the socket: the session opens, the refusal is sent, or the admission is awaited. */
  opened(ws: WebSocket<WsData>, log: Logger): void {
    this.ws = ws;
    const o = this.pending;
    const sessions = this.shared.sessions;
    if (o === undefined || o instanceof PendingClose) return;
    if ('admission' in o) return void o.admission.then((outcome) => this.decided(outcome, o), (err) => this.failed(err, o, log));
    this.pending = undefined;
    if ('code' in o) return refuseConnection(this, o.code, o.message);
    sessions.open(this, o);
  }

  private decided(o: AdmissionOutcome, waiting: Waiting): void {
    if (this.pending === waiting) this.pending = undefined;
    const sessions = this.shared.sessions;
    // The client went away while the step waited: its place (if it got one) goes back.
    if (this.state === GONE) return void (o.ok && sessions.abandon(o.app));
    if (!o.ok) return refuseConnection(this, o.code, o.message);
    sessions.open(this, o.app);
    for (const f of waiting.early) if (this.state === OPEN) sessions.receive(this, f.text, f.bytes);
  }

  private failed(err: unknown, waiting: Waiting, log: Logger): void {
    if (this.pending === waiting) this.pending = undefined;
    log.warn({ err }, 'connection admission failed');
    if (this.state !== GONE) refuseConnection(this, Codes.overCapacity, 'Try again');
  }

  /** A text frame from the client. */
  received(text: string, bytes: number): void {
    // A session closed behind a backlog is over: what its client still sends is not read.
    if (this.state !== OPEN) return;
    if (this.isEstablished) return this.shared.sessions.receive(this, text, bytes);
    const o = this.pending;
    // Still waiting for its admission: kept, in order, for when it opens.
    if (o === undefined || !('admission' in o)) return;
    if (o.early.length >= MAX_EARLY_FRAMES) return this.send(frames.errorFrame(null, 'Frame dropped: sent before pusher:connection_established'));
    o.early.push({ text, bytes });
  }

  /** A frame that is not UTF-8 text. */
  receivedInvalid(bytes: number): void {
    if (this.state === OPEN && this.isEstablished) this.shared.sessions.receiveInvalid(this, bytes);
  }
}

export class WsFanout implements Fanout {
  constructor(private readonly uws: TemplatedApp) {}

  publish(topic: string, frame: string, except?: Connection): void {
    if (except instanceof WsSession) except.publishExceptSelf(topic, frame);
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
  const shared: WsShared = { fanout, sessions, closeWaitMs: settings.pongTimeout * 1000 };
  const Session = sessionClass(shared);
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
        upgrade(res, req, context, shared, Session, settings.pathPrefix);
      } catch (err) {
        log.warn({ err }, 'upgrade failed');
        try {
          res.writeStatus('400 Bad Request').end('Bad request');
        } catch {
          // already answered or upgraded
        }
      }
    },
    open: (ws) => ws.getUserData().session.opened(ws, log),
    message: (ws, message) => received(ws.getUserData().session, message),
    drain: (ws) => ws.getUserData().session.drained(),
    close: (ws, code, message) => ws.getUserData().session.ended(code, message),
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
function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t, shared: WsShared, Session: SessionClass, pathPrefix: string): void {
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
  const session = new Session(sameAsLast.address(Buffer.from(res.getRemoteAddressAsText()).toString()), sameAsLast.origin(req.getHeader('origin')));
  session.admitted(shared.sessions.connect({ key, protocol: req.getQuery('protocol') ?? '', origin: session.origin, remoteAddress: session.remoteAddress }, () => session.gone));
  const data: WsData = { session };
  res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
}

type SessionClass = new (remoteAddress: string, origin: string) => WsSession;

/**
 * The transport's session class: what its sockets share is returned by a getter on the class's
 * prototype, so a session (one per connection) holds no reference to it.
 */
function sessionClass(shared: WsShared): SessionClass {
  return class TransportWsSession extends WsSession {
    protected get shared(): WsShared {
      return shared;
    }
  };
}

/**
 * A string equal to the previous connection's is replaced by that one, so connections that share it
 * hold one copy: the Origin of a site's pages, and the address of a proxy in front of the node (or of a
 * load generator) - each connection keeps both for as long as it lives. (Not one object for the pair:
 * a client connecting directly has an address of its own, and would then cost an object more.)
 */
function lastOne(): (value: string) => string {
  let last = '';
  return (value) => (value === last ? last : (last = value));
}
const sameAsLast = { address: lastOne(), origin: lastOne() };

function received(conn: WsSession, message: ArrayBuffer): void {
  if (conn.closed) return;
  let text: string;
  try {
    // Binary frames are read as UTF-8 JSON too, as Soketi does; invalid UTF-8 is an error.
    text = textDecoder.decode(message);
  } catch {
    return conn.receivedInvalid(message.byteLength);
  }
  conn.received(text, message.byteLength);
}
