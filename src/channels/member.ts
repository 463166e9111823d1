// What the channel owner reads and changes of a session: the session implements it.
import type { App } from '../apps/app.js';
import type { Position } from '../history/history.js';
import type { Hold } from '../hub/hub.js';
import type { Connection } from '../hub/connection.js';

/**
 * What the node knows about one presence or recovering channel subscription of a session (a plain one
 * is its channel's name alone: see Sub). The fields are added only where they apply (`declare`: not
 * defined per instance), so a subscription holds what its kind needs.
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
 * A subscription as the session keeps it: a plain one (no presence, no recovery: most of them) is its
 * channel's name alone, the string the client sent; a presence or recovering one a Subscription.
 */
export type Sub = Subscription | string;

/**
 * A session's channel subscriptions: the one subscription itself while there is only one (most
 * connections), a Map by channel name from the second on. The channel owner alone changes them.
 */
export type Subscriptions = Sub | Map<string, Sub> | undefined;

function channelOf(sub: Sub): string {
  return typeof sub === 'string' ? sub : sub.channel;
}

/** The presence user id a subscription joined as (presence channels only). */
export function userIdOf(sub: Sub): string | undefined {
  return typeof sub === 'string' ? undefined : sub.userId;
}

export const subscriptions = {
  get(subs: Subscriptions, channel: string): Sub | undefined {
    if (subs instanceof Map) return subs.get(channel);
    return subs !== undefined && channelOf(subs) === channel ? subs : undefined;
  },
  size(subs: Subscriptions): number {
    if (subs instanceof Map) return subs.size;
    return subs === undefined ? 0 : 1;
  },
  /** The set with `sub` in it (replacing one of the same channel). */
  with(subs: Subscriptions, sub: Sub): Subscriptions {
    if (subs === undefined || (!(subs instanceof Map) && channelOf(subs) === channelOf(sub))) return sub;
    if (!(subs instanceof Map)) return new Map([[channelOf(subs), subs], [channelOf(sub), sub]]);
    subs.set(channelOf(sub), sub);
    return subs;
  },
  /** The set without `channel`'s subscription (back to the lone subscription when one is left). */
  without(subs: Subscriptions, channel: string): Subscriptions {
    if (!(subs instanceof Map)) return subs !== undefined && channelOf(subs) === channel ? undefined : subs;
    if (!subs.delete(channel)) return subs;
    if (subs.size > 1) return subs;
    for (const only of subs.values()) return only;
    return undefined;
  },
  /** The channels' names (a copy: safe to change the set while going through it). */
  names(subs: Subscriptions): string[] {
    if (subs instanceof Map) return [...subs.keys()];
    return subs === undefined ? [] : [channelOf(subs)];
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
