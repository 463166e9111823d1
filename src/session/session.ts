// One Pusher connection: its socket id, app, channels, signed-in user and liveness state. The
// session logic reads and changes it, and reaches the client only through its Connection.
import type { App } from '../apps/app.js';
import type { ChannelMember, Subscription, Subscriptions } from '../channels/member.js';
import type { AppTraffic } from '../metrics/metrics.js';
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
 * What only some sessions need (a signed-in user's channel, a sign-in deadline, client events' rate
 * window, an app that changed since the admission): made on first use, so most sessions are smaller.
 */
class SessionExtras {
  userChannel?: Subscription = undefined;
  signinTimer?: NodeJS.Timeout = undefined;
  rateWindowStart = 0;
  rateCount = 0;
  admittedAs?: App = undefined;
}

export class Session implements ChannelMember {
  /** Its channels (channels/member.ts: one subscription, or a Map of them from the second on). */
  subs: Subscriptions = undefined;
  user?: SignedInUser = undefined;
  /** ms timestamp of the last frame received */
  lastSeen: number;
  /** ms timestamp of the server ping still unanswered, 0 when none */
  pingSentAt = 0;
  private extras?: SessionExtras = undefined;

  constructor(
    readonly conn: Connection,
    /** The app's current settings: replaced when the app changes (appUpdated). */
    public app: App,
    readonly socketId: string,
    /** The app's traffic counters on this node, bumped per frame received. */
    readonly traffic: AppTraffic,
    now: number,
  ) {
    this.lastSeen = now;
  }

  /** The less used part of the session, made when first asked for. */
  more(): SessionExtras {
    return (this.extras ??= new SessionExtras());
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

/** The one way a connection is closed for a reason: pusher:error with the code, then close with it. */
export function refuseConnection(conn: Connection, code: number, message: string): void {
  conn.send(frames.errorFrame(code, message));
  conn.close(code, message);
}
