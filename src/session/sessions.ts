// The node's live sessions, for every transport: admitting one (admission.ts), opening it (socket id,
// connection_established, sign-in deadline), the frames it sends (dispatch by event), closing it,
// terminate_connections, drain, following app changes, and the counts metrics read. Transports call
// in here; the session logic never sees them. Every connection's open and close is logged here at
// debug level, every refused one in admission.ts.
import type { App } from '../apps/app.js';
import type { AppChange, AppStore } from '../apps/store.js';
import type { Hub } from '../hub/hub.js';
import type { ConnectionCensus } from '../limits/connection-census.js';
import { CLIENT_EVENT_PREFIX, Codes, Events } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import { dataObject, parseClientFrame, type ClientFrame } from '../protocol/parse.js';
import type { Connection, ConnectionIndex } from '../hub/connection.js';
import { clientEvent } from './client-events.js';
import { Admission, type AdmissionOutcome, type CapacityCheck } from './admission.js';
import type { SessionDeps } from './deps.js';
import type { HandshakeRequest } from './handshake.js';
import { Liveness, tick, type LivenessSettings } from './liveness.js';
import type { Session } from './session.js';
import { signin } from './signin.js';
import { SessionTable } from './session-table.js';
import { subscribe, unsubscribe } from './subscribe.js';
import { UserIndex } from './user-index.js';

export interface SessionsOptions extends SessionDeps {
  apps: AppStore;
  hub: Hub;
  census: ConnectionCensus;
  /** The open-file reserve (limits/open-files.ts), where descriptors can be counted. */
  capacity?: CapacityCheck;
  settings: LivenessSettings;
}

/** Who closed a connection: ripple (a refusal, a timeout, a drain...), or the client or its network. */
export type ClosedBy = 'server' | 'client';

export class Sessions implements ConnectionIndex {
  /**
   * The live sessions on this node, found by socket id: to follow app changes, for liveness, drain,
   * and the hub's lookups of a sender (ConnectionIndex).
   */
  private readonly table = new SessionTable<Session>();
  /** appId → live sessions of that app on this node (the sets' sizes, as the metrics read them) */
  private readonly perApp = new Map<string, number>();
  private live = 0;
  private readonly users = new UserIndex();
  private readonly admission: Admission;
  private readonly liveness: Liveness;
  private readonly deps: SessionDeps;

  constructor(private readonly o: SessionsOptions) {
    this.deps = { channels: o.channels, webhooks: o.webhooks, metrics: o.metrics, log: o.log, tap: o.tap };
    this.admission = new Admission({ apps: o.apps, census: o.census, capacity: o.capacity, metrics: o.metrics, log: o.log, tap: o.tap });
    o.apps.onChange((change) => this.appChanged(change));
    this.liveness = new Liveness(() => this.all(), o.settings, o.log);
    this.liveness.start();
    o.hub.useIndex(this);
  }

  connection(appId: string, socketId: string): Connection | undefined {
    const s = this.table.get(socketId);
    return s !== undefined && s.app.id === appId ? s.conn : undefined;
  }

  /**
   * Whether a new connection may open (admission.ts): at once when nothing needs waiting for, else a
   * promise; `gone` tells whether its client went away meanwhile. An admitted connection that is then
   * not opened gives its place back with `abandon`.
   */
  connect(req: HandshakeRequest, gone: () => boolean): AdmissionOutcome | Promise<AdmissionOutcome> {
    return this.admission.admit(req, gone);
  }

  /** Gives back an admitted place whose connection never opened. */
  abandon(app: App): void {
    this.o.census.release(app);
  }

