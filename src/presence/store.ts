// Cluster-wide channel state: socket subscription counts per channel and presence members.
// The channel owner and the API read and change it only through this interface; the memory store
// serves a single node, the Redis store a cluster (where a dead node's share is removed when its
// lease runs out, a node's own share is written again after Redis could not be told, and what either
// makes due is reported to the ClusterStateHandler).

export interface PresenceMember {
  userId: string;
  /** The user_info object from channel_data (spec §4.3); undefined when absent. */
  userInfo: unknown;
}

export interface JoinResult {
  /** True when this was the user's first socket in the channel cluster-wide: member_added is due. */
  added: boolean;
  /** Members after the join, the joiner included (for subscription_succeeded). */
  members: Map<string, unknown>;
}

/** A presence subscription: refused (channel full, nothing recorded), or recorded with its count. */
export type PresenceJoin = { refused: true } | ({ refused: false; count: number } & JoinResult);

export interface PresenceLeave {
  /** False when the store did not hold the socket (nothing changed). */
  held: boolean;
  /** True when it was the user's last socket in the channel: member_removed is due. */
  last: boolean;
  /** The channel's cluster-wide count after (0 = vacated). */
  count: number;
}

export interface ChannelInfo {
  /** Sockets subscribed cluster-wide. */
  subscriptionCount: number;
  /** Distinct presence users (presence channels only, else 0). */
  userCount: number;
}

/**
 * What became due when a node's share of the state changed as a whole: removed (its crash, or its
 * graceful stop) or written again (this node's own, after Redis could not be told for a while).
 */
export type ClusterEvent =
  | { kind: 'member_added'; appId: string; channel: string; userId: string; userInfo: unknown }
  | { kind: 'member_removed'; appId: string; channel: string; userId: string }
  /** The channel's cluster-wide count after the change (0: vacated). */
  | { kind: 'count'; appId: string; channel: string; count: number };

export interface ClusterStateHandler {
  /** Called with the events of one change, channel by channel: member events, then the channel's count. */
  stateChanged(events: ClusterEvent[]): void;
}

/** The webhook queues that want each transition of one channel (from the endpoints' types and filters). */
export interface TransitionRoutes {
  occupied: readonly string[];
  vacated: readonly string[];
  added: readonly string[];
  removed: readonly string[];
}

export interface TransitionRouter {
  /** False when no endpoint of any app wants a transition: nothing to route. */
  readonly any: boolean;
  /** The queues that want each transition of app/channel; undefined when none wants any. */
  routes(appId: string, channel: string): TransitionRoutes | undefined;
}

export interface PresenceStore {
  /**
   * True when the store queues the webhooks of the transitions it reports (channel_occupied,
   * channel_vacated, member_added, member_removed) itself, in the same atomic step as the change, so
   * they are queued in the order the changes happened whichever node made them (Redis). False: the
   * channel owner emits them when the store answers, which keeps that order in one process (memory).
   */
  readonly queuesTransitionWebhooks: boolean;
  /** Starts reporting removed node shares to `handler` (only the Redis store has any). */
  start(handler: ClusterStateHandler): void;
  /** Counts one more socket in app/channel; resolves to the cluster-wide count after it (1 = occupied). */
  addSubscription(appId: string, channel: string): Promise<number>;
  /** Counts one socket fewer; resolves to the count after it (0 = vacated). */
  removeSubscription(appId: string, channel: string): Promise<number>;
  /** Adds a socket to an uncounted presence set (the online set of signed-in users). */
  joinPresence(appId: string, channel: string, socketId: string, member: PresenceMember): Promise<JoinResult>;
  /** Removes such a socket; resolves true when it was the user's last socket. */
  leavePresence(appId: string, channel: string, socketId: string, userId: string): Promise<boolean>;
  /**
   * A presence subscription in one atomic step: refuses it when a new member would exceed
   * `maxMembers` (spec §5.4), else counts the socket and joins the member, so channel_occupied and
   * member_added of the first socket are always due on the same node, in order.
   */
  subscribePresence(appId: string, channel: string, socketId: string, member: PresenceMember, maxMembers: number): Promise<PresenceJoin>;
  /**
   * The reverse, atomically: member_removed and channel_vacated of the last socket are due together.
   * A socket the store does not hold (its join was refused) changes nothing: `held` is false.
   */
  unsubscribePresence(appId: string, channel: string, socketId: string, userId: string): Promise<PresenceLeave>;
  /** Presence members of app/channel: user id → user_info. */
  members(appId: string, channel: string): Promise<Map<string, unknown>>;
  /** Number of distinct users in a presence channel. */
  userCount(appId: string, channel: string): Promise<number>;
  /** Sockets subscribed to app/channel cluster-wide. */
  subscriptionCount(appId: string, channel: string): Promise<number>;
  /** Every occupied channel of the app (optionally only names starting with prefix) with its counts. */
  channels(appId: string, prefix?: string): Promise<Map<string, ChannelInfo>>;
}

/** Raised by a store that cannot answer a cluster-wide query right now (Redis down). */
export class StoreUnavailableError extends Error {
  constructor(message = 'cluster state is unavailable') {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}
