// One Pusher connection: its socket id, app, channels, signed-in user and liveness state. The
// session logic reads and changes it, and reaches the client only through its Connection.
import type { App } from '../apps/app.js';
import type { ChannelMember, Subscription } from '../channels/member.js';
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

export class Session implements ChannelMember {
  readonly channels = new Map<string, Subscription>();
  user?: SignedInUser;
  /** How the session is in its #server-to-user- channel (the channel owner keeps it). */
  userChannel?: Subscription;
  /** ms timestamp of the last frame received */
  lastSeen: number;
  /** ms timestamp of the server ping still unanswered, 0 when none */
  pingSentAt = 0;
  /** client-event rate window (spec §6: events per second per connection) */
  rateWindowStart: number;
  rateCount = 0;
  /** Pending close for apps that require sign-in (spec §4.6). */
  signinTimer?: NodeJS.Timeout;
  /** The app as it was when the connection was admitted (what its quota place was counted against). */
  readonly admittedAs: App;

  constructor(
    readonly conn: Connection,
    /** The app's current settings: replaced when the app changes (Sessions follows the app store). */
    public app: App,
    readonly socketId: string,
    /** The app's traffic counters on this node, bumped per frame received. */
    readonly traffic: AppTraffic,
    now: number,
  ) {
    this.admittedAs = app;
    this.lastSeen = now;
    this.rateWindowStart = now;
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
    if (this.signinTimer) {
      clearTimeout(this.signinTimer);
      this.signinTimer = undefined;
    }
  }
}

/** The one way a connection is closed for a reason: pusher:error with the code, then close with it. */
export function refuseConnection(conn: Connection, code: number, message: string): void {
  conn.send(frames.errorFrame(code, message));
  conn.close(code, message);
}
