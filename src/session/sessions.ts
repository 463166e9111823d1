// The node's live sessions, for every transport: opening one (socket id, connection_established,
// sign-in deadline), the frames it sends (dispatch by event), closing it, terminate_connections,
// drain, and the counts metrics read. Transports call in here; the session logic never sees them.
// Every connection's open and close, and every refused one, is logged here at debug level.
import type { Logger } from 'pino';
import type { App } from '../apps/app.js';
import type { AppRegistry } from '../apps/registry.js';
import type { NodeCommand, NodeCommandHandler } from '../backbone/backbone.js';
import type { Channels } from '../channels/channels.js';
import type { Hub } from '../hub/hub.js';
import type { ConnectionCensus } from '../limits/connection-census.js';
import type { Metrics } from '../metrics/metrics.js';
import { CLIENT_EVENT_PREFIX, Codes, Events } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import { dataObject, parseClientFrame, type ClientFrame } from '../protocol/parse.js';
import type { Connection } from '../transport/connection.js';
import type { WebhookSink } from '../webhooks/sink.js';
import { clientEvent } from './client-events.js';
import { Handshake, overQuota, type HandshakeOutcome, type HandshakeRefusal, type HandshakeRequest } from './handshake.js';
import { Liveness, type LivenessSettings } from './liveness.js';
import { Session } from './session.js';
import { signin } from './signin.js';
import { newSocketId } from './socket-id.js';
import { subscribe, unsubscribe } from './subscribe.js';
import { UserIndex } from './user-index.js';

/** What the frame handlers (subscribe, sign-in, client events) work with. */
export interface SessionDeps {
  channels: Channels;
  webhooks: WebhookSink;
  metrics: Metrics;
  log: Logger;
}

export interface SessionsOptions extends SessionDeps {
  registry: AppRegistry;
  hub: Hub;
  census: ConnectionCensus;
  settings: LivenessSettings;
}

/** Who closed a connection: ripple (a refusal, a timeout, a drain...), or the client or its network. */
export type ClosedBy = 'server' | 'client';

/**
 * A client that just dropped a connection on one node and opens one on another at once can be
 * counted before the first node has seen the drop and freed the place (a few milliseconds). So a
 * refusal is confirmed on these later counts before the client is told 4004.
 */
const QUOTA_RECHECKS_MS = [50, 100, 200];

export class Sessions implements NodeCommandHandler {
  private readonly bySocketId = new Map<string, Session>();
  /** appId → live sessions of that app on this node */
  private readonly perApp = new Map<string, number>();
  private readonly users = new UserIndex();
  private readonly handshakes: Handshake;
  private readonly liveness: Liveness;
  private readonly deps: SessionDeps;

  constructor(private readonly o: SessionsOptions) {
    this.deps = { channels: o.channels, webhooks: o.webhooks, metrics: o.metrics, log: o.log };
    this.handshakes = new Handshake(o.registry);
    this.liveness = new Liveness(() => this.bySocketId.values(), o.settings, o.log);
    this.liveness.start();
  }

  /** The handshake outcome of a new connection (spec §1.2), before the quota; a refusal is reported. */
  handshake(req: HandshakeRequest): HandshakeOutcome {
    const outcome = this.handshakes.check(req);
    if (!outcome.ok) this.refused(req, outcome, outcome.app);
    return outcome;
  }

  /**
   * Counts a connection of a quota app cluster-wide; false: over the quota (4004), confirmed on the
   * rechecks first and then reported, unless the client went away meanwhile (`aborted`).
   */
  async admit(app: App, req: HandshakeRequest, aborted: () => boolean): Promise<boolean> {
    if (await this.o.census.admit(app)) return true;
    for (const ms of QUOTA_RECHECKS_MS) {
      await new Promise((r) => setTimeout(r, ms));
      if (aborted()) return false;
      if (await this.o.census.admit(app)) return true;
    }
    this.refused(req, overQuota, app);
    return false;
  }

  /** A refused connection, counted by app (app="" for an unknown key: keys are not labels) and reason, and logged. */
  refused(req: HandshakeRequest, refusal: HandshakeRefusal, app?: App): void {
    this.o.metrics.connectionsRefused.inc({ app: app?.id ?? '', reason: refusal.reason });
    this.o.log.debug(
      { app: app?.id, key: app ? undefined : req.key, remoteAddress: req.remoteAddress, origin: req.origin || undefined, code: refusal.code, reason: refusal.reason },
      'connection refused',
    );
  }

  /** Gives back an admitted place whose connection never opened. */
  release(app: App): void {
    this.o.census.release(app);
  }

