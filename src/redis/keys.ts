// Every Redis key and pub/sub channel ripple uses, from the one prefix (config.redisPrefix). Nothing
// else builds a name: modules ask this one, and Lua scripts receive their keys (KEYS) from the caller,
// so a Redis Cluster engine can turn the names into hash-tagged ones here alone and read in each
// script's key list which steps span several slots.
//
// Names stay byte for byte what earlier versions used: the nodes of a cluster being upgraded one by
// one share these keys and channels.
//
// Three scripts reach keys they discover while running, because the data says which: the presence
// store's dropNode, replayShare and restoreShare (presence/redis-lua.ts) walk a node's whole share
// and touch every channel in it (its app's count hash and the channel's presence hashes). They build
// those names with derivedKeysLua below, the Lua twin of appSubscriptions and presence. They are the
// cross-slot steps a Redis Cluster engine must split; every other script declares all its keys.
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

export class RedisKeys {
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
  // limits/connection-census.ts
  /** hash: app → its connections cluster-wide (quota apps) */
  readonly connections: string;
  // webhooks/redis-queue.ts
  /** pub/sub channel: names of webhook queues that have new events or lost their owner */
  readonly webhookBell: string;

  constructor(readonly prefix: string) {
    this.nodes = `${prefix}:nodes`;
    this.dataset = `${prefix}:dataset`;
    this.restored = `${prefix}:restored`;
    this.commands = `${prefix}:cmd`;
    this.connections = `${prefix}:conns`;
    this.webhookBell = `${prefix}:wh:bell`;
  }

  /** pub/sub channel: a channel's frames between nodes (backbone/redis.ts) */
  channel(appId: string, channel: string): string {
    return `${this.prefix}:ch:${appId}:${channel}`;
  }

  /** pub/sub channel: an app's debug-console events, from every node to the watching ones (console/redis-relay.ts) */
  console(appId: string): string {
    return `${this.prefix}:console:${appId}`;
  }

  history(appId: string, channel: string): HistoryKeys {
    const base = `${this.prefix}:h:${appId}:${channel}`;
    return { epoch: `${base}:e`, serial: `${base}:n`, events: `${base}:s`, senders: `${base}:d` };
  }

  /** string: a cache channel's last event (cache/redis.ts) */
  cache(appId: string, channel: string): string {
    return `${this.prefix}:cache:${appId}:${channel}`;
  }

  /** string: set by the first miss of a cache channel in its webhook window (cache/redis.ts) */
  cacheMiss(appId: string, channel: string): string {
    return `${this.prefix}:cache-miss:${appId}:${channel}`;
  }

  /** string: an app's REST budget spent in one second (limits/rate-windows.ts) */
  rate(kind: string, appId: string, second: number): string {
    return `${this.prefix}:rate:${kind}:${appId}:${second}`;
  }

  /** hash: app → this node's connections (limits/connection-census.ts) */
  nodeConnections(node: string): string {
    return `${this.prefix}:n:${node}:conns`;
  }

  /** hash: "<app>\n<channel>" → this node's sockets in the channel (presence/redis-lua.ts) */
  nodeSubscriptions(node: string): string {
    return `${this.prefix}:n:${node}:subs`;
  }

  /** set: "<app>\n<channel>\n<socket>\n<user>", this node's presence sockets (presence/redis-lua.ts) */
  nodePresence(node: string): string {
    return `${this.prefix}:n:${node}:pres`;
  }

  /** hash: channel → its sockets cluster-wide (presence/redis-lua.ts) */
  appSubscriptions(appId: string): string {
    return `${this.prefix}:subs:${appId}`;
  }

  presence(appId: string, channel: string): PresenceKeys {
    const base = `${this.prefix}:p:${appId}:${channel}`;
    return { sockets: `${base}:s`, users: `${base}:u`, infos: `${base}:i` };
  }

  /** stream: one endpoint's pending webhook events, {t, ev} JSON in field d (webhooks/redis-queue.ts) */
  webhookStream(queue: string): string {
    return `${this.prefix}:wh:q:${queue}`;
  }

  /** string: the node delivering a webhook queue (webhooks/redis-queue.ts) */
  webhookOwner(queue: string): string {
    return `${this.prefix}:wh:owner:${queue}`;
  }

  /** list: an app's dead-lettered webhook batches, newest first (webhooks/redis-queue.ts) */
  webhookDead(appId: string): string {
    return `${this.prefix}:wh:dead:${appId}`;
  }
}

/**
 * The Lua twins of appSubscriptions and presence, for the three scripts named in this file's header
 * that find channels in the data: `appSubscriptionsKey(P, app)` and `presenceKeys(P, app, channel)`
 * (fields sockets, users, infos), P being the prefix the script is given.
 */
export const derivedKeysLua = `
local function appSubscriptionsKey(P, app) return P .. ':subs:' .. app end
local function presenceKeys(P, app, channel)
  local b = P .. ':p:' .. app .. ':' .. channel
  return { sockets = b .. ':s', users = b .. ':u', infos = b .. ':i' }
end
`;
