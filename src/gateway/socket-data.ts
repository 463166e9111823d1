import type { App } from '../apps/app.js';

/** What the gateway knows about one channel subscription of a socket. */
export interface Subscription {
  /** The presence user id this socket joined as (presence channels only). */
  userId?: string;
}

export interface SignedInUser {
  id: string;
  userData: string;
  /** user ids whose online state this socket follows (spec §4.8) */
  watchlist: string[];
}

/** Per-socket state, kept in uWS user data. */
export interface SocketData {
  app: App;
  socketId: string;
  /** Set at upgrade when the handshake must fail (spec §1.2): sent as pusher:error, then close. */
  reject?: { code: number; message: string };
  channels: Map<string, Subscription>;
  user?: SignedInUser;
  closed: boolean;
  /** ms timestamp of the last frame received */
  lastSeen: number;
  /** ms timestamp of the server ping still unanswered, 0 when none */
  pingSentAt: number;
  /** client-event rate window (spec §6: events per second per connection) */
  rateWindowStart: number;
  rateCount: number;
  signinTimer?: NodeJS.Timeout;
}
