// The WebSocket side of a node: handshake, per-socket state, frame dispatch, liveness and shutdown.
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t } from 'uWebSockets.js';
import type { AppRegistry } from '../apps/registry.js';
import type { Config } from '../config/schema.js';
import { Codes, Events, CLIENT_EVENT_PREFIX, SUPPORTED_PROTOCOL_MAX, SUPPORTED_PROTOCOL_MIN } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import { dataObject, parseClientFrame } from '../protocol/parse.js';
import { send, type GatewayContext, type Socket } from './context.js';
import type { SocketData } from './socket-data.js';
import { newSocketId } from './socket-id.js';
import { subscribe, unsubscribe } from './subscriptions.js';
import { clientEvent } from './client-events.js';
import { signin, signout } from './signin.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Quotas } from '../limits/quotas.js';

const textDecoder = new TextDecoder('utf-8', { fatal: true });

export class Gateway {
  /** appId → live sockets of that app on this node */
  private connections = new Map<string, number>();
  /** `${appId}\n${userId}` → signed-in sockets on this node */
  private users = new Map<string, Set<Socket>>();
  private sweepTimer?: NodeJS.Timeout;
  private draining = false;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly registry: AppRegistry,
    private readonly config: Readonly<Config>,
    private readonly metrics: Metrics,
    private readonly quotas: Quotas,
  ) {
    metrics.setConnectionsSource(() => this.connections);
  }

  attach(uws: TemplatedApp): void {
    uws.ws<SocketData>('/*', {
      // Liveness is ours (pusher:ping, close 4201), not uWS's idle timer (spec §1.6).
      idleTimeout: 0,
      sendPingsAutomatically: false,
      maxPayloadLength: this.config.maxFrameBytes,
      // Over this, uWS skips the socket in broadcasts; the sweep then closes it (slow consumer).
      maxBackpressure: this.config.maxBackpressureBytes,
      upgrade: (res, req, context) => {
        // An exception escaping a uWS handler aborts the process: contain it here.
        try {
          this.upgrade(res, req, context);
        } catch (err) {
          this.ctx.log.warn({ err }, 'upgrade failed');
          try {
            res.writeStatus('400 Bad Request').end('Bad request');
          } catch {
            // already answered or upgraded
          }
        }
      },
      open: (ws) => this.open(ws),
      message: (ws, message, isBinary) => this.message(ws, message, isBinary),
      close: (ws, code) => this.close(ws, code),
    });
    const periodMs = Math.min(Math.max((Math.min(this.config.activityTimeout, this.config.pongTimeout) * 1000) / 4, 100), 1000);
    this.sweepTimer = setInterval(() => this.sweep(), periodMs);
    this.sweepTimer.unref();
  }

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const url = req.getUrl();
    const m = /^\/app\/([^/]+)\/?$/.exec(url);
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
    const protocolParam = req.getQuery('protocol');
    const secKey = req.getHeader('sec-websocket-key');
    const secProtocol = req.getHeader('sec-websocket-protocol');
    const secExtensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const app = this.registry.findByKey(key);
    let reject: SocketData['reject'];
    if (!app) reject = { code: Codes.appNotFound, message: `App key ${key} does not exist.` };
    else if (!app.enabled) reject = { code: Codes.appDisabled, message: 'The app is disabled.' };
    else if (app.allowedOrigins.length > 0 && !app.allowedOrigins.includes('*') && !app.allowedOrigins.includes(origin)) {
      reject = { code: Codes.unauthorized, message: `The origin ${origin || '(none)'} is not allowed to connect.` };
    }
    else if (this.draining) reject = { code: Codes.reconnectNow, message: 'Server is shutting down, reconnect.' };
    else if (protocolParam) {
      // A missing protocol is accepted as 7; anything else outside 4..7 is refused (spec §1.2).
      const p = Number(protocolParam);
      if (!Number.isInteger(p) || p < SUPPORTED_PROTOCOL_MIN || p > SUPPORTED_PROTOCOL_MAX) {
        reject = { code: Codes.unsupportedProtocol, message: `Unsupported protocol version ${protocolParam}` };
      }
    }
    if (!reject && app && app.maxConnections >= 0 && this.clusterConnections(app.id) >= app.maxConnections) {
      reject = { code: Codes.overConnectionQuota, message: 'Application is over connection quota' };
    }
    const now = Date.now();
    const data: SocketData = {
      // An unknown key still gets a socket, so the client can be told why (pusher:error + close).
      app: app ?? this.registry.all()[0],
      socketId: '',
      reject,
      channels: new Map(),
      closed: false,
      lastSeen: now,
      pingSentAt: 0,
      rateWindowStart: now,
      rateCount: 0,
    };
    res.upgrade(data, secKey, secProtocol, secExtensions, context);
  }

  private open(ws: Socket): void {
    const d = ws.getUserData();
    if (d.reject) {
      ws.send(frames.errorFrame(d.reject.code, d.reject.message), false, false);
      ws.end(d.reject.code, d.reject.message);
      return;
    }
    const app = d.app;
    // The upgrade checked the quota; opens racing past it are caught here.
    if (app.maxConnections >= 0 && this.clusterConnections(app.id) >= app.maxConnections) {
      d.reject = { code: Codes.overConnectionQuota, message: 'Application is over connection quota' };
      ws.send(frames.errorFrame(d.reject.code, d.reject.message), false, false);
      ws.end(d.reject.code, d.reject.message);
      return;
    }
    this.connections.set(app.id, (this.connections.get(app.id) ?? 0) + 1);
    this.metrics.connects.inc({ app: app.id });
    d.socketId = newSocketId();
    this.ctx.hub.register(d.socketId, ws);
    if (app.enableUserAuthentication) {
      d.signinTimer = setTimeout(() => {
        if (d.closed || d.user) return;
        ws.send(frames.errorFrame(Codes.unauthorized, 'Connection not authorized within timeout.'), false, false);
        ws.end(Codes.unauthorized, 'Connection not authorized within timeout.');
      }, app.userAuthenticationTimeout);
    }
    ws.send(frames.connectionEstablished(d.socketId, this.config.activityTimeout), false, false);
  }

  private message(ws: Socket, message: ArrayBuffer, _isBinary: boolean): void {
    const d = ws.getUserData();
    if (d.reject) return;
    this.metrics.hot.messagesIn++;
    this.metrics.hot.bytesIn += message.byteLength;
    const now = Date.now();
    d.lastSeen = now;
    d.pingSentAt = 0;
    let text: string;
    try {
      // Binary frames are read as UTF-8 JSON too, as Soketi does; invalid UTF-8 is an error.
      text = textDecoder.decode(message);
    } catch {
      send(ws, frames.errorFrame(null, 'Frames must be UTF-8 JSON text'));
      return;
    }
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      send(ws, frames.errorFrame(null, parsed.message));
      return;
    }
    const frame = parsed.frame;
    try {
      this.dispatch(ws, frame, now);
    } catch (err) {
      // One bad frame must never take the process or other sockets down.
      this.ctx.log.error({ err, app: d.app.id, event: frame.event }, 'frame handler failed');
      send(ws, frames.errorFrame(null, 'Internal error handling the frame'));
    }
  }

  private dispatch(ws: Socket, frame: import('../protocol/parse.js').ClientFrame, now: number): void {
    switch (frame.event) {
      case Events.ping:
        send(ws, frames.pongFrame);
        return;
      case Events.pong:
        return;
      case Events.subscribe: {
        const data = dataObject(frame.data);
        if (!data) return send(ws, frames.errorFrame(null, 'pusher:subscribe needs a data object'));
        return subscribe(this.ctx, ws, data);
      }
      case Events.unsubscribe: {
        const data = dataObject(frame.data);
        if (!data || typeof data.channel !== 'string') return send(ws, frames.errorFrame(null, 'pusher:unsubscribe needs a channel'));
        return unsubscribe(this.ctx, ws, ws.getUserData(), data.channel);
      }
      case Events.signin: {
        const data = dataObject(frame.data);
        if (!data) return send(ws, frames.errorFrame(null, 'pusher:signin needs a data object'));
        const before = ws.getUserData().user;
        signin(this.ctx, ws, data);
        const d = ws.getUserData();
        if (!before && d.user) this.addUser(ws, d.app.id, d.user.id);
        return;
      }
      default:
        if (frame.event.startsWith(CLIENT_EVENT_PREFIX)) return clientEvent(this.ctx, ws, frame, now);
        send(ws, frames.errorFrame(null, `Unsupported event ${frame.event}`));
    }
  }

  private close(ws: Socket, code: number): void {
    const d = ws.getUserData();
    d.closed = true;
    if (d.signinTimer) clearTimeout(d.signinTimer);
    if (d.reject) return;
    this.metrics.disconnects.inc({ app: d.app.id, code: String(code) });
    this.connections.set(d.app.id, (this.connections.get(d.app.id) ?? 1) - 1);
    this.ctx.hub.unregister(d.socketId);
    for (const channel of [...d.channels.keys()]) unsubscribe(this.ctx, undefined, d, channel);
    if (d.user) {
      this.removeUser(ws, d.app.id, d.user.id);
      signout(this.ctx, d);
    }
  }

  private addUser(ws: Socket, appId: string, userId: string): void {
    const k = `${appId}\n${userId}`;
    let set = this.users.get(k);
    if (!set) this.users.set(k, (set = new Set()));
    set.add(ws);
  }

  private removeUser(ws: Socket, appId: string, userId: string): void {
    const k = `${appId}\n${userId}`;
    const set = this.users.get(k);
    if (set && set.delete(ws) && set.size === 0) this.users.delete(k);
  }

  /** Closes this node's sockets signed in as the user (spec §4.9). */
  terminateUser(appId: string, userId: string): void {
    for (const ws of [...(this.users.get(`${appId}\n${userId}`) ?? [])]) {
      if (ws.getUserData().closed) continue;
      ws.send(frames.errorFrame(Codes.unauthorized, 'You got disconnected by the app.'), false, false);
      ws.end(Codes.unauthorized, 'You got disconnected by the app.');
    }
  }

  /**
   * pusher:ping idle sockets; close the ones that did not answer in time with 4201 (spec §1.6), and
   * slow consumers with 4100 (back off and reconnect), so one stuck reader cannot grow the heap.
   */
  private sweep(): void {
    const now = Date.now();
    const idleMs = this.config.activityTimeout * 1000;
    const pongMs = this.config.pongTimeout * 1000;
    const maxBuffered = this.config.maxBackpressureBytes;
    for (const ws of [...this.ctx.hub.allSockets()]) {
      const d = ws.getUserData();
      if (d.closed) continue;
      if (ws.getBufferedAmount() >= maxBuffered) {
        this.ctx.log.info({ app: d.app.id, buffered: ws.getBufferedAmount() }, 'closing slow consumer');
        ws.end(Codes.overCapacity, 'Slow consumer: too many messages waiting to be sent');
        continue;
      }
      if (d.pingSentAt) {
        if (now - d.pingSentAt >= pongMs) ws.end(Codes.pongNotReceived, 'Pong reply not received');
      } else if (now - d.lastSeen >= idleMs) {
        d.pingSentAt = now;
        ws.send(frames.pingFrame, false, false);
      }
    }
  }

  /** This node's connections of the app plus the other nodes' last reported ones. */
  private clusterConnections(appId: string): number {
    return (this.connections.get(appId) ?? 0) + this.quotas.remoteConnections(appId);
  }

  /** Live connections per app on this node. */
  localConnections(): Map<string, number> {
    return this.connections;
  }

  connectionCount(appId?: string): number {
    if (appId !== undefined) return this.connections.get(appId) ?? 0;
    let n = 0;
    for (const v of this.connections.values()) n += v;
    return n;
  }

  /** Refuses new connections and closes every socket with 4200 so clients reconnect elsewhere. */
  drain(): void {
    this.draining = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const ws of [...this.ctx.hub.allSockets()]) {
      if (!ws.getUserData().closed) ws.end(Codes.reconnectNow, 'Server is shutting down');
    }
  }

}
