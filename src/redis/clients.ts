// ioredis connections for cluster mode. Commands fail fast while Redis is unreachable (no offline
// queue), so a node keeps serving its local sockets instead of piling up work; the subscriber
// connections resubscribe by themselves after a reconnect.
//
// On Redis Cluster (target.clusterNodes) each is an ioredis Cluster given the seed nodes, with
// target.options (username, password, tls, ...) passed to every node it connects to. The subscriber
// uses sharded pub/sub (SSUBSCRIBE, one connection per primary: `shardedSubscribers`), and every
// client refreshes the slot map on a timer (`slotsRefreshInterval`: ioredis 5.x resubscribes a shard
// channel that moved only at the next refresh; see docs/redis-cluster.md). The Cluster is handed out
// typed as Redis: ripple calls only commands both have, and the few places that differ ask
// `isCluster`.
import { createRequire } from 'node:module';
import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';

export interface RedisTarget {
  url?: string;
  options?: Record<string, unknown>;
  /** Redis Cluster's seed nodes ("host:port" or redis:// / rediss:// URLs) */
  clusterNodes?: readonly string[];
}

/** How often (ms) a Cluster client reads the slot map again (a moved slot's shard channels come back then). */
export const SLOTS_REFRESH_MS = 1000;

/**
 * Redis Cluster: how much longer than one Redis a node's shard subscribers may take to be back after
 * the cluster returns: ioredis 5.11 retries a failed subscriber connection with a backoff of up to
 * 2 s plus a quarter of jitter (ClusterSubscriberGroup.MAX_BACKOFF_MS), then reads the slot map
 * (at the latest a refresh interval later) and subscribes again; a second for connecting on a loaded host.
 */
export const CLUSTER_RESUBSCRIBE_EXTRA_MS = 2500 + SLOTS_REFRESH_MS + 1000;

export function isCluster(client: Redis): boolean {
  return (client as unknown as { isCluster?: boolean }).isCluster === true;
}

/** A seed node as ioredis takes it; a URL's credentials and rediss:// go to every node's options. */
export function seedNode(seed: string, into: RedisOptions): ClusterNode {
  if (!/^rediss?:\/\//.test(seed)) {
    const i = seed.lastIndexOf(':');
    if (i <= 0) return { host: seed, port: 6379 };
    const port = Number(seed.slice(i + 1));
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`Redis Cluster seed node "${seed}": the port must be a number`);
    return { host: seed.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port };
  }
  const u = new URL(seed);
  if (u.username && into.username === undefined) into.username = decodeURIComponent(u.username);
  if (u.password && into.password === undefined) into.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:' && into.tls === undefined) into.tls = {};
  return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port || 6379) };
}

function clusterClient(target: RedisTarget, name: string, extra: Partial<ClusterOptions>, redisExtra: Partial<RedisOptions>): Redis {
  const redisOptions: RedisOptions = { ...(target.options as RedisOptions), connectionName: name, ...redisExtra };
  const nodes = target.clusterNodes!.map((n) => seedNode(n, redisOptions));
  const cluster = new Cluster(nodes, {
    redisOptions,
    clusterRetryStrategy: retryStrategy,
    slotsRefreshInterval: SLOTS_REFRESH_MS,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    scaleReads: 'master',
    ...extra,
  });
  return cluster as unknown as Redis;
}

/** The longest a client waits between two reconnect attempts. */
export const RECONNECT_MAX_DELAY_MS = 1000;
const retryStrategy = (times: number) => Math.min(50 * times, RECONNECT_MAX_DELAY_MS);

export function commandClient(target: RedisTarget, name: string): Redis {
  if (target.clusterNodes) return clusterClient(target, name, { enableOfflineQueue: false }, { maxRetriesPerRequest: 1 });
  const opts: RedisOptions = {
    ...(target.options as RedisOptions),
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy,
    lazyConnect: false,
  };
  return target.url ? new Redis(target.url, opts) : new Redis(opts);
}

/**
 * ioredis 5.11.1's sharded subscriber (`built/cluster/ShardedSubscriber.js`, private: the version is
 * pinned) stopped while it is still connecting removes the listeners its own connect() waits on, so its
 * start() never settles. Its subscriber group awaits that start() inside a reset and queues every later
 * reset behind it: that client's shard subscribers never come back. It happens when the Cluster client
 * disconnects to reconnect (a slot refresh that reached no node) while a subscriber is connecting, as
 * when every node of the cluster restarts (redis-outage.test.ts's first test under
 * RIPPLE_TEST_REDIS=cluster: one node's feed never came back in 3 of 5 runs). Patched here, once: stop()
 * rejects a start() still pending, as a failed connect, which the group already handles (it backs off
 * and reads the slot map again).
 */
export function settleStoppedSubscribers(): void {
  if (stopSettles) return;
  stopSettles = true;
  const proto = (createRequire(import.meta.url)('ioredis/built/cluster/ShardedSubscriber.js') as { default: { prototype: ShardedSubscriberProto } }).default.prototype;
  const { start, stop } = proto;
  const pending = new WeakMap<object, Set<(err: Error) => void>>();
  proto.start = function (this: object) {
    const started = start.call(this);
    let waiting = pending.get(this);
    if (!waiting) pending.set(this, (waiting = new Set()));
    const set = waiting;
    return new Promise<void>((resolve, reject) => {
      set.add(reject);
      started.then(resolve, reject).finally(() => set.delete(reject));
    });
  };
  proto.stop = function (this: object) {
    const waiting = pending.get(this);
    pending.delete(this);
    stop.call(this);
    for (const reject of waiting ?? []) reject(new Error('sharded subscriber stopped while connecting'));
  };
}
let stopSettles = false;
interface ShardedSubscriberProto {
  start(this: object): Promise<void>;
  stop(this: object): void;
}

/** `sharded`: on Redis Cluster, subscribe with SSUBSCRIBE (the backbone); else classic SUBSCRIBE (the webhook doorbell). */
export function subscriberClient(target: RedisTarget, name: string, sharded = false): Redis {
  if (target.clusterNodes && sharded) settleStoppedSubscribers();
  // lazyConnect false: a subscriber connection to every primary from the start, so a channel's first
  // SSUBSCRIBE does not wait for its shard's connection to open.
  if (target.clusterNodes) return clusterClient(target, name, { shardedSubscribers: sharded }, { autoResubscribe: true, lazyConnect: false });
  const opts: RedisOptions = { ...(target.options as RedisOptions), connectionName: name, retryStrategy, autoResubscribe: true };
  return target.url ? new Redis(target.url, opts) : new Redis(opts);
}

/** Resolves when the client is ready, or after timeoutMs (the node starts anyway and catches up). */
export function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      client.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(t);
      resolve(true);
    };
    client.once('ready', onReady);
  });
}

/** Scripts registered with defineCommand, called by name: the keys first, then the other arguments. */
export type Scripted = Redis & Record<string, (...args: (string | number)[]) => Promise<unknown>>;

/**
 * A Lua script and how many keys (KEYS) it is given, the rest being ARGV: a fixed number, or
 * 'counted' when it varies and the caller passes it first.
 */
export interface LuaScript {
  keys: number | 'counted';
  lua: string;
}

/** Registers Lua scripts as commands of the client (once per client and name). */
export function defineScripts(redis: Redis, scripts: Record<string, LuaScript>): Scripted {
  for (const [name, { keys, lua }] of Object.entries(scripts)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: keys === 'counted' ? undefined : keys, lua });
  }
  return redis as Scripted;
}
