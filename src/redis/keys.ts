// Every Redis key and pub/sub channel ripple uses, from the one prefix (config.redisPrefix). Nothing
// else builds a name: modules ask this one, and Lua scripts receive their keys (KEYS) from the caller,
// so a Redis Cluster engine can turn the names into hash-tagged ones here alone and read in each
// script's key list which steps span several slots.
//
// Names stay byte for byte what earlier versions used: the nodes of a cluster being upgraded one by
// one share these keys and channels.
//
// On one Redis three scripts reach keys they discover while running, because the data says which: the
// presence store's dropNode, replayShare and restoreShare (presence/redis-lua.ts) walk a node's whole
// share and touch every channel in it (its app's count hash and the channel's presence hashes). They
// build those names with derivedKeysLua below, the Lua twin of appSubscriptions and presence. On Redis
// Cluster those steps are split channel by channel (presence/redis-cluster.ts); every script declares
// all its keys.
/** A recorded channel's history (message recovery, history/redis-lua.ts). */
export interface HistoryKeys {
  /** string: the channel's epoch */
  epoch: string;
  /** string: the serial of its last recorded event */
  serial: string;
  /** stream: the kept events */
  events: string;
  /** hash: sending process → the last message sequence it recorded here (a batch written twice) */
  senders: string;
}

/** A presence channel's members (presence/redis-lua.ts). */
export interface PresenceKeys {
  /** hash: "<node>|<socket>" → user id */
  sockets: string;
  /** hash: user id → the user's sockets in the channel */
  users: string;
  /** hash: user id → user_info JSON (the user's first socket's) */
  infos: string;
}

/**
 * A channel's counts and presence members on Redis Cluster (presence/redis-cluster-lua.ts), all in the
 * channel's slot, with the transitions' webhooks waiting to be moved to the streams.
 */
export interface ChannelStateKeys extends PresenceKeys {
  /** string: the channel's sockets cluster-wide */
  count: string;
  /** hash: node → its sockets in the channel (a dead node's part is removed by it) */
  nodes: string;
  /** list: the channel's transitions not yet moved to the webhook streams, "<seq>\n<n>\n<queue>*n\n<data>" */
  pending: string;
  /** string (expiring): the last sequence number given to one of the channel's transitions */
  seq: string;
}

/**
 * On Redis Cluster (docs/redis-cluster.md) the names carry hash tags, so that what one script touches
 * is in one slot:
 *  - a channel's traffic, history and state (its pub/sub name, history epoch/serial/events/senders,
 *    cache event and miss marker, subscription counts, presence members and pending transitions)
 *    share the tag {<app>:<channel>}: a channel's record-and-publish step and its subscribe step are
 *    single-slot scripts, and channels spread over every shard (one slot per channel, by CRC16);
 *  - the state that spans channels, apps and nodes (node leases, shares, each app's index of occupied
 *    channels, connection census, webhook queues and their last moved transition per channel, their
 *    doorbell and the node command channel) share the tag {<prefix>}.
 *  - the backbone's fallback channel is classic pub/sub, in no slot: it has no tag.
 *  - an app's REST budget counters are single keys, spread by their whole name.
 * On one Redis (the default) every name is what earlier versions used, byte for byte.
 */
export interface KeyspaceOptions {
  cluster?: boolean;
}

export class RedisKeys {
  /** Redis Cluster names (hash tags); false: the names of one Redis. */
  readonly cluster: boolean;
  /**
   * The prefix of the cluster state's keys (node shares, counts, presence, webhooks): the prefix on one
   * Redis, "{prefix}" on Redis Cluster. The share scripts are given this (see derivedKeysLua).
   */
  readonly statePrefix: string;
  // cluster/node-lease.ts
  /** zset: node id → lease expiry (ms) */
  readonly nodes: string;
  /** string: a random id written by the first node to renew after Redis lost its data */
  readonly dataset: string;
  /** set: nodes that wrote back their share after Redis lost its data */
  readonly restored: string;
  // backbone/redis.ts
  /** pub/sub channel: node commands, heard by every node */
  readonly commands: string;
  /**
   * Redis Cluster: classic pub/sub channel (copied by Redis to every node, in no slot) that carries a
   * plain channel's frames while its shard does not take them (a failover), "<shard channel>\n<message>";
   * every node SUBSCRIBEs to it. Unused on one Redis.
   */
  readonly fallback: string;
  // limits/connection-census.ts
  /** hash: app → its connections cluster-wide (quota apps) */
  readonly connections: string;
  // webhooks/redis-queue.ts
  /** pub/sub channel: names of webhook queues that have new events or lost their owner */
  readonly webhookBell: string;

  constructor(
    readonly prefix: string,
    o: KeyspaceOptions = {},
  ) {
    this.cluster = !!o.cluster;
    if (this.cluster && /[{}]/.test(prefix)) throw new Error(`redisPrefix "${prefix}": no { or } on Redis Cluster (the names' hash tags are ripple's)`);
    const S = (this.statePrefix = this.cluster ? `{${prefix}}` : prefix);
    this.nodes = `${S}:nodes`;
    this.dataset = `${S}:dataset`;
    this.restored = `${S}:restored`;
    this.commands = `${S}:cmd`;
    this.fallback = `${prefix}:fallback`;
    this.connections = `${S}:conns`;
    this.webhookBell = `${S}:wh:bell`;
  }

