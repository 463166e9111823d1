// Cluster-wide channel state: socket subscription counts per channel and presence members.
// The gateway and the API read and change it only through this interface; the memory store serves a
// single node, the Redis store a cluster (and removes a dead node's share, see node liveness).

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

export interface ChannelInfo {
  /** Sockets subscribed cluster-wide. */
  subscriptionCount: number;
  /** Distinct presence users (presence channels only, else 0). */
  userCount: number;
}

export interface PresenceStore {
  /** Counts one more socket in app/channel; resolves to the cluster-wide count after it (1 = occupied). */
  addSubscription(appId: string, channel: string): Promise<number>;
  /** Counts one socket fewer; resolves to the count after it (0 = vacated). */
  removeSubscription(appId: string, channel: string): Promise<number>;
  /** Adds a presence socket for member.userId. Resolves to whether member_added is due and the member list. */
  joinPresence(appId: string, channel: string, socketId: string, member: PresenceMember): Promise<JoinResult>;
  /** Removes a presence socket; resolves true when it was the user's last socket (member_removed is due). */
  leavePresence(appId: string, channel: string, socketId: string, userId: string): Promise<boolean>;
  /**
   * A presence subscription in one atomic step: counts the socket and joins the member, so
   * channel_occupied and member_added of the first socket are always due on the same node, in order.
   */
  subscribePresence(appId: string, channel: string, socketId: string, member: PresenceMember): Promise<JoinResult & { count: number }>;
  /** The reverse, atomically: member_removed and channel_vacated of the last socket are due together. */
  unsubscribePresence(appId: string, channel: string, socketId: string, userId: string): Promise<{ last: boolean; count: number }>;
  /** Presence members of app/channel: user id → user_info. */
  members(appId: string, channel: string): Promise<Map<string, unknown>>;
  /** Number of distinct users in a presence channel. */
  userCount(appId: string, channel: string): Promise<number>;
  /** Sockets subscribed to app/channel cluster-wide. */
  subscriptionCount(appId: string, channel: string): Promise<number>;
  /** Every occupied channel of the app (optionally only names starting with prefix) with its counts. */
  channels(appId: string, prefix?: string): Promise<Map<string, ChannelInfo>>;
  close(): Promise<void>;
}

/** Raised by a store that cannot answer a cluster-wide query right now (Redis down). */
export class StoreUnavailableError extends Error {
  constructor(message = 'cluster state is unavailable') {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}
