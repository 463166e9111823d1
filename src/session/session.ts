// One Pusher connection: its socket id, app, channels, signed-in user and liveness state. The
// session logic reads and changes it, and reaches the client only through its Connection.
import type { App } from '../apps/app.js';
import type { ChannelMember, Subscription, Subscriptions } from '../channels/member.js';
import * as frames from '../protocol/frames.js';
import type { Connection } from '../hub/connection.js';

export interface SignedInUser {
  id: string;
  /** user_data's user_info: what a presence subscribe without channel_data joins with */
  userInfo: unknown;
  /** user ids whose online state this session follows (spec §4.8) */
  watchlist: string[];
}

/**
 * What only some sessions need (a signed-in user and its channel, a sign-in deadline, client events' rate
 * window, an app that changed since the admission): made on first use, so most sessions are smaller.
 */
class SessionExtras {
  user?: SignedInUser = undefined;
  userChannel?: Subscription = undefined;
  signinTimer?: NodeJS.Timeout = undefined;
  rateWindowStart = 0;
  rateCount = 0;
  admittedAs?: App = undefined;
}

/**
 * One Pusher session. A transport makes it when a client connects (a WebSocket's session is the
 * transport's own object for the socket, so a connection is one object: see transport/websocket.ts);
 * Sessions.open() gives it its socket id and app once the admission step let it in.
 */
export abstract class Session implements ChannelMember {
  /** How its frames reach the client (a WebSocket session is its own Connection). */
  abstract readonly conn: Connection;
  /** Its channels (channels/member.ts: one subscription, or a Map of them from the second on). */
  subs: Subscriptions = undefined;
  /** The app's current settings: replaced when the app changes (appUpdated). Set by established(). */
  app!: App;
  /** '' until established() */
  socketId = '';
  /**
   * Liveness (liveness.ts) in one small integer: the tick of the last frame received, or minus the
   * tick of the server ping still unanswered.
   */
  alive = 0;
  private extras?: SessionExtras = undefined;

  /** The admission let it in: Sessions.open() gives it its socket id and app. */
  established(app: App, socketId: string, alive: number): void {
    this.app = app;
    this.socketId = socketId;
    this.alive = alive;
  }

  /** Whether established() was called (the admission let it in). */
  get isEstablished(): boolean {
    return this.socketId !== '';
  }

  /** The less used part of the session, made when first asked for. */
  more(): SessionExtras {
    return (this.extras ??= new SessionExtras());
  }

  /** Set once the session signed in (spec §4.6). */
  get user(): SignedInUser | undefined {
    return this.extras?.user;
  }

  set user(user: SignedInUser | undefined) {
    if (user || this.extras) this.more().user = user;
  }

  /** How the session is in its #server-to-user- channel (the channel owner keeps it). */
  get userChannel(): Subscription | undefined {
    return this.extras?.userChannel;
  }

  set userChannel(sub: Subscription | undefined) {
    if (sub || this.extras) this.more().userChannel = sub;
  }

  /** The app as it was when the connection was admitted (what its quota place was counted against). */
  get admittedAs(): App {
    return this.extras?.admittedAs ?? this.app;
  }

  /** The app's settings changed (Sessions follows the app store); its quota place stays the admitted app's. */
  appUpdated(app: App): void {
    this.more().admittedAs ??= this.app;
    this.app = app;
  }

  /** Pending close for apps that require sign-in (spec §4.6). */
  set signinTimer(timer: NodeJS.Timeout) {
    this.more().signinTimer = timer;
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  send(frame: string): void {
    this.conn.send(frame);
  }

  /** Tells the client why and closes the connection with that code. */
  fail(code: number, message: string): void {
    refuseConnection(this.conn, code, message);
  }

  /** The session counts as authenticated: no sign-in deadline any more. */
  authenticated(): void {
    const x = this.extras;
    if (x?.signinTimer) {
      clearTimeout(x.signinTimer);
      x.signinTimer = undefined;
    }
  }
}

/** A session whose transport keeps a Connection object of its own (the HTTP fallback, the in-memory transport). */
export class LinkedSession extends Session {
  constructor(readonly conn: Connection) {
    super();
  }
}

/** The one way a connection is closed for a reason: pusher:error with the code, then close with it. */
export function refuseConnection(conn: Connection, code: number, message: string): void {
  conn.send(frames.errorFrame(code, message));
  conn.close(code, message);
}