  /** "<app>:<channel>", as a hash tag on Redis Cluster: every key of one channel's traffic is in one slot. */
  private chan(appId: string, channel: string): string {
    return this.cluster ? `{${appId}:${channel}}` : `${appId}:${channel}`;
  }

  /** pub/sub channel: a channel's frames between nodes (backbone/redis.ts); a shard channel on Redis Cluster */
  channel(appId: string, channel: string): string {
    return `${this.prefix}:ch:${this.chan(appId, channel)}`;
  }

  /** pub/sub channel: an app's debug-console events, from every node to the watching ones (console/redis-relay.ts) */
  console(appId: string): string {
    return `${this.prefix}:console:${appId}`;
  }

  history(appId: string, channel: string): HistoryKeys {
    const base = `${this.prefix}:h:${this.chan(appId, channel)}`;
    return { epoch: `${base}:e`, serial: `${base}:n`, events: `${base}:s`, senders: `${base}:d` };
  }

  /** string: a cache channel's last event (cache/redis.ts) */
  cache(appId: string, channel: string): string {
    return `${this.prefix}:cache:${this.chan(appId, channel)}`;
  }

  /** string: set by the first miss of a cache channel in its webhook window (cache/redis.ts) */
  cacheMiss(appId: string, channel: string): string {
    return `${this.prefix}:cache-miss:${this.chan(appId, channel)}`;
  }

  /** string: an app's REST budget spent in one second (limits/rate-windows.ts) */
  rate(kind: string, appId: string, second: number): string {
    return `${this.prefix}:rate:${kind}:${appId}:${second}`;
  }

  /** hash: app → this node's connections (limits/connection-census.ts) */
  nodeConnections(node: string): string {
    return `${this.statePrefix}:n:${node}:conns`;
  }

  /** hash: "<app>\n<channel>" → this node's sockets in the channel (presence/redis-lua.ts) */
  nodeSubscriptions(node: string): string {
    return `${this.statePrefix}:n:${node}:subs`;
  }

  /** set: "<app>\n<channel>\n<socket>\n<user>", this node's presence sockets (presence/redis-lua.ts) */
  nodePresence(node: string): string {
    return `${this.statePrefix}:n:${node}:pres`;
  }

  /** hash: channel → its sockets cluster-wide (presence/redis-lua.ts) */
  appSubscriptions(appId: string): string {
    return `${this.statePrefix}:subs:${appId}`;
  }

  /** A presence channel's hashes: in the state's names on one Redis, in the channel's slot on Redis Cluster. */
  presence(appId: string, channel: string): PresenceKeys {
    const base = this.cluster ? `${this.prefix}:p:${this.chan(appId, channel)}` : `${this.statePrefix}:p:${appId}:${channel}`;
    return { sockets: `${base}:s`, users: `${base}:u`, infos: `${base}:i` };
  }

  /** Redis Cluster: a channel's counts, members and pending transitions, in the channel's slot (presence/redis-cluster.ts). */
  channelState(appId: string, channel: string): ChannelStateKeys {
    const c = this.chan(appId, channel);
    return { ...this.presence(appId, channel), count: `${this.prefix}:sc:${c}`, nodes: `${this.prefix}:sc:${c}:n`, pending: `${this.prefix}:wp:${c}`, seq: `${this.prefix}:wp:${c}:n` };
  }

  /** hash (Redis Cluster): channel → how many nodes' shares hold it, an app's occupied channels (presence/redis-cluster.ts) */
  appChannels(appId: string): string {
    return `${this.statePrefix}:chs:${appId}`;
  }

  /** stream: one endpoint's pending webhook events, {t, ev} JSON in field d (webhooks/redis-queue.ts) */
  webhookStream(queue: string): string {
    return `${this.statePrefix}:wh:q:${queue}`;
  }

  /** string: the node delivering a webhook queue (webhooks/redis-queue.ts) */
  webhookOwner(queue: string): string {
    return `${this.statePrefix}:wh:owner:${queue}`;
  }

  /**
   * string (Redis Cluster, expiring): the sequence number of the last of a channel's pending transitions
   * moved to the webhook streams (presence/redis-cluster-lua.ts); channel names have no ':'
   */
  webhookMoved(appId: string, channel: string): string {
    return `${this.statePrefix}:wh:moved:${appId}:${channel}`;
  }

  /** list: an app's dead-lettered webhook batches, newest first (webhooks/redis-queue.ts) */
  webhookDead(appId: string): string {
    return `${this.statePrefix}:wh:dead:${appId}`;
  }
}

/**
 * The Lua twins of appSubscriptions and presence, for the three scripts named in this file's header
 * that find channels in the data: `appSubscriptionsKey(P, app)` and `presenceKeys(P, app, channel)`
 * (fields sockets, users, infos), P being the prefix the script is given (RedisKeys.statePrefix).
 */
export const derivedKeysLua = `
local function appSubscriptionsKey(P, app) return P .. ':subs:' .. app end
local function presenceKeys(P, app, channel)
  local b = P .. ':p:' .. app .. ':' .. channel
  return { sockets = b .. ':s', users = b .. ':u', infos = b .. ':i' }
end
`;

/** The Lua twin of appChannels, for the Redis Cluster share scripts (presence/redis-cluster-lua.ts): P being RedisKeys.statePrefix. */
export const clusterDerivedKeysLua = `
local function appChannelsKey(P, app) return P .. ':chs:' .. app end
`;