  /** A connection passed the handshake (and the quota): it becomes a session. */
  open(conn: Connection, app: App): Session {
    const now = Date.now();
    const s = new Session(conn, app, newSocketId(), this.o.metrics.traffic(app.id), now);
    this.bySocketId.set(s.socketId, s);
    this.perApp.set(app.id, (this.perApp.get(app.id) ?? 0) + 1);
    this.o.metrics.connects.inc({ app: app.id });
    this.o.hub.register(s.socketId, conn);
    if (app.enableUserAuthentication) {
      s.signinTimer = setTimeout(() => {
        if (!s.closed && !s.user) s.fail(Codes.unauthorized, 'Connection not authorized within timeout.');
      }, app.userAuthenticationTimeout);
    }
    s.send(frames.connectionEstablished(s.socketId, this.o.settings.activityTimeout));
    this.o.log.debug({ app: app.id, socketId: s.socketId, remoteAddress: conn.remoteAddress, origin: conn.origin || undefined }, 'connection opened');
    return s;
  }

  /** One text frame from the client. */
  receive(s: Session, text: string, bytes: number): void {
    const now = Date.now();
    this.counted(s, bytes, now);
    const parsed = parseClientFrame(text);
    if (!parsed.ok) return s.send(frames.errorFrame(null, parsed.message));
    try {
      this.dispatch(s, parsed.frame, now);
    } catch (err) {
      // One bad frame must never take the process or other sessions down.
      this.o.log.error({ err, app: s.app.id, event: parsed.frame.event }, 'frame handler failed');
      s.send(frames.errorFrame(null, 'Internal error handling the frame'));
    }
  }

  /** A frame that is not UTF-8 text. */
  receiveInvalid(s: Session, bytes: number): void {
    this.counted(s, bytes, Date.now());
    s.send(frames.errorFrame(null, 'Frames must be UTF-8 JSON text'));
  }

  private counted(s: Session, bytes: number, now: number): void {
    s.traffic.messagesIn++;
    s.traffic.bytesIn += bytes;
    Liveness.seen(s, now);
  }

  private dispatch(s: Session, frame: ClientFrame, now: number): void {
    switch (frame.event) {
      case Events.ping:
        return s.send(frames.pongFrame);
      case Events.pong:
        return;
      case Events.subscribe: {
        const data = dataObject(frame.data);
        if (!data) return s.send(frames.errorFrame(null, 'pusher:subscribe needs a data object'));
        return subscribe(this.deps, s, data);
      }
      case Events.unsubscribe: {
        const data = dataObject(frame.data);
        if (!data) return s.send(frames.errorFrame(null, 'pusher:unsubscribe needs a channel'));
        return unsubscribe(this.deps, s, data);
      }
      case Events.signin: {
        const data = dataObject(frame.data);
        if (!data) return s.send(frames.errorFrame(null, 'pusher:signin needs a data object'));
        if (signin(this.deps, s, data)) this.users.add(s);
        return;
      }
      default:
        if (frame.event.startsWith(CLIENT_EVENT_PREFIX)) return clientEvent(this.deps, s, frame, now);
        s.send(frames.errorFrame(null, `Unsupported event ${frame.event}`));
    }
  }

  /** The session's connection closed with `code`. */
  closed(s: Session, code: number, by: ClosedBy): void {
    if (!this.bySocketId.delete(s.socketId)) return;
    this.o.log.debug({ app: s.app.id, socketId: s.socketId, remoteAddress: s.conn.remoteAddress, code, closedBy: by }, 'connection closed');
    if (s.signinTimer) clearTimeout(s.signinTimer);
    this.o.metrics.disconnects.inc({ app: s.app.id, code: String(code) });
    this.perApp.set(s.app.id, (this.perApp.get(s.app.id) ?? 1) - 1);
    this.o.hub.unregister(s.socketId);
    this.o.census.release(s.app);
    this.users.remove(s);
    this.o.channels.leaveAll(s);
  }

  command(cmd: NodeCommand): void {
    if (cmd.type === 'terminate-user') this.terminateUser(cmd.appId, cmd.userId);
  }

  /** Closes this node's sessions signed in as the user (spec §4.9). */
  terminateUser(appId: string, userId: string): void {
    for (const s of this.users.sessionsOf(appId, userId)) {
      if (!s.closed) s.fail(Codes.unauthorized, 'You got disconnected by the app.');
    }
  }

  /** Refuses new connections and closes every session with 4200 so clients reconnect elsewhere. */
  drain(): void {
    this.handshakes.drain();
    this.liveness.stop();
    for (const s of [...this.bySocketId.values()]) s.conn.close(Codes.reconnectNow, 'Server is shutting down');
  }

  /** Live sessions per app on this node (metrics). */
  localConnections(): ReadonlyMap<string, number> {
    return this.perApp;
  }
}
