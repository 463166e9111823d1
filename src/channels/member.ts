// What the channel owner reads and changes of a session: the session implements it.
import type { App } from '../apps/app.js';
import type { Position } from '../history/history.js';
import type { Hold } from '../hub/hub.js';
import type { Connection } from '../hub/connection.js';

/**
 * What the node knows about one channel subscription of a session. A plain subscription (no presence,
 * no recovery) is the object with its channel's name alone: the other fields are added only where they
 * apply (`declare`: not defined per instance), so most subscriptions stay a small object.
 */
export class Subscription {
  /** Opted in to message recovery: in the channel's positioned topic (docs/recovery.md). */
  declare positioned?: boolean;
  /** Its recovery replay is being written: live frames are held meanwhile. */
  declare hold?: Hold;
  /**
   * Positioned without a position (the history could not be read): the channel's position in the hub
   * then. The client's position is unknown until the channel's moves on.
   */
  declare unknownSince?: { position: string | undefined };

  /** The presence user id this session joined as (presence channels only). */
  declare readonly userId?: string;

  constructor(
    readonly channel: string,
    userId?: string,
  ) {
    if (userId !== undefined) this.userId = userId;
  }
}

/**
 * A session's channel subscriptions: the one subscription itself while there is only one (most
 * connections), a Map by channel name from the second on. The channel owner alone changes them.
 */
export type Subscriptions = Subscription | Map<string, Subscription> | undefined;

export const subscriptions = {
  get(subs: Subscriptions, channel: string): Subscription | undefined {
    if (subs instanceof Subscription) return subs.channel === channel ? subs : undefined;
    return subs?.get(channel);
  },
  size(subs: Subscriptions): number {
    if (subs instanceof Subscription) return 1;
    return subs?.size ?? 0;
  },
  /** The set with `sub` in it (replacing one of the same channel). */
  with(subs: Subscriptions, sub: Subscription): Subscriptions {
    if (subs === undefined || (subs instanceof Subscription && subs.channel === sub.channel)) return sub;
    if (subs instanceof Subscription) return new Map([[subs.channel, subs], [sub.channel, sub]]);
    subs.set(sub.channel, sub);
    return subs;
  },
  /** The set without `channel`'s subscription (back to the lone subscription when one is left). */
  without(subs: Subscriptions, channel: string): Subscriptions {
    if (subs instanceof Subscription) return subs.channel === channel ? undefined : subs;
    if (!subs?.delete(channel)) return subs;
    if (subs.size > 1) return subs;
    for (const only of subs.values()) return only;
    return undefined;
  },
  /** The channels' names (a copy: safe to change the set while going through it). */
  names(subs: Subscriptions): string[] {
    if (subs instanceof Subscription) return [subs.channel];
    return subs ? [...subs.keys()] : [];
  },
};

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
  /** The session's channels (`subscriptions` reads and changes them); the channel owner alone changes them. */
  subs: Subscriptions;
  /** Set once the session signed in (spec §4.6). */
  readonly user?: { readonly id: string; readonly watchlist: readonly string[] };
  /** How the session is in its #server-to-user- channel (joined at sign-in), kept by the channel owner. */
  userChannel?: Subscription;
  send(frame: string): void;
}