  /** An admitted connection's session (`connect`) opens: its socket id, connection_established. */
  open<S extends Session>(s: S, app: App): S {
    const conn = s.conn;
    s.established(app, this.table.place(s), tick(Date.now()));
    this.live++;
    this.perApp.set(app.id, (this.perApp.get(app.id) ?? 0) + 1);
    this.o.metrics.connects.inc({ app: app.id });
    if (app.enableUserAuthentication) {
      s.signinTimer = setTimeout(() => {
        if (!s.closed && !s.user) s.fail(Codes.unauthorized, 'Connection not authorized within timeout.');
      }, app.userAuthenticationTimeout);
    }
    s.send(frames.connectionEstablished(s.socketId, this.o.settings.activityTimeout));
    this.o.log.debug({ app: app.id, socketId: s.socketId, remoteAddress: conn.remoteAddress, origin: conn.origin || undefined }, 'connection opened');
    const tap = this.o.tap;
    if (tap.on && tap.watches(app.id)) {
      tap.emit({ type: 'connection_opened', appId: app.id, socketId: s.socketId, detail: { transport: conn.transport, origin: conn.origin || undefined, remoteAddress: conn.remoteAddress } });
    }
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
    // The app's counters are looked up per frame received rather than kept by each session (8 bytes each).
    const traffic = this.o.metrics.traffic(s.app.id);
    traffic.messagesIn++;
    traffic.bytesIn += bytes;
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

  /** The session's connection closed with `code` (and `reason`, the close frame's, for the console). */
  closed(s: Session, code: number, by: ClosedBy, reason?: ArrayBuffer | string): void {
    // Once per session, whoever tells first.
    if (!this.table.remove(s)) return;
    this.live--;
    this.o.log.debug({ app: s.app.id, socketId: s.socketId, remoteAddress: s.conn.remoteAddress, code, closedBy: by }, 'connection closed');
    const tap = this.o.tap;
    if (tap.on && tap.watches(s.app.id)) {
      const why = typeof reason === 'string' || reason === undefined ? reason : Buffer.from(reason).toString('utf8');
      tap.emit({ type: 'connection_closed', appId: s.app.id, socketId: s.socketId, userId: s.user?.id, detail: { code, reason: why || undefined, closedBy: by, transport: s.conn.transport, origin: s.conn.origin || undefined } });
    }
    s.authenticated(); // no sign-in deadline any more
    this.o.metrics.disconnects.inc({ app: s.app.id, code: String(code) });
    this.perApp.set(s.app.id, (this.perApp.get(s.app.id) ?? 1) - 1);
    // The app it was admitted as: a quota added or removed since does not change what it counted.
    this.o.census.release(s.admittedAs);
    this.users.remove(s);
    this.o.channels.leaveAll(s);
  }

  /** Closes this node's sessions signed in as the user (spec §4.9). */
  terminateUser(appId: string, userId: string): void {
    for (const s of this.users.sessionsOf(appId, userId)) {
      if (!s.closed) s.fail(Codes.unauthorized, 'You got disconnected by the app.');
    }
  }

  /** Refuses new connections and closes every session with 4200 so clients reconnect elsewhere. */
  drain(): void {
    this.admission.drain();
    this.liveness.stop();
    for (const s of [...this.all()]) s.conn.close(Codes.reconnectNow, 'Server is shutting down');
  }

  /**
   * Live sessions follow their app: a changed secret applies to their next signature check, changed
   * flags and limits to their next frame; a disabled or removed app's sessions are closed (4003, as
   * a disabled app's new connections are refused).
   */
  private appChanged(change: AppChange): void {
    if (change.kind === 'added') return;
    const id = change.previous.id;
    if (!this.perApp.get(id)) return;
    const live = [...this.table.values()].filter((s) => s.app.id === id);
    if (change.kind === 'updated') {
      for (const s of live) s.appUpdated(change.app);
      return;
    }
    const message = change.kind === 'disabled' ? 'The app is disabled.' : 'The app no longer exists.';
    for (const s of live) if (!s.closed) s.fail(Codes.appDisabled, message);
  }

  /** Live sessions on this node. */
  connectionCount(): number {
    return this.live;
  }

  /** Every live session on this node. */
  private *all(): Iterable<Session> {
    yield* this.table.values();
  }

  /** Live sessions per app on this node (metrics). */
  localConnections(): ReadonlyMap<string, number> {
    return this.perApp;
  }
}
