// What the channel owner reads and changes of a session: the session implements it.
import type { App } from '../apps/app.js';
import type { Position } from '../history/history.js';
import type { Hold } from '../hub/hub.js';
import type { Connection } from '../hub/connection.js';

/** What the node knows about one channel subscription of a session. */
export interface Subscription {
  /** The presence user id this session joined as (presence channels only). */
  userId?: string;
  /** Opted in to message recovery: in the channel's positioned topic (docs/recovery.md). */
  positioned?: boolean;
  /** Its recovery replay is being written: live frames are held meanwhile. */
  hold?: Hold;
  /**
   * Positioned without a position (the history could not be read): the channel's position in the hub
   * then. The client's position is unknown until the channel's moves on.
   */
  unknownSince?: { position: string | undefined };
}

/** A subscribe that opted in to message recovery (docs/recovery.md). */
export interface RecoveryRequest {
  /** where the client was; undefined on a first subscribe */
  position?: Position;
  /** the client's earlier socket ids: events they excluded are not replayed */
  socketIds: readonly string[];
}

export interface ChannelMember {
  readonly app: App;
  readonly socketId: string;
  readonly conn: Connection;
  /** The session's channels; the channel owner alone adds and removes entries. */
  readonly channels: Map<string, Subscription>;
  /** Set once the session signed in (spec §4.6). */
  readonly user?: { readonly id: string; readonly watchlist: readonly string[] };
  /** How the session is in its #server-to-user- channel (joined at sign-in), kept by the channel owner. */
  userChannel?: Subscription;
  send(frame: string): void;
}
