// What the channel owner reads and changes of a session: the session implements it.
import type { App } from '../apps/app.js';
import type { Connection } from '../transport/connection.js';

/** What the node knows about one channel subscription of a session. */
export interface Subscription {
  /** The presence user id this session joined as (presence channels only). */
  userId?: string;
}

export interface ChannelMember {
  readonly app: App;
  readonly socketId: string;
  readonly conn: Connection;
  /** The session's channels; the channel owner alone adds and removes entries. */
  readonly channels: Map<string, Subscription>;
  /** Set once the session signed in (spec §4.6). */
  readonly user?: { readonly id: string; readonly watchlist: readonly string[] };
  send(frame: string): void;
}
